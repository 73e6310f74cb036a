//! Whole OMA DM sessions over real HTTP between the simulator and the server, XML and WBXML.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use updraft::dm::Encoding;
use updraft::dm::auth::AuthType;
use updraft::dm::message::Format;
use updraft::dm::session::{Operation, Value as DmValue, ValueData};
use updraft::simulator::{
    DeviceProfile, HttpTransport, Initiation, PushTarget, SessionOptions, SimDevice, run_session,
    serve_udp_push,
};

use crate::helpers::{TestApp, spawn_app, wait_for};

const CLIENT_SECRET: &str = "device-secret";
const SERVER_SECRET: &str = "server-secret";

fn profile(dev_id: &str, encoding: Encoding) -> DeviceProfile {
    let mut p = DeviceProfile::new(dev_id, CLIENT_SECRET);
    p.encoding = encoding;
    p.auth = AuthType::Md5;
    p.server_id = "updraft".into();
    p.server_secret = SERVER_SECRET.into();
    p.server_auth = Some(AuthType::Md5);
    p
}

async fn provision(app: &TestApp, dev_id: &str, push_url: Option<String>) -> String {
    let created: Value = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": CLIENT_SECRET},
            "server": {"type": "md5", "name": "updraft", "secret": SERVER_SECRET},
            "push_url": push_url,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    app.admin(Method::GET, path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn transport() -> HttpTransport {
    HttpTransport::new(Duration::from_secs(30)).unwrap()
}

async fn management_then_generic_alert(encoding: Encoding) {
    let app = spawn_app().await;
    let dev_id = format!("IMEI:35693803564{}", encoding as u8);
    let id = provision(&app, &dev_id, None).await;
    let ops = format!("/api/v1/devices/{id}/operations");
    for body in [
        json!({"kind": "get", "uri": "./DevDetail/FwV"}),
        json!({"kind": "replace", "uri": "./FUMO/fw1/PkgVersion", "data": "2.0.0", "sequence_group": "job"}),
        json!({"kind": "replace", "uri": "./FUMO/fw1/DownloadAndUpdate/PkgURL", "data": "http://dl.example/p", "sequence_group": "job"}),
        json!({"kind": "exec", "uri": "./FUMO/fw1/DownloadAndUpdate", "correlator": "job-42", "sequence_group": "job"}),
    ] {
        let res = app
            .admin(Method::POST, &ops)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    let url = app.url("/dm");
    let mut device = SimDevice::new(profile(&dev_id, encoding));
    let first = run_session(&mut device, &transport(), &url, Initiation::Client)
        .await
        .unwrap();
    assert!(
        first.errors.is_empty(),
        "server broke the protocol: {:?}",
        first.errors
    );
    assert!(
        first.auth_retries >= 1,
        "a first session is challenged (no nonce yet)"
    );
    assert_eq!(
        device.tree.text("./FUMO/fw1/PkgVersion").as_deref(),
        Some("2.0.0")
    );

    let done: Vec<Value> = serde_json::from_value(get_json(&app, &ops).await).unwrap();
    assert_eq!(done.len(), 4);
    let exec = done
        .iter()
        .find(|o| o["operation"].get("Exec").is_some())
        .unwrap();
    assert_eq!(
        exec["status_code"], 202,
        "Exec is accepted for later reporting"
    );
    assert_eq!(exec["state"], "accepted", "202 is not success: {exec}");
    assert!(
        done.iter()
            .filter(|o| o["operation"].get("Exec").is_none())
            .all(|o| o["state"] == "done"),
        "{done:#?}"
    );
    let get = done
        .iter()
        .find(|o| o["operation"].get("Get").is_some())
        .unwrap();
    let fwv = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        get["results"][0]["data"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(fwv, b"1.0.0", "{get}");

    let inventory = get_json(&app, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(inventory["inventory"]["model"], "SIM-1");
    assert_eq!(inventory["inventory"]["fw_version"], "1.0.0");
    let tree = get_json(&app, &format!("/api/v1/devices/{id}/tree")).await;
    assert!(
        tree.as_array()
            .unwrap()
            .iter()
            .any(|n| n["uri"] == "./DevInfo/DevId" && n["value"] == dev_id.as_str())
    );

    // The device reports the FUMO result in its next session, against the Correlator.
    assert_eq!(device.pending_alerts.len(), 1);
    let second = run_session(&mut device, &transport(), &url, Initiation::Client)
        .await
        .unwrap();
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!(
        second.auth_retries, 0,
        "the nonce carried over from the first session"
    );
    assert_eq!(second.generic_alerts_sent, 1);
    let alerts = get_json(
        &app,
        &format!("/api/v1/devices/{id}/alerts?correlator=job-42"),
    )
    .await;
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["code"], 1226);
    assert_eq!(alerts[0]["result_code"], 200);
    // The report settles the accepted Exec.
    let exec = get_json(
        &app,
        &format!("/api/v1/operations/{}", exec["id"].as_i64().unwrap()),
    )
    .await;
    assert_eq!(exec["state"], "done", "{exec}");
    assert_eq!(exec["result_code"], 200);
    assert_eq!(
        alerts[0]["alert_type"],
        "org.openmobilealliance.dm.firmwareupdate.downloadandupdate"
    );

    let sessions = get_json(&app, &format!("/api/v1/devices/{id}/sessions")).await;
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .all(|s| s["end_reason"] == "completed" && s["auth_outcome"] == "authenticated"),
        "{sessions:?}"
    );
    let expected = if encoding == Encoding::Xml {
        "xml"
    } else {
        "wbxml"
    };
    assert!(sessions.iter().all(|s| s["encoding"] == expected));
}

#[tokio::test]
async fn xml_session_with_challenge_management_and_a_later_generic_alert() {
    management_then_generic_alert(Encoding::Xml).await;
}

#[tokio::test]
async fn wbxml_session_with_challenge_management_and_a_later_generic_alert() {
    management_then_generic_alert(Encoding::Wbxml).await;
}

#[tokio::test]
async fn a_5_mib_object_arrives_as_a_large_object_within_16_kib_messages() {
    let app = spawn_app().await;
    let dev_id = "IMEI:490154203237518";
    let id = provision(&app, dev_id, None).await;
    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // The admin API caps inline values; firmware payloads come from packages. Queue directly.
    app.store()
        .await
        .operations()
        .enqueue(
            &id,
            &Operation::Replace {
                uri: "./FUMO/fw1/Update/PkgData".into(),
                value: DmValue {
                    format: Format::Bin,
                    mime_type: None,
                    data: ValueData::Bytes(data.clone()),
                },
            },
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let mut p = profile(dev_id, Encoding::Xml);
    p.max_msg_size = 16_384;
    p.max_obj_size = 8 * 1024 * 1024;
    let mut device = SimDevice::new(p);
    let report = run_session(
        &mut device,
        &transport(),
        &app.url("/dm"),
        Initiation::Client,
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.large_objects_received, 1);
    assert!(
        report.max_message_seen <= 16_384,
        "a message of {} bytes",
        report.max_message_seen
    );
    assert!(
        report.messages > 300,
        "5 MiB cannot fit in fewer messages: {}",
        report.messages
    );
    assert!(
        device.tree.value("./FUMO/fw1/Update/PkgData") == Some(&data[..]),
        "object differs"
    );
    let ops: Vec<Value> =
        serde_json::from_value(get_json(&app, &format!("/api/v1/devices/{id}/operations")).await)
            .unwrap();
    assert_eq!(ops[0]["state"], "done");
}

#[tokio::test]
async fn wrong_credentials_get_401_and_no_management_command() {
    let app = spawn_app().await;
    let dev_id = "IMEI:111";
    let id = provision(&app, dev_id, None).await;
    app.admin(Method::POST, &format!("/api/v1/devices/{id}/operations"))
        .json(&json!({"kind": "replace", "uri": "./FUMO/fw1/PkgVersion", "data": "evil"}))
        .send()
        .await
        .unwrap();
    let mut p = profile(dev_id, Encoding::Xml);
    p.client_secret = "not-the-secret".into();
    let mut device = SimDevice::new(p);
    let err = run_session(
        &mut device,
        &transport(),
        &app.url("/dm"),
        Initiation::Client,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            updraft::simulator::SimError::AuthFailed { status: 401, .. }
        ),
        "{err:?}"
    );
    assert_ne!(
        device.tree.text("./FUMO/fw1/PkgVersion").as_deref(),
        Some("evil")
    );
    let ops: Vec<Value> =
        serde_json::from_value(get_json(&app, &format!("/api/v1/devices/{id}/operations")).await)
            .unwrap();
    assert_eq!(ops[0]["state"], "queued", "nothing delivered, still queued");
    let sessions = get_json(&app, &format!("/api/v1/devices/{id}/sessions")).await;
    assert!(
        sessions[0]["auth_outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed_"),
        "{sessions}"
    );
}

#[tokio::test]
async fn package0_over_udp_makes_the_device_open_the_notified_session() {
    let app = spawn_app().await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let push_url = format!("udp://{}", socket.local_addr().unwrap());
    let dev_id = "IMEI:222";
    let id = provision(&app, dev_id, Some(push_url)).await;
    let device = Arc::new(tokio::sync::Mutex::new(SimDevice::new(profile(
        dev_id,
        Encoding::Wbxml,
    ))));
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let target = Arc::new(PushTarget {
        devices: vec![device.clone()],
        transport: Arc::new(transport()),
        server_url: app.url("/dm"),
        options: SessionOptions::default(),
        events: events_tx,
    });
    let listener = tokio::spawn(serve_udp_push(socket, target));

    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/notify"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let notification: Value = res.json().await.unwrap();
    let session_id = notification["session_id"].as_u64().unwrap() as u16;

    let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event.notification.as_ref().copied().unwrap(),
        session_id,
        "digest verified"
    );
    let report = event.report.expect("the device opened a session");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.session_id,
        updraft::dm::package0::session_id_text(session_id)
    );
    let sessions = get_json(&app, &format!("/api/v1/devices/{id}/sessions")).await;
    assert_eq!(sessions[0]["session_id"], report.session_id.as_str());
    listener.abort();
}

#[tokio::test]
async fn the_simulate_command_runs_a_small_fleet_against_the_server() {
    let app = spawn_app().await;
    for n in 1..=3 {
        provision(&app, &format!("IMEI:7700{n}"), None).await;
    }
    let url = app.url("/dm");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args([
                "simulate",
                "--server",
                &url,
                "--devices",
                "3",
                "--dev-id-prefix",
                "IMEI:7700",
            ])
            .args(["--encoding", "wbxml", "--sessions", "2", "--json"])
            .args([
                "--secret",
                CLIENT_SECRET,
                "--server-secret",
                SERVER_SECRET,
                "--server-auth",
                "md5",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(&stdout).expect("--json prints the summary");
    assert!(summary.to_string().contains("IMEI:77003"), "{summary}");
    let page = get_json(&app, "/api/v1/devices").await;
    for device in page["devices"].as_array().unwrap() {
        let sessions = get_json(
            &app,
            &format!(
                "/api/v1/devices/{}/sessions",
                device["id"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(sessions.as_array().unwrap().len(), 2, "{sessions}");
    }
}

/// A one-purpose HTTP server that records request bodies and answers with the given statuses.
async fn capture_server(
    statuses: Vec<u16>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for status in statuses.into_iter().chain(std::iter::repeat(200)) {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = conn.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let n = conn.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break buf[end + 4..end + 4 + len].to_vec();
                }
                if n == 0 {
                    break Vec::new();
                }
            };
            let _ = tx.send(body);
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            conn.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    (url, rx)
}

#[tokio::test]
async fn package0_goes_to_the_gateway_webhook_and_is_retried_until_it_expires() {
    let (webhook, mut bodies) = capture_server(vec![500]).await;
    let app = crate::helpers::spawn_app_with(|c| {
        c.dm.push_webhook_url = Some(webhook.into());
        c.dm.notification_retry_secs = 1;
        c.dm.notification_max_attempts = 2;
    })
    .await;
    let id = provision(&app, "IMEI:333", None).await;
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/notify"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let notification: Value = res.json().await.unwrap();
    assert_eq!(notification["attempts"], 1);
    assert!(
        notification["last_error"].as_str().unwrap().contains("500"),
        "{notification}"
    );

    let first: Value = serde_json::from_slice(&bodies.recv().await.unwrap()).unwrap();
    let second: Value = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
        .await
        .expect("retried after the gateway failed")
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(
        first["package0"], second["package0"],
        "same session id, same bytes"
    );
    assert_eq!(first["dev_id"], "IMEI:333");
    let b64 = |v: &Value| {
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            v.as_str().unwrap(),
        )
        .unwrap()
    };
    let package0 = b64(&first["package0"]);
    let parsed = updraft::dm::package0::ParsedPackage0::parse(&package0).unwrap();
    assert_eq!(
        u64::from(parsed.notification.session_id),
        notification["session_id"].as_u64().unwrap()
    );
    let pdu = b64(&first["wap_push"]["wsp_pdu"]);
    assert!(
        pdu.ends_with(&package0),
        "the WSP push PDU carries the Package 0 as its body"
    );
    assert!(
        !first["wap_push"]["sms_user_data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The device never connects: after the last attempt the notification expires.
    let store = app.store().await;
    let nid = notification["id"].as_i64().unwrap();
    let expired = wait_for(
        "the unanswered notification to expire",
        Duration::from_secs(15),
        || async {
            let n = store.notifications().get(nid).await.unwrap().unwrap();
            if n.state == "expired" {
                Ok(n)
            } else {
                Err(format!("{n:?}"))
            }
        },
    )
    .await;
    assert_eq!(expired.attempts, 2);
}

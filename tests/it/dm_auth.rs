//! DM authentication over real HTTP: provisioned initial nonces, a libdmclient-like device that
//! refuses the server's first credentials in every session, and a captured Package 1 over a
//! resynchronisation nonce replayed after its session ended.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use updraft::dm::auth::{AuthType, Nonce};
use updraft::dm::message::{Command, StatusCode as DmStatus};
use updraft::dm::{Encoding, Limits, decode};
use updraft::simulator::{
    DeviceProfile, HttpReply, HttpRequest, HttpTransport, Initiation, ServerAuthQuirk, SimDevice,
    SimError, Transport, run_session,
};

use crate::helpers::{TestApp, spawn_app};

const CLIENT_SECRET: &str = "device-secret";
const SERVER_SECRET: &str = "server-secret";

async fn provision(app: &TestApp, body: Value) -> reqwest::Response {
    app.admin(Method::POST, "/api/v1/devices")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn provisioned_id(app: &TestApp, body: Value) -> String {
    let res = provision(app, body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn device_json(dev_id: &str, client_type: &str, server_nonce: Option<&str>) -> Value {
    let mut server = json!({"type": "md5", "name": "updraft", "secret": SERVER_SECRET});
    if let Some(n) = server_nonce {
        server["nonce"] = json!(n);
    }
    json!({
        "dev_id": dev_id,
        "client": {"type": client_type, "name": dev_id, "secret": CLIENT_SECRET},
        "server": server,
    })
}

async fn operations(app: &TestApp, id: &str) -> Vec<Value> {
    app.admin(Method::GET, &format!("/api/v1/devices/{id}/operations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn queue(app: &TestApp, id: &str, body: Value) -> i64 {
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/operations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["id"].as_i64().unwrap()
}

fn transport() -> HttpTransport {
    HttpTransport::new(Duration::from_secs(30)).unwrap()
}

#[tokio::test]
async fn provisioning_takes_initial_nonces_empty_included_and_refuses_bad_ones() {
    let app = spawn_app().await;
    let mut body = device_json("IMEI:501", "md5", Some(""));
    body["client"]["nonce"] = json!("AAAAAA==");
    let id = provisioned_id(&app, body).await;
    let unknown = provisioned_id(&app, device_json("IMEI:502", "md5", None)).await;
    let store = app.store().await;
    let s = store.devices().secrets(&id).await.unwrap().unwrap();
    assert_eq!(s.server_nonce.as_deref(), Some(""), "empty is a nonce");
    assert_eq!(s.client_nonce.as_deref(), Some("AAAAAA=="));
    let s = store.devices().secrets(&unknown).await.unwrap().unwrap();
    assert_eq!((s.client_nonce, s.server_nonce), (None, None), "unknown");

    for (n, (field, nonce, client_type)) in [
        ("server", "not base64!", "md5"),
        ("server", "AAAAAA", "md5"),
        ("client", "AAAAAA==", "basic"),
        ("server", &"QUFB".repeat(30)[..], "md5"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = device_json(&format!("IMEI:6{n}"), client_type, None);
        body[field]["nonce"] = json!(nonce);
        let res = provision(&app, body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{field} {nonce:?}");
        let err: Value = res.json().await.unwrap();
        assert!(err.to_string().contains(&format!("{field}.nonce")), "{err}");
        assert!(
            store
                .devices()
                .by_dev_id(&format!("IMEI:6{n}"))
                .await
                .unwrap()
                .is_none(),
            "nothing stored"
        );
    }
}

fn libdmclient_like(dev_id: &str, encoding: Encoding) -> SimDevice {
    let mut p = DeviceProfile::new(dev_id, CLIENT_SECRET);
    p.encoding = encoding;
    // libdmclient's test client: basic to the server, md5 server credentials.
    p.auth = AuthType::Basic;
    p.server_id = "updraft".into();
    p.server_secret = SERVER_SECRET.into();
    p.server_auth = Some(AuthType::Md5);
    p.server_auth_quirk = ServerAuthQuirk::RefuseFirst;
    SimDevice::new(p)
}

/// Three sessions, each with a Get, a Replace and an Exec queued; every one is executed and
/// answered in its session although the device refuses the server's first credentials.
/// `refusals` gives the expected refusals per session.
async fn every_operation_reaches_the_device(
    encoding: Encoding,
    server_nonce: Option<&str>,
    refusals: [u32; 3],
) {
    let app = spawn_app().await;
    let dev_id = format!(
        "IMEI:4900{}{}",
        encoding as u8,
        u8::from(server_nonce.is_some())
    );
    let id = provisioned_id(&app, device_json(&dev_id, "basic", server_nonce)).await;
    let mut device = libdmclient_like(&dev_id, encoding);
    let url = app.url("/dm");
    for (session, expected_refusals) in refusals.into_iter().enumerate() {
        let version = format!("2.{session}.0");
        let ids = [
            queue(&app, &id, json!({"kind": "get", "uri": "./DevDetail/FwV"})).await,
            queue(
                &app,
                &id,
                json!({"kind": "replace", "uri": "./FUMO/fw1/DownloadAndUpdate/PkgURL", "data": format!("http://dl.example/{version}")}),
            )
            .await,
            queue(
                &app,
                &id,
                json!({"kind": "exec", "uri": "./FUMO/fw1/DownloadAndUpdate", "correlator": format!("job-{session}")}),
            )
            .await,
        ];
        let report = run_session(&mut device, &transport(), &url, Initiation::Client)
            .await
            .unwrap();
        assert!(
            report.errors.is_empty(),
            "session {session}: {:?}",
            report.errors
        );
        assert_eq!(report.failure, None);
        assert_eq!(
            report.server_auth_refusals, expected_refusals,
            "session {session}"
        );
        // Refused ones were not executed and came again: once per refusal, once to execute.
        assert_eq!(
            report.commands_received,
            3 * (1 + u64::from(expected_refusals)),
            "session {session}"
        );
        assert_eq!(
            device
                .tree
                .text("./FUMO/fw1/DownloadAndUpdate/PkgURL")
                .as_deref(),
            Some(format!("http://dl.example/{version}").as_str())
        );
        let ops = operations(&app, &id).await;
        // The Exec answered 202 is accepted: its result comes by Generic Alert.
        for ((op_id, code), state) in ids
            .into_iter()
            .zip([200, 200, 202])
            .zip(["done", "done", "accepted"])
        {
            let op = ops.iter().find(|o| o["id"] == op_id).unwrap();
            assert_eq!(op["state"], state, "session {session}: {op}");
            assert_eq!(op["status_code"], code, "session {session}: {op}");
        }
        // The Exec's report arrives in the next session (or is still owed after the last).
        assert_eq!(device.pending_alerts.len(), 1);
    }
    let sessions: Value = app
        .admin(Method::GET, &format!("/api/v1/devices/{id}/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 3);
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["end_reason"] == "completed"),
        "{sessions}"
    );
}

#[tokio::test]
async fn a_device_refusing_the_first_server_credentials_gets_every_operation_xml() {
    every_operation_reaches_the_device(Encoding::Xml, None, [1, 1, 1]).await;
}

#[tokio::test]
async fn a_device_refusing_the_first_server_credentials_gets_every_operation_wbxml() {
    every_operation_reaches_the_device(Encoding::Wbxml, None, [1, 1, 1]).await;
}

#[tokio::test]
async fn a_provisioned_empty_server_nonce_saves_the_first_refusal() {
    // The bootstrap's empty nonce verifies at once; later sessions start from the nonce the
    // device issued last time, which this client forgot, and are refused once each.
    every_operation_reaches_the_device(Encoding::Xml, Some(""), [0, 1, 1]).await;
}

/// HTTP that keeps a copy of every request (what an eavesdropper on plain HTTP sees).
struct Recording {
    inner: HttpTransport,
    requests: Mutex<Vec<HttpRequest>>,
}

impl Transport for Recording {
    async fn post(&self, req: HttpRequest) -> Result<HttpReply, SimError> {
        self.requests.lock().unwrap().push(req.clone());
        self.inner.post(req).await
    }
}

#[tokio::test]
async fn a_captured_package1_over_a_resync_nonce_replayed_later_gets_only_a_challenge() {
    let app = spawn_app().await;
    let dev_id = "IMEI:4901542032375";
    let id = provisioned_id(&app, device_json(dev_id, "md5", None)).await;
    queue(&app, &id, json!({"kind": "get", "uri": "./DevDetail/FwV"})).await;

    // A device that lost its nonce starts with the resynchronisation default (brief 2.5).
    let mut p = DeviceProfile::new(dev_id, CLIENT_SECRET);
    p.server_id = "updraft".into();
    p.server_secret = SERVER_SECRET.into();
    p.server_auth = Some(AuthType::Md5);
    let mut device = SimDevice::new(p);
    device.client_nonce = Some(Nonce(vec![0; 4]));
    let recording = Recording {
        inner: transport(),
        requests: Mutex::new(Vec::new()),
    };
    let report = run_session(&mut device, &recording, &app.url("/dm"), Initiation::Client)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.auth_retries, 1,
        "challenged once, then the fresh nonce"
    );
    assert_eq!(report.commands_received, 1);
    let captured = recording.requests.lock().unwrap()[0].clone();
    let (pkg1, _) = decode(&captured.body, &Limits::default()).unwrap();
    assert!(
        pkg1.hdr.cred.is_some(),
        "the capture carries the md5 credential"
    );

    // The session is over; new work is queued; the captured bytes are replayed.
    let pending = queue(
        &app,
        &id,
        json!({"kind": "replace", "uri": "./FUMO/fw1/PkgVersion", "data": "evil"}),
    )
    .await;
    let reply = reqwest::Client::new()
        .post(&captured.url)
        .header("Content-Type", &captured.content_type)
        .body(captured.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let (msg, _) = decode(&reply.bytes().await.unwrap(), &Limits::default()).unwrap();
    let Command::Status(header) = &msg.body.commands[0] else {
        panic!("no SyncHdr Status: {msg:?}");
    };
    assert_eq!(header.data, DmStatus::INVALID_CREDENTIALS);
    let chal = header.chal.as_ref().expect("the reply is a challenge");
    let fresh = Nonce::from_b64(chal.meta.next_nonce.as_deref().unwrap()).unwrap();
    assert!(!fresh.is_resync_default());
    assert!(
        msg.body
            .commands
            .iter()
            .all(|c| matches!(c, Command::Status(_))),
        "no management command: {msg:?}"
    );
    let ops = operations(&app, &id).await;
    let op = ops.iter().find(|o| o["id"] == pending).unwrap();
    assert_eq!(op["state"], "queued", "{op}");
    let sessions: Value = app
        .admin(Method::GET, &format!("/api/v1/devices/{id}/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions[0]["auth_outcome"], "resync_challenged",
        "{sessions}"
    );
}

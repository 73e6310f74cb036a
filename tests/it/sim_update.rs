//! The simulator's FUMO side against a real server's `/dl/{token}` route: a device on v1
//! downloads a delta by Range with its connection dropped twice, resumes, verifies with the
//! keys it fetched from the keys API, applies, reboots into an image byte-identical to v2,
//! and owes the server a 1226 report with the Exec's Correlator; and the same through whole
//! DM sessions (commands queued by hand through the operations API), in URL mode and inline.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use updraft::dm::Encoding;
use updraft::dm::auth::AuthType;
use updraft::package::{self, NoProgress, PayloadEncoding, Release, SecretKey};
use updraft::simulator::{
    DeviceProfile, DownloadOptions, Faults, Firmware, FirmwareState, FumoEnv, HttpTransport,
    ImageCache, Initiation, SimDevice, fetch_keys, run_pending, run_session,
};

use crate::helpers::firmware::noise;
use crate::helpers::{TestApp, spawn_app_with};

const KEY: &str = "test-download-key-0123456789abcdef0123456789";

fn v2_of(v1: &[u8]) -> Vec<u8> {
    let mut v2 = v1.to_vec();
    for i in (0..v2.len()).step_by(4093) {
        v2[i] = v2[i].wrapping_add(1);
    }
    v2.extend_from_slice(&noise(77, 150_000));
    v2
}

/// Imports the signing key and uploads a delta v1 → v2 for Updraft/SIM-1; returns its id
/// and bytes.
async fn upload_delta(app: &TestApp, v1: &[u8], v2: &[u8]) -> (i64, Vec<u8>) {
    let key = SecretKey::from_seed([21; 32]);
    let res = app
        .admin(Method::POST, "/api/v1/keys/import")
        .json(&json!({ "public_key": key.public().to_file_text() }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let release = Release {
        manufacturer: "Updraft",
        model: "SIM-1",
        target_version: "2.0.0",
        source_version: Some("1.0.0"),
        security_version: 2,
        created_at: chrono::Utc::now().timestamp() - 60,
        expires_at: None,
    };
    let bytes = package::build_delta(
        &release,
        v1,
        v2,
        PayloadEncoding::BsdiffSplitZstd,
        &key,
        &mut NoProgress,
    )
    .unwrap()
    .bytes;
    let res = app
        .admin(Method::POST, "/api/v1/packages")
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let stored: Value = res.json().await.unwrap();
    (stored["id"].as_i64().unwrap(), bytes)
}

async fn link(app: &TestApp, package_id: i64, job_key: &str) -> String {
    let res = app
        .admin(
            Method::POST,
            &format!("/api/v1/packages/{package_id}/download-links"),
        )
        .json(&json!({ "job_key": job_key }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let link: Value = res.json().await.unwrap();
    link["url"].as_str().unwrap().to_owned()
}

async fn device_on_v1(app: &TestApp, v1: &[u8], faults: Faults) -> (SimDevice, FumoEnv) {
    let cache = Arc::new(ImageCache::new());
    let mut state = FirmwareState::new(Firmware::new("1.0.0", &cache, v1.to_vec()));
    state.faults = faults;
    let dev = SimDevice::with_firmware(DeviceProfile::new("IMEI:77", "s"), state);
    let keys = fetch_keys(&app.client, &app.url(""), &app.admin_token)
        .await
        .unwrap();
    let env = FumoEnv {
        client: app.client.clone(),
        keys,
        cache,
        download: DownloadOptions {
            chunk_size: 64 * 1024,
            ..DownloadOptions::default()
        },
        reboot_delay: Duration::from_millis(10),
    };
    (dev, env)
}

fn exec_download_and_update(dev: &mut SimDevice, url: &str, correlator: &str) {
    dev.tree
        .replace(
            "./FUMO/fw1/DownloadAndUpdate/PkgURL",
            "chr",
            None,
            url.as_bytes().to_vec(),
        )
        .unwrap();
    let code = dev.exec("./FUMO/fw1/DownloadAndUpdate", Some(correlator));
    assert_eq!(code.0, 202);
    assert_eq!(dev.tree.text("./FUMO/fw1/State").as_deref(), Some("30"));
}

#[tokio::test]
async fn a_simulated_device_updates_by_delta_over_dl_with_two_drops_resumed() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v1 = noise(5, 400_000);
    let v2 = v2_of(&v1);
    let (id, pkg) = upload_delta(&app, &v1, &v2).await;
    assert!(
        pkg.len() > 100_000,
        "a package worth cutting: {}",
        pkg.len()
    );
    let url = link(&app, id, "upd-1-1").await;
    let faults = Faults {
        drop_after: Some(pkg.len() as u64 / 3),
        drops: 2,
        ..Faults::default()
    };
    let (mut dev, mut env) = device_on_v1(&app, &v1, faults).await;
    // Exactly as many resumes allowed as cuts injected.
    env.download.max_resumes = 2;
    exec_download_and_update(&mut dev, &url, "upd-1-1");
    let dev = tokio::sync::Mutex::new(dev);
    let outcome = run_pending(&dev, &env).await.expect("a job ran");
    assert_eq!(outcome.result_code, 200, "{:?}", outcome.reason);
    assert_eq!(outcome.resumes, 2, "{outcome:?}");
    assert!(
        (outcome.wire_bytes as f64) < pkg.len() as f64 * 1.3,
        "{} bytes for a {}-byte package",
        outcome.wire_bytes,
        pkg.len()
    );
    // The server's own accounting agrees: the package once, plus what the cuts cost.
    let served = crate::helpers::wait_for(
        "the whole package accounted",
        Duration::from_secs(10),
        || async {
            let res = app
                .admin(Method::GET, "/api/v1/downloads/upd-1-1")
                .send()
                .await
                .unwrap();
            let stats: Value = res.json().await.unwrap();
            let served = stats["bytes_served"].as_u64().unwrap_or(0);
            if served >= pkg.len() as u64 {
                Ok(served)
            } else {
                Err(format!("{served} bytes so far"))
            }
        },
    )
    .await;
    assert!(
        (served as f64) < pkg.len() as f64 * 1.3,
        "served {served} for {}",
        pkg.len()
    );
    eprintln!(
        "two cuts: served {served} bytes, device read {} bytes, package {} bytes ({:.3}x)",
        outcome.wire_bytes,
        pkg.len(),
        served as f64 / pkg.len() as f64
    );
    let d = dev.lock().await;
    let fw = d.firmware.as_ref().unwrap();
    assert_eq!(&*fw.running.image, v2.as_slice(), "byte-identical to v2");
    assert_eq!(fw.running.security_version, 2);
    assert_eq!(d.tree.text("./DevDetail/FwV").as_deref(), Some("2.0.0"));
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("100"));
    assert_eq!(d.pending_alerts.len(), 1);
    let alert = &d.pending_alerts[0];
    assert_eq!(alert.correlator.as_deref(), Some("upd-1-1"));
    assert_eq!(alert.result_code, 200);
    assert_eq!(alert.source, "./FUMO/fw1");
    assert_eq!(
        alert.alert_type,
        "org.openmobilealliance.dm.firmwareupdate.downloadandupdate"
    );
}

#[tokio::test]
async fn a_corrupted_download_is_reported_402_and_the_device_keeps_v1() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v1 = noise(6, 200_000);
    let v2 = v2_of(&v1);
    let (id, _) = upload_delta(&app, &v1, &v2).await;
    let url = link(&app, id, "upd-2-1").await;
    let faults = Faults {
        corrupt: true,
        ..Faults::default()
    };
    let (mut dev, env) = device_on_v1(&app, &v1, faults).await;
    exec_download_and_update(&mut dev, &url, "upd-2-1");
    let dev = tokio::sync::Mutex::new(dev);
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 402, "{:?}", outcome.reason);
    let d = dev.lock().await;
    assert_eq!(&*d.firmware.as_ref().unwrap().running.image, v1.as_slice());
    assert_eq!(d.tree.text("./DevDetail/FwV").as_deref(), Some("1.0.0"));
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("80"));
    assert_eq!(d.pending_alerts[0].result_code, 402);
}

#[tokio::test]
async fn a_bad_token_is_reported_406_without_a_job_left_running() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v1 = noise(7, 50_000);
    let (mut dev, env) = device_on_v1(&app, &v1, Faults::default()).await;
    exec_download_and_update(&mut dev, &app.url("/dl/not-a-token"), "upd-3-1");
    let dev = tokio::sync::Mutex::new(dev);
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 406, "{:?}", outcome.reason);
    assert!(run_pending(&dev, &env).await.is_none(), "the job is over");
    let d = dev.lock().await;
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("20"));
}

const CLIENT_SECRET: &str = "device-secret";
const SERVER_SECRET: &str = "server-secret";

async fn provision(app: &TestApp, dev_id: &str, auth: &str) -> String {
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": auth, "name": dev_id, "secret": CLIENT_SECRET},
            "server": {"type": auth, "name": "updraft", "secret": SERVER_SECRET},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn queue(app: &TestApp, device: &str, body: Value) -> i64 {
    let res = app
        .admin(
            Method::POST,
            &format!("/api/v1/devices/{device}/operations"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn operation(app: &TestApp, id: i64) -> Value {
    let res = app
        .admin(Method::GET, &format!("/api/v1/operations/{id}"))
        .send()
        .await
        .unwrap();
    res.json().await.unwrap()
}

fn session_profile(dev_id: &str, encoding: Encoding, auth: AuthType) -> DeviceProfile {
    let mut p = DeviceProfile::new(dev_id, CLIENT_SECRET);
    p.model = "SIM-1".into();
    p.man = "Updraft".into();
    p.encoding = encoding;
    p.auth = auth;
    p.server_secret = SERVER_SECRET.into();
    p.server_auth = Some(auth);
    p
}

/// The Generic Alerts recorded with `correlator`.
async fn alerts(app: &TestApp, device: &str, correlator: &str) -> Vec<Value> {
    let res = app
        .admin(
            Method::GET,
            &format!("/api/v1/devices/{device}/alerts?correlator={correlator}"),
        )
        .send()
        .await
        .unwrap();
    res.json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The FwV a Get operation read, decoded.
fn fwv_of(op: &Value) -> String {
    let data = op["results"][0]["data"].as_str().unwrap();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
        .unwrap_or_else(|_| data.as_bytes().to_vec());
    String::from_utf8(bytes).unwrap()
}

/// After a job: the next client-initiated session carries the 1226 report and answers the
/// FwV read queued for it; returns that FwV.
async fn report_and_confirm(
    app: &TestApp,
    device: &str,
    dev: &tokio::sync::Mutex<SimDevice>,
    correlator: &str,
) -> String {
    let get = queue(
        app,
        device,
        json!({"kind": "get", "uri": "./DevDetail/FwV"}),
    )
    .await;
    let transport = HttpTransport::new(Duration::from_secs(60)).unwrap();
    let mut d = dev.lock().await;
    let report = run_session(&mut d, &transport, &app.url("/dm"), Initiation::Client)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(d.pending_alerts.is_empty(), "the server took the report");
    let recorded = alerts(app, device, correlator).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["code"], 1226);
    assert_eq!(recorded[0]["result_code"], 200);
    assert_eq!(recorded[0]["source"], "./FUMO/fw1");
    let op = operation(app, get).await;
    assert_eq!(op["state"], "done", "{op}");
    fwv_of(&op)
}

#[tokio::test]
async fn in_dm_sessions_a_device_takes_a_delta_by_url_and_reports_it() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v1 = noise(8, 300_000);
    let v2 = v2_of(&v1);
    let (id, _) = upload_delta(&app, &v1, &v2).await;
    let url = link(&app, id, "sim-url-1").await;
    let dev_id = "IMEI:990000000000801";
    let device = provision(&app, dev_id, "md5").await;
    let (_, env) = device_on_v1(&app, &v1, Faults::default()).await;
    let state = FirmwareState::new(Firmware::new("1.0.0", &env.cache, v1.clone()));
    let profile = session_profile(dev_id, Encoding::Xml, AuthType::Md5);
    let dev = tokio::sync::Mutex::new(SimDevice::with_firmware(profile, state));

    let replace = queue(
        &app,
        &device,
        json!({"kind": "replace", "uri": "./FUMO/fw1/DownloadAndUpdate/PkgURL", "data": url}),
    )
    .await;
    let exec = queue(
        &app,
        &device,
        json!({"kind": "exec", "uri": "./FUMO/fw1/DownloadAndUpdate", "correlator": "sim-url-1"}),
    )
    .await;
    let transport = HttpTransport::new(Duration::from_secs(60)).unwrap();
    {
        let mut d = dev.lock().await;
        let report = run_session(&mut d, &transport, &app.url("/dm"), Initiation::Client)
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    assert_eq!(operation(&app, replace).await["status_code"], 200);
    assert_eq!(operation(&app, exec).await["status_code"], 202);

    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 200, "{:?}", outcome.reason);
    assert_eq!(
        report_and_confirm(&app, &device, &dev, "sim-url-1").await,
        "2.0.0"
    );
    let d = dev.lock().await;
    assert_eq!(&*d.firmware.as_ref().unwrap().running.image, v2.as_slice());
}

#[tokio::test]
async fn in_dm_sessions_a_device_takes_an_inline_large_object_at_max_msg_size_4096() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v1 = noise(9, 120_000);
    let v2 = v2_of(&v1);
    let (_, pkg) = upload_delta(&app, &v1, &v2).await;
    let dev_id = "IMEI:990000000000802";
    let device = provision(&app, dev_id, "hmac").await;
    let (_, env) = device_on_v1(&app, &v1, Faults::default()).await;
    let state = FirmwareState::new(Firmware::new("1.0.0", &env.cache, v1.clone()));
    let mut profile = session_profile(dev_id, Encoding::Wbxml, AuthType::Hmac);
    profile.max_msg_size = 4096;
    let dev = tokio::sync::Mutex::new(SimDevice::with_firmware(profile, state));

    let res = app
        .admin(
            Method::POST,
            &format!(
                "/api/v1/devices/{device}/operations/upload?kind=replace&uri=./FUMO/fw1/Update/PkgData&mime_type=application/octet-stream"
            ),
        )
        .body(pkg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let exec = queue(
        &app,
        &device,
        json!({"kind": "exec", "uri": "./FUMO/fw1/Update", "correlator": "sim-inline-1"}),
    )
    .await;
    let transport = HttpTransport::new(Duration::from_secs(60)).unwrap();
    {
        let mut d = dev.lock().await;
        let report = run_session(&mut d, &transport, &app.url("/dm"), Initiation::Client)
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(
            report.messages > (pkg.len() / 4096) as u32,
            "the package came in many messages: {}",
            report.messages
        );
        assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("60"));
    }
    assert_eq!(operation(&app, exec).await["status_code"], 202);
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 200, "{:?}", outcome.reason);
    assert_eq!(
        outcome.wire_bytes, 0,
        "nothing downloaded: the package came inline"
    );
    assert_eq!(
        report_and_confirm(&app, &device, &dev, "sim-inline-1").await,
        "2.0.0"
    );
    let d = dev.lock().await;
    assert_eq!(&*d.firmware.as_ref().unwrap().running.image, v2.as_slice());
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("90"));
}

/// One fleet group in TOML.
fn group(name: &str, prefix: &str, encoding: &str, auth: &str, faults: &str) -> String {
    format!(
        r#"
[[group]]
name = "{name}"
count = 1
dev_id_prefix = "{prefix}"
model = "SIM-1"
firmware_version = "1.0.0"
image = "v1.bin"
security_version = 1
encoding = "{encoding}"
auth = "{auth}"
secret = "{CLIENT_SECRET}"
server_secret = "{SERVER_SECRET}"
poll_interval_secs = 1
chunk_size = 32768
reboot_delay_ms = 20
[group.faults]
{faults}
"#
    )
}

#[tokio::test]
async fn a_fleet_run_provisions_updates_and_summarises_each_group_with_its_faults() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v1 = noise(10, 200_000);
    let v2 = v2_of(&v1);
    let (id, pkg) = upload_delta(&app, &v1, &v2).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v1.bin"), &v1).unwrap();
    let fleet = [
        group(
            "cut",
            "IMEI:9900000009001",
            "xml",
            "md5",
            "drop = 1.0\ndrop_after = 40000\ndrops = 2",
        ),
        group(
            "corrupt",
            "IMEI:9900000009002",
            "wbxml",
            "hmac",
            "corrupt = 1.0",
        ),
        group(
            "fallback",
            "IMEI:9900000009003",
            "xml",
            "md5",
            "fall_back = 1.0",
        ),
    ]
    .concat();
    let fleet_path = dir.path().join("fleet.toml");
    std::fs::write(&fleet_path, fleet).unwrap();

    // Provisioned by the test first so the commands can wait for the devices' first
    // sessions; the run's own provisioning then finds them there (409) and goes on.
    let mut devices = Vec::new();
    for (prefix, auth, correlator) in [
        ("IMEI:9900000009001", "md5", "fleet-cut"),
        ("IMEI:9900000009002", "hmac", "fleet-corrupt"),
        ("IMEI:9900000009003", "md5", "fleet-fallback"),
    ] {
        let device = provision(&app, &format!("{prefix}1"), auth).await;
        devices.push(device.clone());
        let url = link(&app, id, correlator).await;
        queue(
            &app,
            &device,
            json!({"kind": "replace", "uri": "./FUMO/fw1/DownloadAndUpdate/PkgURL", "data": url}),
        )
        .await;
        queue(
            &app,
            &device,
            json!({"kind": "exec", "uri": "./FUMO/fw1/DownloadAndUpdate", "correlator": correlator}),
        )
        .await;
    }
    let run = updraft::simulator::FleetRun {
        fleet: fleet_path,
        server: app.url("/dm"),
        provision: true,
        api_url: Some(app.url("")),
        token: Some(app.admin_token.clone()),
        key_files: Vec::new(),
        duration: Duration::from_secs(3),
        push_listen: None,
    };
    let transport = Arc::new(HttpTransport::new(Duration::from_secs(30)).unwrap());
    let summary = updraft::simulator::run_fleet(&run, transport, app.client.clone())
        .await
        .unwrap();
    let by_name = |n: &str| summary.groups.iter().find(|g| g.name == n).unwrap();
    for g in &summary.groups {
        assert!(g.errors.is_empty(), "{}: {:?}", g.name, g.errors);
        assert_eq!(g.jobs.len(), 1, "{}: one job each: {:?}", g.name, g.jobs);
        assert!(g.sessions >= 2, "{}: polled and reported", g.name);
    }
    let cut = by_name("cut");
    assert_eq!(cut.verdicts.get(&200), Some(&1), "{cut:?}");
    assert_eq!(cut.final_versions.get("2.0.0"), Some(&1), "{cut:?}");
    assert!(
        (cut.bytes_downloaded as f64) < pkg.len() as f64 * 1.3,
        "{cut:?}"
    );
    let corrupt = by_name("corrupt");
    assert_eq!(corrupt.verdicts.get(&402), Some(&1), "{corrupt:?}");
    assert_eq!(corrupt.final_versions.get("1.0.0"), Some(&1));
    let fallback = by_name("fallback");
    assert_eq!(fallback.verdicts.get(&200), Some(&1), "reports success…");
    assert_eq!(
        fallback.final_versions.get("1.0.0"),
        Some(&1),
        "…on the old image"
    );
    // Three devices on v1 share one image; v2 was built once by the cut device.
    assert_eq!(summary.distinct_images, 2, "{summary:?}");
    // Every report reached the server with its Correlator.
    for (device, (correlator, code)) in devices.iter().zip([
        ("fleet-cut", 200),
        ("fleet-corrupt", 402),
        ("fleet-fallback", 200),
    ]) {
        let recorded = alerts(&app, device, correlator).await;
        assert_eq!(recorded.len(), 1, "{correlator}: {recorded:?}");
        assert_eq!(recorded[0]["result_code"], code, "{correlator}");
    }
}

//! Update jobs end to end with the simulator as the device that really updates: the server
//! picks the package from the FwV it reads, discovers `./FUMO/fw1` with `?list=Struct`, and
//! sends PkgURL + Exec (URL mode); the device downloads it, verifies it with the keys from
//! the keys API, applies it, reboots and reports; the job succeeds only on the FwV of a
//! later session.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use updraft::dm::Encoding;
use updraft::dm::auth::AuthType;
use updraft::simulator::{
    DeviceProfile, DownloadOptions, Firmware, FirmwareState, FumoEnv, HttpTransport, ImageCache,
    Initiation, SimDevice, fetch_keys, run_pending, run_session,
};

use crate::helpers::firmware::{
    generate_key, get_json, noise, upload_firmware, variant, wait_for_job,
};
use crate::helpers::{TestApp, spawn_app_with};

const SECRET: &str = "device-secret";
const SERVER_SECRET: &str = "server-secret";

fn configured(c: &mut updraft::config::Config) {
    c.dm.public_url = None;
    c.builds.poll_interval_ms = 50;
}

async fn firmware(app: &TestApp, version: &str, image: Vec<u8>) -> Value {
    let res = upload_firmware(app, "Updraft", "SIM-1", version, image).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// v1 and v2 of Updraft/SIM-1 with a delta between them; returns (v1 image, v2 record, v2 image).
async fn release(app: &TestApp) -> (Vec<u8>, Value, Vec<u8>) {
    generate_key(app).await;
    let base = noise(12, 96 * 1024);
    let v1 = firmware(app, "1.0.0", base.clone()).await;
    let new = variant(&base, 4);
    let v2 = firmware(app, "2.0.0", new.clone()).await;
    let res = app
        .admin(Method::POST, "/api/v1/packages/builds")
        .json(&json!({"target_firmware_id": v2["id"], "source_firmware_ids": [v1["id"]]}))
        .send()
        .await
        .unwrap();
    let jobs: Value = res.json().await.unwrap();
    for j in jobs["jobs"].as_array().expect("build jobs") {
        let done = wait_for_job(app, j["id"].as_i64().unwrap(), Duration::from_secs(60)).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    (base, v2, new)
}

async fn provision(app: &TestApp, dev_id: &str, auth: &str) -> String {
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": auth, "name": dev_id, "secret": SECRET},
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

async fn sim(
    app: &TestApp,
    dev_id: &str,
    v1: &[u8],
    encoding: Encoding,
    auth: AuthType,
    max_msg_size: u64,
) -> (Mutex<SimDevice>, FumoEnv) {
    let cache = Arc::new(ImageCache::new());
    let state = FirmwareState::new(Firmware::new("1.0.0", &cache, v1.to_vec()));
    let mut p = DeviceProfile::new(dev_id, SECRET);
    p.man = "Updraft".into();
    p.model = "SIM-1".into();
    p.encoding = encoding;
    p.auth = auth;
    p.server_secret = SERVER_SECRET.into();
    p.server_auth = Some(auth);
    p.max_msg_size = max_msg_size;
    let keys = fetch_keys(&app.client, &app.url(""), &app.admin_token)
        .await
        .unwrap();
    let env = FumoEnv {
        client: app.client.clone(),
        keys,
        cache,
        download: DownloadOptions {
            chunk_size: 16 * 1024,
            ..DownloadOptions::default()
        },
        reboot_delay: Duration::from_millis(10),
    };
    (Mutex::new(SimDevice::with_firmware(p, state)), env)
}

/// Client-initiated sessions, each followed by the device's pending job, until the update
/// job is final (at most `max` sessions). Returns the final job.
async fn run_until_final(
    app: &TestApp,
    dev: &Mutex<SimDevice>,
    env: &FumoEnv,
    uid: i64,
    max: usize,
) -> Value {
    let transport = HttpTransport::new(Duration::from_secs(60)).unwrap();
    for _ in 0..max {
        {
            let mut d = dev.lock().await;
            let report = run_session(&mut d, &transport, &app.url("/dm"), Initiation::Client)
                .await
                .unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
        }
        let job = get_json(app, &format!("/api/v1/updates/{uid}")).await;
        if [
            "succeeded",
            "failed",
            "timed_out",
            "incompatible",
            "cancelled",
        ]
        .contains(&job["state"].as_str().unwrap_or_default())
        {
            return job;
        }
        if let Some(outcome) = run_pending(dev, env).await {
            assert_eq!(outcome.result_code, 200, "{:?}", outcome.reason);
        }
    }
    panic!("job {uid} not final after {max} sessions");
}

#[tokio::test]
async fn an_update_job_takes_a_simulated_device_from_v1_to_v2_by_delta_url() {
    let app = spawn_app_with(configured).await;
    let (v1, v2, v2_image) = release(&app).await;
    let dev_id = "IMEI:880000000000001";
    let id = provision(&app, dev_id, "md5").await;
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
        .json(&json!({"target_firmware_id": v2["id"], "delivery": "url"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let uid = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let (dev, env) = sim(&app, dev_id, &v1, Encoding::Xml, AuthType::Md5, 16_384).await;
    let job = run_until_final(&app, &dev, &env, uid, 4).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result_code"], 200);
    assert_eq!(job["package_kind"], "delta", "{job}");
    assert_eq!(job["fumo_node"], "./FUMO/fw1", "{job}");
    assert_eq!(job["confirmed_version"], "2.0.0");
    let d = dev.lock().await;
    assert_eq!(
        &*d.firmware.as_ref().unwrap().running.image,
        v2_image.as_slice()
    );
}

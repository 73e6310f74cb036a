//! The simulator's two-step FUMO flow (Exec Download, then Exec Update) over a real `/dl`
//! link, and a device that trusts another signing key: it downloads the whole package,
//! refuses it with 404 and stays on v1.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use updraft::package::{self, NoProgress, PayloadEncoding, Release, SecretKey};
use updraft::simulator::{
    DeviceProfile, DownloadOptions, Faults, Firmware, FirmwareState, FumoEnv, ImageCache,
    SimDevice, fetch_keys, run_pending,
};

use crate::helpers::firmware::noise;
use crate::helpers::{TestApp, spawn_app_with};

const KEY: &str = "test-download-key-0123456789abcdef0123456789";

/// A full package of `v2` for Updraft/SIM-1 on the server, and a download link to it.
async fn full_package_link(app: &TestApp, v2: &[u8], job_key: &str) -> (String, usize) {
    let key = SecretKey::from_seed([31; 32]);
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
        source_version: None,
        security_version: 1,
        created_at: chrono::Utc::now().timestamp() - 60,
        expires_at: None,
    };
    let bytes = package::build_full(
        &release,
        v2,
        PayloadEncoding::FullZstd,
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
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let res = app
        .admin(
            Method::POST,
            &format!("/api/v1/packages/{id}/download-links"),
        )
        .json(&json!({ "job_key": job_key }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let link: Value = res.json().await.unwrap();
    (link["url"].as_str().unwrap().to_owned(), bytes.len())
}

async fn device(app: &TestApp, faults: Faults) -> (Mutex<SimDevice>, FumoEnv) {
    let cache = Arc::new(ImageCache::new());
    let mut state = FirmwareState::new(Firmware::new("1.0.0", &cache, noise(1, 10_000)));
    state.faults = faults;
    let dev = SimDevice::with_firmware(DeviceProfile::new("IMEI:31", "s"), state);
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
        reboot_delay: Duration::from_millis(5),
    };
    (Mutex::new(dev), env)
}

async fn exec_with_url(dev: &Mutex<SimDevice>, node: &str, url: &str, correlator: &str) {
    let mut d = dev.lock().await;
    d.tree
        .replace(
            &format!("./FUMO/fw1/{node}/PkgURL"),
            "chr",
            None,
            url.as_bytes().to_vec(),
        )
        .unwrap();
    let code = d.exec(&format!("./FUMO/fw1/{node}"), Some(correlator));
    assert_eq!(code.0, 202);
}

#[tokio::test]
async fn download_then_update_in_two_execs_each_reported() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v2 = noise(2, 90_000);
    let (url, _) = full_package_link(&app, &v2, "two-step").await;
    let (dev, env) = device(&app, Faults::default()).await;
    exec_with_url(&dev, "Download", &url, "dl-1").await;
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 200, "{:?}", outcome.reason);
    {
        let mut d = dev.lock().await;
        assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("50"));
        assert_eq!(
            d.tree.text("./DevDetail/FwV").as_deref(),
            Some("1.0.0"),
            "not yet"
        );
        let report = d.pending_alerts.remove(0);
        assert_eq!(
            report.alert_type,
            "org.openmobilealliance.dm.firmwareupdate.download"
        );
        assert_eq!(report.correlator.as_deref(), Some("dl-1"));
        assert_eq!(d.exec("./FUMO/fw1/Update", Some("up-1")).0, 202);
    }
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 200, "{:?}", outcome.reason);
    assert_eq!(
        outcome.wire_bytes, 0,
        "Update installs what Download fetched"
    );
    let d = dev.lock().await;
    assert_eq!(&*d.firmware.as_ref().unwrap().running.image, v2.as_slice());
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("90"));
    assert_eq!(
        d.pending_alerts[0].alert_type,
        "org.openmobilealliance.dm.firmwareupdate.update"
    );
}

#[tokio::test]
async fn a_device_trusting_another_key_refuses_the_package_with_404() {
    let app = spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await;
    let v1 = noise(1, 10_000);
    let (url, len) = full_package_link(&app, &noise(3, 40_000), "wrong-key").await;
    let (dev, env) = device(
        &app,
        Faults {
            wrong_key: true,
            ..Faults::default()
        },
    )
    .await;
    exec_with_url(&dev, "DownloadAndUpdate", &url, "wk-1").await;
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 404, "{:?}", outcome.reason);
    assert_eq!(
        outcome.wire_bytes, len as u64,
        "downloaded whole, then refused"
    );
    let d = dev.lock().await;
    assert_eq!(&*d.firmware.as_ref().unwrap().running.image, v1.as_slice());
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("80"));
    assert_eq!(d.pending_alerts[0].result_code, 404);
}

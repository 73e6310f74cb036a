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

#[tokio::test]
async fn simulate_fleet_runs_update_jobs_with_cuts_and_leaves_another_model_incompatible() {
    let app = spawn_app_with(configured).await;
    let (v1, v2, _) = release(&app).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v1.bin"), &v1).unwrap();
    let group = |name: &str, prefix: &str, model: &str, encoding: &str, faults: &str| {
        format!(
            "[[group]]\nname = \"{name}\"\ncount = 2\ndev_id_prefix = \"{prefix}\"\n\
             model = \"{model}\"\nfirmware_version = \"1.0.0\"\nimage = \"v1.bin\"\n\
             encoding = \"{encoding}\"\nauth = \"md5\"\nsecret = \"{SECRET}\"\n\
             server_secret = \"{SERVER_SECRET}\"\npoll_interval_secs = 1\nchunk_size = 8192\n\
             reboot_delay_ms = 20\n[group.faults]\n{faults}\n"
        )
    };
    let fleet = [
        group(
            "cut",
            "IMEI:8800000001",
            "SIM-1",
            "wbxml",
            "drop = 1.0\ndrop_after = 6000\ndrops = 2",
        ),
        group("other", "IMEI:8800000002", "SIM-9", "xml", ""),
    ]
    .concat();
    let fleet_path = dir.path().join("fleet.toml");
    std::fs::write(&fleet_path, fleet).unwrap();
    // The jobs exist before the devices' first sessions (the run's --provision finds the
    // devices there and leaves them).
    let mut jobs = Vec::new();
    for dev_id in [
        "IMEI:88000000011",
        "IMEI:88000000012",
        "IMEI:88000000021",
        "IMEI:88000000022",
    ] {
        let id = provision(&app, dev_id, "md5").await;
        let res = app
            .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
            .json(&json!({"target_firmware_id": v2["id"], "delivery": "url"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        jobs.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let (url, api, token) = (app.url("/dm"), app.url(""), app.admin_token.clone());
    let fleet_arg = fleet_path.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args([
                "simulate", "--server", &url, "--fleet", &fleet_arg, "--json",
            ])
            .args(["--provision", "--api-url", &api, "--token", &token])
            .args(["--duration-secs", "4"])
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
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let cut = &summary["groups"][0];
    assert_eq!(cut["name"], "cut");
    assert_eq!(cut["final_versions"], json!({"2.0.0": 2}), "{summary}");
    assert_eq!(cut["verdicts"], json!({"200": 2}), "{summary}");
    let other = &summary["groups"][1];
    assert_eq!(other["final_versions"], json!({"1.0.0": 2}), "{summary}");
    assert_eq!(other["jobs"], json!([]), "another model is sent nothing");
    for (i, uid) in jobs.iter().enumerate() {
        let job = get_json(&app, &format!("/api/v1/updates/{uid}")).await;
        let expected = if i < 2 { "succeeded" } else { "incompatible" };
        assert_eq!(job["state"], expected, "{job}");
    }
    // Bytes served for the cut devices stay below 1.3x the package each.
    let job = get_json(&app, &format!("/api/v1/updates/{}", jobs[0])).await;
    let package = get_json(&app, &format!("/api/v1/packages/{}", job["package_id"])).await;
    let size = package["size"].as_u64().unwrap();
    for j in cut["jobs"].as_array().unwrap() {
        let read = j["bytes_downloaded"].as_u64().unwrap();
        assert!((read as f64) < size as f64 * 1.3, "{read} for {size}");
    }
}

#[tokio::test]
async fn injected_device_failures_end_update_jobs_in_their_documented_states() {
    let app = spawn_app_with(|c| {
        configured(c);
        c.updates.retry_base_secs = 1;
        c.updates.retry_cap_secs = 1;
        c.updates.max_attempts = 2;
        c.updates.tick_ms = 100;
    })
    .await;
    let (v1, v2, _) = release(&app).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v1.bin"), &v1).unwrap();
    let cases = [
        ("corrupt", "IMEI:8800000003", "corrupt = 1.0"),
        ("wrong-key", "IMEI:8800000004", "wrong_key = 1.0"),
        ("fall-back", "IMEI:8800000005", "fall_back = 1.0"),
    ];
    let mut fleet = String::new();
    let mut jobs = Vec::new();
    for (name, prefix, faults) in cases {
        fleet.push_str(&format!(
            "[[group]]\nname = \"{name}\"\ncount = 1\ndev_id_prefix = \"{prefix}\"\n\
             model = \"SIM-1\"\nfirmware_version = \"1.0.0\"\nimage = \"v1.bin\"\n\
             secret = \"{SECRET}\"\nserver_secret = \"{SERVER_SECRET}\"\n\
             poll_interval_secs = 1\nreboot_delay_ms = 20\n[group.faults]\n{faults}\n"
        ));
        let id = provision(&app, &format!("{prefix}1"), "md5").await;
        let res = app
            .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
            .json(&json!({"target_firmware_id": v2["id"], "delivery": "url"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        jobs.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let fleet_path = dir.path().join("fleet.toml");
    std::fs::write(&fleet_path, fleet).unwrap();
    let run = updraft::simulator::FleetRun {
        fleet: fleet_path,
        server: app.url("/dm"),
        provision: false,
        api_url: Some(app.url("")),
        token: Some(app.admin_token.clone()),
        key_files: Vec::new(),
        duration: Duration::from_secs(7),
        push_listen: None,
    };
    let transport = Arc::new(HttpTransport::new(Duration::from_secs(30)).unwrap());
    let summary = updraft::simulator::run_fleet(&run, transport, app.client.clone())
        .await
        .unwrap();
    for g in &summary.groups {
        assert!(g.errors.is_empty(), "{}: {:?}", g.name, g.errors);
    }
    let paths: Vec<String> = jobs
        .iter()
        .map(|j| format!("/api/v1/updates/{j}"))
        .collect();
    let job = |i: usize| get_json(&app, &paths[i]);

    // Corrupted download: 402 is transient, so retried until the attempts run out.
    let corrupt = job(0).await;
    assert_eq!(corrupt["state"], "failed", "{corrupt}");
    assert_eq!(corrupt["result_code"], 402, "{corrupt}");
    assert_eq!(corrupt["attempt"], 2, "retried once: {corrupt}");
    assert_eq!(
        summary.groups[0].verdicts.get(&402),
        Some(&2),
        "{summary:?}"
    );

    // Wrong signing key: 404 is permanent, failed at once, never retried.
    let wrong = job(1).await;
    assert_eq!(wrong["state"], "failed", "{wrong}");
    assert_eq!(wrong["result_code"], 404, "{wrong}");
    assert_eq!(wrong["attempt"], 1, "{wrong}");
    assert_eq!(summary.groups[1].jobs.len(), 1, "the device got one Exec");

    // Fell back after the reboot: a 200 report, the old FwV, not confirmed.
    let fell = job(2).await;
    assert_eq!(fell["state"], "failed", "{fell}");
    assert_eq!(fell["result_code"], 200, "{fell}");
    assert!(
        fell["failure"].as_str().unwrap().contains("not_confirmed"),
        "{fell}"
    );
    assert_eq!(
        summary.groups[2].final_versions.get("1.0.0"),
        Some(&1),
        "{summary:?}"
    );
}

#[tokio::test]
async fn a_silent_device_is_notified_again_and_its_job_times_out_at_the_deadline() {
    let app = spawn_app_with(|c| {
        configured(c);
        c.updates.report_timeout_secs = 1;
        c.updates.tick_ms = 100;
    })
    .await;
    let (v1, v2, _) = release(&app).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v1.bin"), &v1).unwrap();
    // Never reports, and is switched off right after the session that brought the Exec.
    std::fs::write(
        dir.path().join("fleet.toml"),
        format!(
            "[[group]]\nname = \"silent\"\ncount = 1\ndev_id_prefix = \"IMEI:8800000006\"\n\
             model = \"SIM-1\"\nfirmware_version = \"1.0.0\"\nimage = \"v1.bin\"\n\
             secret = \"{SECRET}\"\nserver_secret = \"{SERVER_SECRET}\"\n\
             poll_interval_secs = 1\nreboot_delay_ms = 20\n[group.faults]\n\
             never_report = 1.0\noffline = 1.0\noffline_secs = 600\n"
        ),
    )
    .unwrap();
    let id = provision(&app, "IMEI:88000000061", "md5").await;
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(4);
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
        .json(&json!({"target_firmware_id": v2["id"], "delivery": "url", "deadline": deadline}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let uid = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let run = updraft::simulator::FleetRun {
        fleet: dir.path().join("fleet.toml"),
        server: app.url("/dm"),
        provision: false,
        api_url: Some(app.url("")),
        token: Some(app.admin_token.clone()),
        key_files: Vec::new(),
        duration: Duration::from_secs(2),
        push_listen: None,
    };
    let transport = Arc::new(HttpTransport::new(Duration::from_secs(30)).unwrap());
    let summary = updraft::simulator::run_fleet(&run, transport, app.client.clone())
        .await
        .unwrap();
    assert_eq!(summary.groups[0].jobs.len(), 1, "{summary:?}");
    let path = format!("/api/v1/updates/{uid}");
    let job = crate::helpers::wait_for("the deadline", Duration::from_secs(10), || async {
        let job = get_json(&app, &path).await;
        if job["state"] == "timed_out" {
            Ok(job)
        } else {
            Err(job.to_string())
        }
    })
    .await;
    let notes: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["note"].as_str().unwrap_or_default())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("notified again")),
        "chased before giving up: {notes:?}"
    );
    assert!(job["result_code"].is_null(), "{job}");
}

#[tokio::test]
async fn an_update_job_delivers_inline_at_max_msg_size_4096_over_wbxml_and_hmac() {
    let app = spawn_app_with(configured).await;
    let (v1, v2, v2_image) = release(&app).await;
    let dev_id = "IMEI:880000000000002";
    let id = provision(&app, dev_id, "hmac").await;
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
        .json(&json!({"target_firmware_id": v2["id"], "delivery": "inline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let uid = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let (dev, env) = sim(&app, dev_id, &v1, Encoding::Wbxml, AuthType::Hmac, 4096).await;
    let job = run_until_final(&app, &dev, &env, uid, 4).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["delivery"], "inline");
    let d = dev.lock().await;
    assert_eq!(
        &*d.firmware.as_ref().unwrap().running.image,
        v2_image.as_slice()
    );
}

//! A campaign end to end: a simulated fleet of 300 devices in three models and two source
//! versions (provisioned by the simulator, updating for real over HTTP), waves of 5, 20% and
//! the rest, and one cohort that fails its installs. The campaign pauses inside the wave where
//! that cohort crosses the threshold, naming it; no device of a later wave has started; once
//! the cohort is excluded and the campaign resumed, it succeeds with every other device on its
//! target version, and the counts add up to the fleet.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::firmware::{
    generate_key, get_json, noise, upload_firmware, variant, wait_for_job,
};
use crate::helpers::{TestApp, spawn_app_with, wait_for};

const SECRET: &str = "device-secret";
const SERVER_SECRET: &str = "server-secret";
const MODELS: [&str; 3] = ["SIM-1", "SIM-2", "SIM-3"];
const VERSIONS: [&str; 2] = ["1.0.0", "1.1.0"];
const PER_GROUP: usize = 50;

fn configured(c: &mut updraft::config::Config) {
    c.dm.public_url = None;
    c.builds.poll_interval_ms = 50;
    c.campaigns.tick_ms = 200;
    c.dm.read_inventory = true;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn upload(app: &TestApp, model: &str, version: &str, image: Vec<u8>) -> Value {
    let res = upload_firmware(app, "Acme", model, version, image).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// Images of every (model, source version) and each model's 2.0.0, all uploaded; returns the
/// folder of the source images and the target firmware ids.
async fn release(app: &TestApp, dir: &std::path::Path) -> Vec<i64> {
    generate_key(app).await;
    let mut targets = Vec::new();
    for (m, model) in MODELS.iter().enumerate() {
        let base = noise(40 + m as u64, 24 * 1024);
        for (v, version) in VERSIONS.iter().enumerate() {
            let image = variant(&base, 1 + v as u64);
            std::fs::write(dir.join(format!("{model}-{version}.bin")), &image).unwrap();
            upload(app, model, version, image).await;
        }
        let target = upload(app, model, "2.0.0", variant(&base, 9)).await;
        targets.push(target["id"].as_i64().unwrap());
    }
    targets
}

fn fleet(failing: (&str, &str)) -> String {
    let mut out = String::new();
    for (m, model) in MODELS.iter().enumerate() {
        for (v, version) in VERSIONS.iter().enumerate() {
            let faults = if (*model, *version) == failing {
                "install_failure = 0.9\ninstall_failure_code = 410\n"
            } else {
                ""
            };
            out.push_str(&format!(
                "[[group]]\nname = \"{model}-{version}\"\ncount = {PER_GROUP}\n\
                 dev_id_prefix = \"IMEI:9{m}{v}00\"\nmanufacturer = \"Acme\"\nmodel = \"{model}\"\n\
                 firmware_version = \"{version}\"\nimage = \"{model}-{version}.bin\"\n\
                 encoding = \"{}\"\nauth = \"md5\"\nsecret = \"{SECRET}\"\n\
                 server_secret = \"{SERVER_SECRET}\"\npoll_interval_secs = 3600\n\
                 chunk_size = 65536\nreboot_delay_ms = 10\n[group.faults]\n{faults}\n",
                if v == 0 { "wbxml" } else { "xml" }
            ));
        }
    }
    out
}

async fn campaign(app: &TestApp, id: i64) -> Value {
    get_json(app, &format!("/api/v1/campaigns/{id}")).await
}

async fn members(app: &TestApp, id: i64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/campaigns/{id}/devices?limit=500");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let page = get_json(app, &path).await;
        all.extend(page["devices"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    all
}

#[tokio::test]
async fn a_campaign_pauses_on_a_failing_cohort_and_succeeds_once_it_is_excluded() {
    let app = spawn_app_with(configured).await;
    let dir = tempfile::tempdir().unwrap();
    let targets = release(&app, dir.path()).await;
    let failing = ("SIM-2", "1.1.0");
    let fleet_path = dir.path().join("fleet.toml");
    std::fs::write(&fleet_path, fleet(failing)).unwrap();

    // The fleet provisions itself and reports its inventory in a first session; later
    // sessions come from Package 0.
    let push = format!("http://127.0.0.1:{}", free_port());
    let (url, api, token) = (app.url("/dm"), app.url(""), app.admin_token.clone());
    let fleet_arg = fleet_path.to_str().unwrap();
    let mut sim = Simulator(
        std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args(["simulate", "--server", &url, "--fleet", fleet_arg, "--json"])
            .args(["--provision", "--api-url", &api, "--token", &token])
            .args(["--push-listen", &push, "--duration-secs", "900"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("simulator.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let total = MODELS.len() * VERSIONS.len() * PER_GROUP;
    let body = json!({
        "name": "2.0.0 for the fleet",
        "target_firmware_ids": targets,
        "selector": {"models": MODELS},
        "waves": [{"size": 5}, {"size": "20%"}, {"size": "100%"}],
        "policy": {"pause_failure_ratio": 0.2, "min_sample": 5},
        "schedule": {"max_concurrent": 60},
        "delivery": "url",
    });
    wait_for(
        "every device's inventory",
        Duration::from_secs(120),
        || async {
            let res = app
                .admin(Method::POST, "/api/v1/campaigns/preview")
                .json(&body)
                .send()
                .await
                .unwrap();
            let preview: Value = res.json().await.unwrap();
            let known = preview["cohorts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["version"] != "");
            // The fleet is online: every device has had its first session.
            let page = get_json(&app, "/api/v1/devices?limit=500").await;
            let seen = page["devices"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| !d["last_seen_at"].is_null())
                .count();
            if preview["eligible"] == json!(total) && known && seen == total {
                Ok(())
            } else {
                Err(preview.to_string())
            }
        },
    )
    .await;

    // Create and start; the builds every cohort needs are queued at creation.
    let mut start = body.clone();
    start["start"] = json!(true);
    let res = app
        .admin(Method::POST, "/api/v1/campaigns")
        .json(&start)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["waves"].as_array().unwrap().len(), 3);
    let sizes: Vec<u64> = created["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![5, 60, 235]);
    for c in created["cohorts"].as_array().unwrap() {
        for build in [&c["full_build_id"], &c["delta_build_id"]] {
            assert!(build.is_i64(), "builds queued for every cohort: {c}");
            let done = wait_for_job(&app, build.as_i64().unwrap(), Duration::from_secs(120)).await;
            assert_eq!(done["state"], "succeeded", "{done}");
        }
    }

    // It pauses itself, naming the failing cohort, with no device of a later wave started.
    let paused = wait_for(
        "the campaign to pause",
        Duration::from_secs(240),
        || async {
            let c = campaign(&app, id).await;
            if c["state"] == "paused" {
                Ok(c)
            } else {
                Err(c["counts"].to_string())
            }
        },
    )
    .await;
    let reason = &paused["pause_reason"];
    assert_eq!(reason["cohort"]["model"], failing.0, "{reason}");
    assert_eq!(reason["cohort"]["version"], failing.1, "{reason}");
    assert!(
        reason["message"].as_str().unwrap().contains(failing.0),
        "{reason}"
    );
    assert!(reason["failed"].as_u64().unwrap() >= 2, "{reason}");
    let wave = paused["current_wave"].as_u64().unwrap();
    let all = members(&app, id).await;
    for m in &all {
        if m["wave"].as_u64().is_some_and(|w| w > wave) {
            assert_eq!(m["state"], "planned", "a later wave's device started: {m}");
        }
    }

    // Exclude the cohort, resume: the campaign succeeds.
    let res = app
        .admin(Method::PATCH, &format!("/api/v1/campaigns/{id}"))
        .json(&json!({"exclude_cohorts": [{"model": failing.0, "version": failing.1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let res = app
        .admin(Method::POST, &format!("/api/v1/campaigns/{id}/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let done = wait_for(
        "the campaign to succeed",
        Duration::from_secs(300),
        || async {
            let c = campaign(&app, id).await;
            match c["state"].as_str() {
                Some("succeeded") => Ok(c),
                Some("running") => Err(c["counts"].to_string()),
                _ => panic!("the campaign stopped: {c}"),
            }
        },
    )
    .await;
    let counts = done["counts"].as_object().unwrap();
    let sum: u64 = counts.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(sum, total as u64, "{counts:?}");
    assert_eq!(done["selected"], json!(total));
    assert_eq!(counts["excluded"], json!(PER_GROUP), "{counts:?}");
    assert_eq!(counts["succeeded"], json!(total - PER_GROUP), "{counts:?}");
    assert!(done["bytes_served"].as_u64().unwrap() > 0);

    // Every other device runs 2.0.0, confirmed by its update job.
    for m in members(&app, id).await {
        if m["model"] == failing.0 && m["version"] == failing.1 {
            assert_eq!(m["state"], "excluded");
            continue;
        }
        assert_eq!(m["state"], "succeeded", "{m}");
        let job = get_json(&app, &format!("/api/v1/updates/{}", m["job_id"])).await;
        assert_eq!(job["confirmed_version"], "2.0.0", "{job}");
    }
    assert!(
        sim.0.try_wait().unwrap().is_none(),
        "the simulator ended early"
    );
}

/// The simulator's process, killed when the test ends (however it ends).
struct Simulator(std::process::Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Caps across two server processes on one database: 150 simulated devices, one wave,
/// `max_concurrent` 20 and `max_starts_per_minute` 120. The jobs' recorded start and end times
/// show no 60-second span with more than 120 starts and never more than 20 in flight.
#[tokio::test]
async fn caps_hold_across_two_server_processes() {
    let app = spawn_app_with(configured).await;
    let second = crate::helpers::process::Server::start(app.database_url(), app.data_dir.path());
    let dir = tempfile::tempdir().unwrap();
    generate_key(&app).await;
    let base = noise(77, 16 * 1024);
    std::fs::write(dir.path().join("v1.bin"), variant(&base, 1)).unwrap();
    upload(&app, "SIM-1", "1.0.0", variant(&base, 1)).await;
    let target = upload(&app, "SIM-1", "2.0.0", variant(&base, 2)).await;
    let devices = 150;
    let fleet = format!(
        "[[group]]\nname = \"caps\"\ncount = {devices}\ndev_id_prefix = \"IMEI:77\"\n\
         manufacturer = \"Acme\"\nmodel = \"SIM-1\"\nfirmware_version = \"1.0.0\"\n\
         image = \"v1.bin\"\nencoding = \"wbxml\"\nauth = \"md5\"\nsecret = \"{SECRET}\"\n\
         server_secret = \"{SERVER_SECRET}\"\npoll_interval_secs = 3600\nreboot_delay_ms = 10\n"
    );
    let fleet_path = dir.path().join("fleet.toml");
    std::fs::write(&fleet_path, fleet).unwrap();
    let push = format!("http://127.0.0.1:{}", free_port());
    let (url, api, token) = (app.url("/dm"), app.url(""), app.admin_token.clone());
    let _sim = Simulator(
        std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args([
                "simulate",
                "--server",
                &url,
                "--fleet",
                fleet_path.to_str().unwrap(),
                "--json",
            ])
            .args(["--provision", "--api-url", &api, "--token", &token])
            .args(["--push-listen", &push, "--duration-secs", "900"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("simulator.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let body = json!({
        "name": "caps",
        "target_firmware_ids": [target["id"]],
        "selector": {"models": ["SIM-1"]},
        "waves": [{"size": "100%"}],
        "schedule": {"max_concurrent": 20, "max_starts_per_minute": 120},
        "delivery": "url",
        "start": true,
    });
    wait_for(
        "every device's inventory",
        Duration::from_secs(120),
        || async {
            let p: Value = app
                .admin(Method::POST, "/api/v1/campaigns/preview")
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let page = get_json(&app, "/api/v1/devices?limit=500").await;
            let seen = page["devices"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| !d["last_seen_at"].is_null())
                .count();
            if p["eligible"] == json!(devices) && seen == devices {
                Ok(())
            } else {
                Err(p.to_string())
            }
        },
    )
    .await;
    // Created through the second process: both schedulers run it.
    let res = second
        .request(Method::POST, "/api/v1/campaigns")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let done = wait_for(
        "the campaign to succeed",
        Duration::from_secs(300),
        || async {
            let c = second.json(&format!("/api/v1/campaigns/{id}")).await;
            match c["state"].as_str() {
                Some("succeeded") => Ok(c),
                Some("running" | "scheduled") => Err(c["counts"].to_string()),
                _ => panic!("the campaign stopped: {c}"),
            }
        },
    )
    .await;
    assert_eq!(done["counts"], json!({"succeeded": devices}), "{done}");
    // Every job's start and end, from the jobs' own records.
    let mut spans = Vec::new();
    for m in members(&app, id).await {
        let job = get_json(&app, &format!("/api/v1/updates/{}", m["job_id"])).await;
        let t = |f: &str| chrono::DateTime::parse_from_rfc3339(job[f].as_str().unwrap()).unwrap();
        spans.push((t("created_at"), t("finished_at")));
    }
    assert_eq!(spans.len(), devices);
    let mut starts: Vec<_> = spans.iter().map(|s| s.0).collect();
    starts.sort();
    for (i, s) in starts.iter().enumerate() {
        let within = starts[i..]
            .iter()
            .take_while(|t| **t < *s + chrono::Duration::seconds(60))
            .count();
        assert!(within <= 120, "{within} starts in the minute from {s}");
    }
    let mut edges: Vec<(chrono::DateTime<chrono::FixedOffset>, i32)> = spans
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
    // At one instant, an end before a start.
    edges.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    let mut flying = 0;
    for (_, d) in edges {
        flying += d;
        assert!(flying <= 20, "{flying} in flight");
    }
    // The jobs were started by both processes' schedulers or one; either way the starts are
    // spread over more than a minute by the rate cap.
    assert!(*starts.last().unwrap() - starts[0] >= chrono::Duration::seconds(30));
}

/// A device provisioned without an inventory has its DevDetail read in its first session, so
/// that campaigns can place it in a cohort.
#[tokio::test]
async fn a_device_with_an_unknown_firmware_version_has_it_read_once() {
    use updraft::simulator::{DeviceProfile, HttpTransport, Initiation, SimDevice, run_session};
    let app = spawn_app_with(configured).await;
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": "IMEI:5550001",
            "client": {"type": "md5", "name": "IMEI:5550001", "secret": SECRET},
            "server": {"type": "md5", "name": "updraft", "secret": SERVER_SECRET},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut p = DeviceProfile::new("IMEI:5550001", SECRET);
    p.server_secret = SERVER_SECRET.into();
    p.fw_version = "4.2.0".into();
    let mut dev = SimDevice::new(p);
    let transport = HttpTransport::new(Duration::from_secs(30)).unwrap();
    for _ in 0..2 {
        let report = run_session(&mut dev, &transport, &app.url("/dm"), Initiation::Client)
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    let device = get_json(&app, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(device["inventory"]["fw_version"], "4.2.0", "{device}");
    let ops = get_json(&app, &format!("/api/v1/devices/{id}/operations")).await;
    let reads: Vec<&Value> = ops
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["owner"]
                .as_str()
                .is_some_and(|w| w.starts_with("inventory:"))
        })
        .collect();
    assert_eq!(reads.len(), 3, "read once, not per session: {ops}");
}

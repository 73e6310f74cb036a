//! The campaign API without devices that update: the dry run (a cohort without a delta gets the
//! full package, with its size; nothing is written), validation with the field named, roles,
//! and the operator's actions on a draft.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::firmware::{
    generate_key, get_json, noise, upload_firmware, variant, wait_for_job,
};
use crate::helpers::{TestApp, spawn_app_with};

fn configured(c: &mut updraft::config::Config) {
    c.builds.poll_interval_ms = 50;
}

async fn firmware(app: &TestApp, version: &str, image: Vec<u8>) -> i64 {
    let res = upload_firmware(app, "Acme", "M-1", version, image).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn device(app: &TestApp, dev_id: &str, version: &str) {
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": "s"},
            "server": {"type": "md5", "name": "updraft", "secret": "t"},
            "inventory": {"manufacturer": "Acme", "model": "M-1", "fw_version": version},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
}

/// v1 and v2 with a delta v1 → v2 built; devices on v1 (4), on 0.9 (3, no image uploaded for
/// it) and on v2 (1). Returns v2's id.
async fn fleet(app: &TestApp) -> i64 {
    generate_key(app).await;
    let base = noise(7, 64 * 1024);
    let v1 = firmware(app, "1.0", base.clone()).await;
    let v2 = firmware(app, "2.0", variant(&base, 3)).await;
    let res = app
        .admin(Method::POST, "/api/v1/packages/builds")
        .json(&json!({"target_firmware_id": v2, "source_firmware_ids": [v1]}))
        .send()
        .await
        .unwrap();
    let jobs: Value = res.json().await.unwrap();
    for j in jobs["jobs"].as_array().unwrap() {
        let done = wait_for_job(app, j["id"].as_i64().unwrap(), Duration::from_secs(60)).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    for i in 0..4 {
        device(app, &format!("IMEI:10{i}"), "1.0").await;
    }
    for i in 0..3 {
        device(app, &format!("IMEI:09{i}"), "0.9").await;
    }
    device(app, "IMEI:200", "2.0").await;
    v2
}

fn body(target: i64) -> Value {
    json!({
        "name": "M-1 to 2.0",
        "target_firmware_ids": [target],
        "selector": {"models": ["M-1"]},
        "waves": [{"size": 2}, {"size": "100%"}],
        "policy": {"pause_failure_ratio": 0.2, "min_sample": 2},
    })
}

#[tokio::test]
async fn the_dry_run_names_a_version_without_a_delta_as_full_and_writes_nothing() {
    let app = spawn_app_with(configured).await;
    let v2 = fleet(&app).await;
    let builds_before = get_json(&app, "/api/v1/packages/builds").await;
    let res = app
        .admin(Method::POST, "/api/v1/campaigns/preview")
        .json(&body(v2))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["selected"], 8, "{p}");
    assert_eq!(p["eligible"], 7, "{p}");
    assert_eq!(p["excluded"], json!({"already_on_target": 1}), "{p}");
    let waves: Vec<u64> = p["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["devices"].as_u64().unwrap())
        .collect();
    assert_eq!(waves, vec![2, 5]);
    let cohort = |v: &str| {
        p["cohorts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["version"] == v)
            .cloned()
            .unwrap()
    };
    let (on_v1, on_09) = (cohort("1.0"), cohort("0.9"));
    assert_eq!(on_v1["devices"], 4);
    assert_eq!(on_v1["package"]["kind"], "delta", "{on_v1}");
    assert_eq!(on_09["devices"], 3);
    assert_eq!(on_09["package"]["kind"], "full", "{on_09}");
    let full = on_09["package"]["size"].as_u64().unwrap();
    let delta = on_v1["package"]["size"].as_u64().unwrap();
    assert!(delta < full, "{delta} < {full}");
    let full_pkg = get_json(
        &app,
        &format!("/api/v1/packages/{}", on_09["package"]["package_id"]),
    )
    .await;
    assert_eq!(full_pkg["size"].as_u64().unwrap(), full);
    assert_eq!(p["total_bytes"].as_u64().unwrap(), 4 * delta + 3 * full);
    let wave_bytes: u64 = p["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["bytes"].as_u64().unwrap())
        .sum();
    assert!(wave_bytes <= 4 * delta + 3 * full && wave_bytes + 2 >= 4 * delta + 3 * full);
    assert_eq!(p["missing_packages"], 0);
    // Nothing written: no campaign, no build queued.
    let list = get_json(&app, "/api/v1/campaigns").await;
    assert_eq!(list["campaigns"], json!([]));
    assert_eq!(
        get_json(&app, "/api/v1/packages/builds").await,
        builds_before
    );
}

#[tokio::test]
async fn a_draft_queues_its_builds_and_the_operator_steers_it() {
    let app = spawn_app_with(configured).await;
    let v2 = fleet(&app).await;
    let res = app
        .admin(Method::POST, "/api/v1/campaigns")
        .json(&body(v2))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let c: Value = res.json().await.unwrap();
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["state"], "draft");
    assert_eq!(c["selected"], 8);
    assert_eq!(c["counts"], json!({"planned": 7, "excluded": 1}), "{c}");
    assert_eq!(c["exclusions"], json!({"already_on_target": 1}));
    // The full build is shared by both cohorts; no delta for 0.9 (no source image).
    let cohorts = c["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), 2);
    assert!(cohorts.iter().all(|k| k["full_build_id"].is_i64()));
    let on_09 = cohorts.iter().find(|k| k["version"] == "0.9").unwrap();
    assert!(on_09["delta_build_id"].is_null());
    // A second campaign over the same devices finds them busy.
    let res = app
        .admin(Method::POST, "/api/v1/campaigns/preview")
        .json(&body(v2))
        .send()
        .await
        .unwrap();
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["excluded"]["busy"], 7, "{p}");
    // Members: every device once, in wave 0 or 1.
    let m = get_json(
        &app,
        &format!("/api/v1/campaigns/{id}/devices?state=planned"),
    )
    .await;
    let waves: Vec<u64> = m["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["wave"].as_u64().unwrap())
        .collect();
    assert_eq!(waves.len(), 7);
    assert_eq!(waves.iter().filter(|w| **w == 0).count(), 2);
    // Paused drafts cannot be resumed; a draft can be edited, then cancelled.
    let post = |path: String| app.admin(Method::POST, &path).send();
    assert_eq!(
        post(format!("/api/v1/campaigns/{id}/resume"))
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    let res = app
        .admin(Method::PATCH, &format!("/api/v1/campaigns/{id}"))
        .json(&json!({"exclude_cohorts": [{"model": "M-1", "version": "0.9"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let c: Value = res.json().await.unwrap();
    assert_eq!(c["counts"], json!({"planned": 4, "excluded": 4}), "{c}");
    let res = post(format!("/api/v1/campaigns/{id}/cancel"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let c: Value = res.json().await.unwrap();
    assert_eq!(c["state"], "cancelled");
    assert_eq!(c["counts"], json!({"cancelled": 4, "excluded": 4}), "{c}");
    // Cancelled, the devices are free again.
    let p: Value = app
        .admin(Method::POST, "/api/v1/campaigns/preview")
        .json(&body(v2))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["eligible"], 7, "{p}");
    let events = get_json(&app, &format!("/api/v1/campaigns/{id}/events")).await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["campaign.created", "campaign.edited", "campaign.cancelled"]
    );
}

#[tokio::test]
async fn bad_campaigns_are_refused_with_the_field_named_and_viewers_only_read() {
    let app = spawn_app_with(configured).await;
    let v2 = fleet(&app).await;
    for (patch, field) in [
        (
            json!({"policy": {"pause_failure_ratio": 1.5}}),
            "policy.pause_failure_ratio",
        ),
        (json!({"waves": []}), "waves"),
        (json!({"waves": [{"size": "0%"}]}), "waves"),
        (json!({"target_firmware_ids": [999]}), "999"),
        (
            json!({"schedule": {"timezone": "Mars/Olympus"}}),
            "schedule.timezone",
        ),
        (
            json!({"schedule": {"windows": [{"start": "25:00", "end": "01:00"}]}}),
            "schedule.windows.start",
        ),
        (json!({"membership": "sometimes"}), "membership"),
    ] {
        let mut b = body(v2);
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let res = app
            .admin(Method::POST, "/api/v1/campaigns")
            .json(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        let e: Value = res.json().await.unwrap();
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{e}"
        );
    }
    let res = app
        .admin(Method::POST, "/api/v1/campaigns")
        .json(&json!({"name": "x", "waves": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        get_json(&app, "/api/v1/campaigns").await["campaigns"],
        json!([])
    );
    let created: Value = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "dashboard", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let viewer = created["secret"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/api/v1/campaigns"))
        .bearer_auth(&viewer)
        .json(&body(v2))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .client
        .get(app.url("/api/v1/campaigns"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Devices in three time zones and a window open only in one of them now: the scheduler starts
/// that zone's devices and none of the others.
#[tokio::test]
async fn devices_start_only_inside_their_local_window() {
    let app = spawn_app_with(|c| {
        configured(c);
        c.campaigns.tick_ms = 100;
    })
    .await;
    let v2 = fleet(&app).await;
    let zones = ["Asia/Tokyo", "Europe/Paris", "America/New_York"];
    for (z, zone) in zones.iter().enumerate() {
        for i in 0..4 {
            let dev_id = format!("IMEI:7{z}{i}");
            let res = app
                .admin(Method::POST, "/api/v1/devices")
                .json(&json!({
                    "dev_id": dev_id,
                    "client": {"type": "md5", "name": dev_id, "secret": "s"},
                    "server": {"type": "md5", "name": "updraft", "secret": "t"},
                    "inventory": {"manufacturer": "Acme", "model": "M-1", "fw_version": "1.0"},
                    "timezone": zone,
                    "tags": {"ring": "zones"},
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
        }
    }
    // A window of an hour around Tokyo's time now: Paris (8 hours behind) and New York (14)
    // are outside it.
    let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
    let local = chrono::Utc::now().with_timezone(&tokyo);
    let at = |d: chrono::Duration| (local + d).format("%H:%M").to_string();
    let mut b = body(v2);
    b["selector"] = json!({"tags": {"ring": "zones"}});
    b["waves"] = json!([{"size": "100%"}]);
    b["schedule"] = json!({
        "windows": [{"start": at(chrono::Duration::minutes(-30)), "end": at(chrono::Duration::minutes(30))}],
        "timezone": "UTC",
    });
    b["start"] = json!(true);
    let res = app
        .admin(Method::POST, "/api/v1/campaigns")
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let started = crate::helpers::wait_for(
        "Tokyo's devices to start",
        Duration::from_secs(60),
        || async {
            let c = get_json(&app, &format!("/api/v1/campaigns/{id}")).await;
            let planned = c["counts"]["planned"].as_u64().unwrap_or(0);
            if planned == 8 {
                Ok(c)
            } else {
                Err(c["counts"].to_string())
            }
        },
    )
    .await;
    assert_eq!(started["state"], "running", "{started}");
    // Later ticks start nobody else.
    for _ in 0..3 {
        let seen = get_json(&app, &format!("/api/v1/campaigns/{id}")).await["updated_at"].clone();
        crate::helpers::wait_for("another tick", Duration::from_secs(30), || async {
            let c = get_json(&app, &format!("/api/v1/campaigns/{id}")).await;
            if c["updated_at"] != seen {
                Ok(())
            } else {
                Err(seen.to_string())
            }
        })
        .await;
    }
    let members = get_json(&app, &format!("/api/v1/campaigns/{id}/devices")).await;
    for m in members["devices"].as_array().unwrap() {
        let device = get_json(
            &app,
            &format!("/api/v1/devices/{}", m["device_id"].as_str().unwrap()),
        )
        .await;
        let in_tokyo = device["timezone"] == "Asia/Tokyo";
        assert_eq!(m["state"] != "planned", in_tokyo, "{m} {device}");
    }
}

/// A dynamic campaign takes in a device provisioned after its creation, in its current wave;
/// a static one does not.
#[tokio::test]
async fn devices_that_match_later_join_a_dynamic_campaign() {
    let app = spawn_app_with(|c| {
        configured(c);
        c.campaigns.tick_ms = 100;
    })
    .await;
    let v2 = fleet(&app).await;
    let tagged = |dev_id: &str| {
        json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": "s"},
            "server": {"type": "md5", "name": "updraft", "secret": "t"},
            "inventory": {"manufacturer": "Acme", "model": "M-1", "fw_version": "1.0"},
            "tags": {"ring": "dyn"},
        })
    };
    for dev_id in ["IMEI:601", "IMEI:602"] {
        let res = app
            .admin(Method::POST, "/api/v1/devices")
            .json(&tagged(dev_id))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let mut ids = Vec::new();
    for membership in ["dynamic", "static"] {
        let mut b = body(v2);
        b["name"] = json!(membership);
        b["selector"] = json!({"tags": {"ring": "dyn"}});
        b["waves"] = json!([{"size": "100%"}]);
        b["membership"] = json!(membership);
        b["start"] = json!(true);
        let res = app
            .admin(Method::POST, "/api/v1/campaigns")
            .json(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        ids.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&tagged("IMEI:603"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let late = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dynamic = crate::helpers::wait_for(
        "the late device to join",
        Duration::from_secs(60),
        || async {
            let c = get_json(&app, &format!("/api/v1/campaigns/{}", ids[0])).await;
            if c["selected"] == 3 {
                Ok(c)
            } else {
                Err(c["counts"].to_string())
            }
        },
    )
    .await;
    assert_eq!(dynamic["waves"][0]["size"], 3, "{dynamic}");
    let members = get_json(&app, &format!("/api/v1/campaigns/{}/devices", ids[0])).await;
    let joined = members["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["device_id"] == late.as_str())
        .cloned()
        .unwrap();
    assert_eq!(joined["wave"], 0, "{joined}");
    let events = get_json(&app, &format!("/api/v1/campaigns/{}/events", ids[0])).await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "campaign.members_joined"),
        "{events}"
    );
    // The static campaign: its two devices were taken by the dynamic one first (busy), and
    // the late device never joins it.
    let fixed = get_json(&app, &format!("/api/v1/campaigns/{}", ids[1])).await;
    assert_eq!(fixed["selected"], 2, "{fixed}");
    assert_eq!(fixed["exclusions"], json!({"busy": 2}), "{fixed}");
}

//! The update-job API: create one per device, read it with its history, list, cancel; the
//! refusals each have their status.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::firmware::{add_firmware, get_json, noise};
use crate::helpers::{TestApp, spawn_app};

async fn device(app: &TestApp, dev_id: &str, push_url: Option<&str>) -> String {
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": "s"},
            "server": {"type": "md5", "name": "updraft", "secret": "t"},
            "push_url": push_url,
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

async fn create(app: &TestApp, device: &str, body: Value) -> reqwest::Response {
    app.admin(Method::POST, &format!("/api/v1/devices/{device}/updates"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_job_is_created_read_listed_and_cancelled_before_its_exec() {
    let app = spawn_app().await;
    let fw = add_firmware(&app, "M1", "2.0", noise(1, 4096)).await;
    // A device Package 0 can reach is notified at once; one without waits for its session.
    let pushed = device(&app, "IMEI:1", Some("udp://127.0.0.1:9")).await;
    let silent = device(&app, "IMEI:2", None).await;

    let res = create(
        &app,
        &pushed,
        json!({"target_firmware_id": fw["id"], "delivery": "url"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["state"], "notified");
    assert_eq!(job["delivery"], "url");
    assert_eq!(job["target_version"], "2.0");
    assert_eq!(job["correlator"], format!("upd-{}-1", job["id"]));
    assert!(job["result_code"].is_null() && job["package_id"].is_null());
    let history = job["history"].as_array().unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| h["to"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["pending", "notified"]
    );

    let res = create(&app, &silent, json!({"target_firmware_id": fw["id"]})).await;
    let waiting: Value = res.json().await.unwrap();
    assert_eq!(waiting["state"], "pending");
    assert_eq!(waiting["delivery"], "auto");

    // One active job per device.
    let res = create(&app, &pushed, json!({"target_firmware_id": fw["id"]})).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    let id = job["id"].as_i64().unwrap();
    let read = get_json(&app, &format!("/api/v1/updates/{id}")).await;
    assert_eq!(read["id"], id);
    let list = get_json(&app, &format!("/api/v1/devices/{pushed}/updates")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let res = app
        .admin(Method::POST, &format!("/api/v1/updates/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["finished_at"].is_string());
    let res = app
        .admin(Method::POST, &format!("/api/v1/updates/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "a final job stays final"
    );
    // The device is free for a new job now.
    let res = create(&app, &pushed, json!({"target_firmware_id": fw["id"]})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn bad_requests_get_precise_statuses() {
    let app = spawn_app().await;
    let fw = add_firmware(&app, "M1", "2.0", noise(2, 4096)).await;
    let dev = device(&app, "IMEI:3", None).await;
    let cases = [
        (
            json!({"target_firmware_id": 999_999}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"target_firmware_id": fw["id"], "delivery": "carrier-pigeon"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"target_firmware_id": fw["id"], "deadline": "2001-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"target_firmware_id": fw["id"], "surprise": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({}), StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        assert_eq!(
            create(&app, &dev, body.clone()).await.status(),
            status,
            "{body}"
        );
    }
    let res = create(
        &app,
        "no-such-device",
        json!({"target_firmware_id": fw["id"]}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .admin(Method::GET, "/api/v1/updates/424242")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let viewer = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "v", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/devices/{dev}/updates")))
        .bearer_auth(viewer["secret"].as_str().unwrap())
        .json(&json!({"target_firmware_id": fw["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "viewers read, operators update"
    );
    // Nothing of the refused requests was written.
    let list = get_json(&app, &format!("/api/v1/devices/{dev}/updates")).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
}

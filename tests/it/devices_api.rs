//! `/api/v1/devices` and operations: provisioning, validation, queueing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

pub fn device_body(dev_id: &str) -> Value {
    json!({
        "dev_id": dev_id,
        "client": {"type": "md5", "name": dev_id, "secret": "client-secret"},
        "server": {"type": "md5", "name": "updraft", "secret": "server-secret"},
    })
}

pub async fn provision(app: &TestApp, body: Value) -> Value {
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

#[tokio::test]
async fn provision_get_list_and_delete_a_device() {
    let app = spawn_app().await;
    let created = provision(&app, device_body("IMEI:1")).await;
    assert_eq!(created["dev_id"], "IMEI:1");
    assert_eq!(created["client_auth"], "md5");
    assert!(created.get("secret").is_none() && !created.to_string().contains("client-secret"));
    let id = created["id"].as_str().unwrap();

    let got: Value = app
        .admin(Method::GET, &format!("/api/v1/devices/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["dev_id"], "IMEI:1");

    for n in 2..=5 {
        provision(&app, device_body(&format!("IMEI:{n}"))).await;
    }
    let page: Value = app
        .admin(Method::GET, "/api/v1/devices?limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["devices"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "IMEI:2");
    let page: Value = app
        .admin(Method::GET, "/api/v1/devices?limit=2&after=IMEI:4")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["devices"][0]["dev_id"], "IMEI:5");
    assert!(page["next"].is_null());

    let dup = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&device_body("IMEI:1"))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::CONFLICT);

    let gone = app
        .admin(Method::DELETE, &format!("/api/v1/devices/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let missing = app
        .admin(Method::GET, &format!("/api/v1/devices/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_provisioning_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let mut cases = Vec::new();
    let mut basic_server = device_body("IMEI:9");
    basic_server["server"]["type"] = json!("basic");
    cases.push((basic_server, "server.type"));
    let mut bad_type = device_body("IMEI:9");
    bad_type["client"]["type"] = json!("sha1");
    cases.push((bad_type, "client.type"));
    let mut empty = device_body("");
    empty["client"]["name"] = json!("x");
    cases.push((empty, "dev_id"));
    let mut bad_push = device_body("IMEI:9");
    bad_push["push_url"] = json!("ftp://x");
    cases.push((bad_push, "push_url"));
    let mut extra = device_body("IMEI:9");
    extra["colour"] = json!("red");
    cases.push((extra, "colour"));
    for (body, mentions) in cases {
        let res = app
            .admin(Method::POST, "/api/v1/devices")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = res.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(mentions),
            "{err}"
        );
    }
    let page: Value = app
        .admin(Method::GET, "/api/v1/devices")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["devices"].as_array().unwrap().is_empty());

    let viewer = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "ro", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .client
        .post(app.url("/api/v1/devices"))
        .bearer_auth(viewer)
        .json(&device_body("IMEI:10"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn operations_are_validated_and_queued_in_order() {
    let app = spawn_app().await;
    let device = provision(&app, device_body("IMEI:20")).await;
    let id = device["id"].as_str().unwrap();
    let path = format!("/api/v1/devices/{id}/operations");
    for (body, status) in [
        (
            json!({"kind": "get", "uri": "./DevDetail/FwV"}),
            StatusCode::CREATED,
        ),
        (
            json!({"kind": "replace", "uri": "./DMAcc/x/Name", "data": "n"}),
            StatusCode::CREATED,
        ),
        (
            json!({"kind": "exec", "uri": "./FUMO/1/Update", "correlator": "job-1"}),
            StatusCode::CREATED,
        ),
        (
            json!({"kind": "replace", "uri": "./x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"kind": "get", "uri": "./x", "correlator": "c"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"kind": "copy", "uri": "./x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"kind": "add", "uri": "./x", "data_base64": "not base64!"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"kind": "add", "uri": "./x", "data": "a".repeat(70_000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let res = app
            .admin(Method::POST, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
    }
    let ops: Vec<Value> = app
        .admin(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ops.len(), 3);
    assert!(ops.iter().all(|o| o["state"] == "queued"));
    assert_eq!(
        ops[0]["operation"]["Exec"]["correlator"], "job-1",
        "newest first"
    );
    let op_id = ops[2]["id"].as_i64().unwrap();
    let one: Value = app
        .admin(Method::GET, &format!("/api/v1/operations/{op_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["operation"]["Get"]["uri"], "./DevDetail/FwV");
    let missing = app
        .admin(Method::POST, "/api/v1/devices/nope/operations")
        .json(&json!({"kind": "get", "uri": "./x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn notify_without_any_transport_is_a_conflict() {
    let app = spawn_app().await;
    let device = provision(&app, device_body("IMEI:30")).await;
    let res = app
        .admin(
            Method::POST,
            &format!("/api/v1/devices/{}/notify", device["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

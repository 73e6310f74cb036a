//! `/api/v1/packages`: offline-signed uploads, the build queue end to end (corpus pair),
//! idempotent requests, downloads with Range, failures visible in the API.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use updraft::package::{
    self, KeyRing, NoProgress, PayloadEncoding, Policy, PublicKey, Release, SecretKey,
};

use crate::helpers::firmware::{
    add_firmware, blob_keys, corpus_pair, generate_key, get_json, noise, variant, wait_for_job,
};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

fn offline_package(key: &SecretKey, image: &[u8], version: &str) -> Vec<u8> {
    let release = Release {
        manufacturer: "Acme",
        model: "X1",
        target_version: version,
        source_version: None,
        security_version: 3,
        created_at: chrono::Utc::now().timestamp() - 60,
        expires_at: None,
    };
    package::build_full(
        &release,
        image,
        PayloadEncoding::FullZstd,
        key,
        &mut NoProgress,
    )
    .unwrap()
    .bytes
}

async fn post_package(app: &TestApp, bytes: Vec<u8>) -> reqwest::Response {
    app.admin(Method::POST, "/api/v1/packages")
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn refused_with(app: &TestApp, bytes: Vec<u8>, code: &str) {
    let res = post_package(app, bytes).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn import_key(app: &TestApp, key: &PublicKey) {
    let res = app
        .admin(Method::POST, "/api/v1/keys/import")
        .json(&json!({ "public_key": key.to_file_text() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_offline_signed_package_is_accepted_only_with_a_registered_key() {
    let app = spawn_app().await;
    let ci_key = SecretKey::from_seed([42; 32]);
    let image = noise(11, 50_000);
    let firmware = add_firmware(&app, "X1", "7.0", image.clone()).await;
    let bytes = offline_package(&ci_key, &image, "7.0");

    refused_with(&app, bytes.clone(), "unknown_key").await;
    assert!(blob_keys(&app, "packages/").await.is_empty());

    import_key(&app, &ci_key.public()).await;
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    refused_with(&app, tampered, "tampered_payload").await;
    refused_with(&app, bytes[..bytes.len() - 10].to_vec(), "truncated").await;
    let mut trailing = bytes.clone();
    trailing.push(0);
    refused_with(&app, trailing, "trailing_data").await;
    let mut forged = bytes.clone();
    forged[60] ^= 1; // inside the (format 2, unhashed) manifest: the signature fails
    refused_with(&app, forged, "bad_signature").await;
    refused_with(
        &app,
        b"not a package at all, clearly".repeat(3),
        "bad_header",
    )
    .await;
    assert!(blob_keys(&app, "packages/").await.is_empty());
    assert_eq!(
        get_json(&app, "/api/v1/packages").await["packages"],
        json!([])
    );

    let res = post_package(&app, bytes.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["origin"], "uploaded");
    assert_eq!(stored["kind"], "full");
    assert_eq!(stored["target_firmware_id"], firmware["id"]);
    assert_eq!(stored["key_id"], ci_key.public().id().to_string());
    assert_eq!(stored["manifest"]["security_version"], 3);
    let again = post_package(&app, bytes.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], stored["id"]);

    let downloaded = app
        .admin(Method::GET, stored["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&downloaded[..], &bytes[..]);

    // Once the key is retired, what it signs is refused.
    app.admin(
        Method::POST,
        &format!("/api/v1/keys/{}/retire", ci_key.public().id()),
    )
    .send()
    .await
    .unwrap();
    refused_with(&app, offline_package(&ci_key, &image, "7.1"), "unknown_key").await;
}

#[tokio::test]
async fn a_package_built_with_the_cli_uploads() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.path().join("new.bin"), noise(12, 20_000)).unwrap();
    run(&["package", "keygen", "--out", "ci.key"]);
    run(&[
        "package",
        "build",
        "--key",
        "ci.key",
        "--manufacturer",
        "Acme",
        "--model",
        "X1",
        "--target-version",
        "9",
        "--new",
        "new.bin",
        "--out",
        "out.upk",
    ]);
    let public = std::fs::read_to_string(dir.path().join("ci.key.pub")).unwrap();
    let bytes = std::fs::read(dir.path().join("out.upk")).unwrap();
    refused_with(&app, bytes.clone(), "unknown_key").await;
    import_key(&app, &PublicKey::from_file_text(&public).unwrap()).await;
    assert_eq!(
        post_package(&app, bytes).await.status(),
        StatusCode::CREATED
    );
}

async fn request_builds(app: &TestApp, body: Value) -> Vec<Value> {
    let res = app
        .admin(Method::POST, "/api/v1/packages/builds")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.unwrap();
    body["jobs"].as_array().unwrap().clone()
}

async fn download(app: &TestApp, id: &Value) -> Vec<u8> {
    let res = app
        .admin(Method::GET, &format!("/api/v1/packages/{id}/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.bytes().await.unwrap().to_vec()
}

fn ring_of(keys: &Value) -> KeyRing {
    KeyRing::new(
        keys.as_array()
            .unwrap()
            .iter()
            .map(|k| PublicKey::from_file_text(k["public_key"].as_str().unwrap()).unwrap()),
    )
}

#[tokio::test]
async fn the_corpus_pair_round_trips_through_the_build_queue() {
    let app = spawn_app_with(|c| c.builds.poll_interval_ms = 50).await;
    generate_key(&app).await;
    let (old, new) = corpus_pair();
    let old_fw = add_firmware(&app, "micro:bit", "1.0", old.clone()).await;
    let new_fw = add_firmware(&app, "micro:bit", "2.0", new.clone()).await;

    let jobs = request_builds(
        &app,
        json!({"target_firmware_id": new_fw["id"], "source_firmware_ids": [old_fw["id"]]}),
    )
    .await;
    assert_eq!(jobs.len(), 2);
    assert!(jobs[0]["source_firmware_id"].is_null());
    assert_eq!(jobs[1]["source_firmware_id"], old_fw["id"]);
    let full_job = wait_for_job(
        &app,
        jobs[0]["id"].as_i64().unwrap(),
        Duration::from_secs(300),
    )
    .await;
    let delta_job = wait_for_job(
        &app,
        jobs[1]["id"].as_i64().unwrap(),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(full_job["state"], "succeeded", "{full_job}");
    assert_eq!(delta_job["state"], "succeeded", "{delta_job}");
    assert_eq!(full_job["progress"], 100);
    assert_eq!(delta_job["attempts"], 1);

    // Asking again returns the same jobs and builds nothing new.
    let again = request_builds(
        &app,
        json!({"target_firmware_id": new_fw["id"], "source_firmware_ids": [old_fw["id"]]}),
    )
    .await;
    assert_eq!(again[0]["id"], jobs[0]["id"]);
    assert_eq!(again[1]["id"], jobs[1]["id"]);
    assert_eq!(again[1]["state"], "succeeded");

    let listed = get_json(
        &app,
        &format!("/api/v1/packages?target_firmware_id={}", new_fw["id"]),
    )
    .await;
    assert_eq!(listed["packages"].as_array().unwrap().len(), 2);

    let ring = ring_of(&get_json(&app, "/api/v1/keys").await);
    let policy = Policy::new(&ring, chrono::Utc::now().timestamp());
    let delta_id = &delta_job["delta_package_id"];
    assert!(delta_id.is_i64(), "the delta is kept: {delta_job}");
    let delta_meta = get_json(&app, &format!("/api/v1/packages/{delta_id}")).await;
    assert_eq!(delta_meta["kind"], "delta");
    assert_eq!(delta_meta["origin"], "built");
    assert_eq!(delta_meta["source_version"], "1.0");
    let delta = download(&app, delta_id).await;
    let (_, image) = package::apply(
        &mut &delta[..],
        &policy,
        Some(&old),
        Vec::new(),
        &mut NoProgress,
    )
    .unwrap();
    assert!(image == new, "the delta yields the new image");
    let full = download(&app, &full_job["full_package_id"]).await;
    assert!(full.len() > delta.len());
    let (manifest, image) =
        package::apply(&mut &full[..], &policy, None, Vec::new(), &mut NoProgress).unwrap();
    assert!(image == new, "the full package yields the new image");
    assert_eq!(manifest.model, "micro:bit");

    // Resumable download: a Range answers 206 with exactly those bytes.
    let res = app
        .admin(
            Method::GET,
            &format!("/api/v1/packages/{delta_id}/download"),
        )
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-{}/{}", delta.len() - 1, delta.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap(), &delta[100..]);
    let res = app
        .admin(
            Method::GET,
            &format!("/api/v1/packages/{delta_id}/download"),
        )
        .header("range", format!("bytes={}-", delta.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn without_a_signing_key_the_build_fails_visibly_and_a_new_request_retries_it() {
    let app = spawn_app_with(|c| c.builds.poll_interval_ms = 50).await;
    let fw = add_firmware(&app, "X1", "1", noise(13, 30_000)).await;
    let jobs = request_builds(&app, json!({"target_firmware_id": fw["id"]})).await;
    let id = jobs[0]["id"].as_i64().unwrap();
    let failed = wait_for_job(&app, id, Duration::from_secs(60)).await;
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("no active signing key"),
        "{failed}"
    );
    assert!(failed["full_package_id"].is_null());

    generate_key(&app).await;
    let again = request_builds(&app, json!({"target_firmware_id": fw["id"]})).await;
    assert_eq!(again[0]["id"], id);
    let done = wait_for_job(&app, id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        get_json(&app, "/api/v1/packages").await["packages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_build_requests_queue_nothing() {
    let app = spawn_app_with(|c| c.builds.enabled = false).await;
    let base = noise(14, 4000);
    let target = add_firmware(&app, "X1", "2", variant(&base, 1)).await;
    let other_model = add_firmware(&app, "X2", "1", base.clone()).await;
    for (body, status) in [
        (json!({"target_firmware_id": 999}), StatusCode::NOT_FOUND),
        (
            json!({"target_firmware_id": target["id"], "source_firmware_ids": [other_model["id"]]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"target_firmware_id": target["id"], "source_firmware_ids": [target["id"]]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"target_firmware_id": target["id"], "format": "rar"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"target": 1}), StatusCode::BAD_REQUEST),
    ] {
        let res = app
            .admin(Method::POST, "/api/v1/packages/builds")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
    }
    assert_eq!(
        get_json(&app, "/api/v1/packages/builds").await["jobs"],
        json!([])
    );
    let missing = app
        .admin(Method::GET, "/api/v1/packages/builds/77")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

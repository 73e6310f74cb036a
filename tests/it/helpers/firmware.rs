//! Firmware and package helpers: uploads, synthetic images, waiting for build jobs, blob listings.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use updraft::blob::LocalBlobs;

use super::TestApp;

/// The small corpus pair (a micro:bit image before and after an update).
pub fn corpus_pair() -> (Vec<u8>, Vec<u8>) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/bench/corpus/mcu-microbit"
    );
    (
        std::fs::read(format!("{dir}/old")).expect("corpus image old"),
        std::fs::read(format!("{dir}/new")).expect("corpus image new"),
    )
}

/// `/api/v1/firmware?…` with the pairs percent-encoded.
pub fn firmware_url(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("/api/v1/firmware?{}", query.join("&"))
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// `base` with a few bytes changed: a plausible next firmware version.
pub fn variant(base: &[u8], seed: u64) -> Vec<u8> {
    let mut out = base.to_vec();
    let patch = noise(seed, 64);
    let at = (seed as usize * 977) % (out.len() - 64);
    out[at..at + 64].copy_from_slice(&patch);
    out.extend_from_slice(&noise(seed + 1000, 100));
    out
}

pub async fn upload_firmware(
    app: &TestApp,
    manufacturer: &str,
    model: &str,
    version: &str,
    image: Vec<u8>,
) -> reqwest::Response {
    app.admin(
        Method::POST,
        &firmware_url(&[
            ("manufacturer", manufacturer),
            ("model", model),
            ("version", version),
        ]),
    )
    .header("content-type", "application/octet-stream")
    .body(image)
    .send()
    .await
    .unwrap()
}

/// Uploads and returns the new record (asserting 201).
pub async fn add_firmware(app: &TestApp, model: &str, version: &str, image: Vec<u8>) -> Value {
    let res = upload_firmware(app, "Acme", model, version, image).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

pub async fn generate_key(app: &TestApp) -> Value {
    let res = app
        .admin(Method::POST, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

pub async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    res.json().await.unwrap()
}

/// Waits for a build job to leave queued/running (failing the test after `within`).
pub async fn wait_for_job(app: &TestApp, id: i64, within: Duration) -> Value {
    let path = format!("/api/v1/packages/builds/{id}");
    crate::helpers::wait_for(&format!("build job {id} to finish"), within, || async {
        let job = get_json(app, &path).await;
        match job["state"].as_str() {
            Some("succeeded" | "failed") => Ok(job),
            _ => Err(job.to_string()),
        }
    })
    .await
}

/// Keys of the visible blobs under `prefix` in the app's local blob folder.
pub async fn blob_keys(app: &TestApp, prefix: &str) -> Vec<String> {
    let blobs = LocalBlobs::open(app.data_dir.path().join("blobs"))
        .await
        .unwrap();
    blobs
        .list(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key.as_str().to_owned())
        .collect()
}

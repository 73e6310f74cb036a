//! `/api/v1/firmware`: streamed, content-addressed, idempotent intake; limits; aborted
//! uploads; listing; deletion refused while referenced.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::firmware::{
    add_firmware, blob_keys, firmware_url, get_json, noise, upload_firmware, variant,
};
use crate::helpers::{spawn_app, spawn_app_with, wait_for};

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

#[tokio::test]
async fn an_image_streams_in_content_addressed_and_a_repeat_is_idempotent() {
    let app = spawn_app().await;
    let image = noise(1, 300_000);
    // A body in many chunks, of unknown length: the server must stream it.
    let chunks: Vec<Result<Bytes, std::io::Error>> = image
        .chunks(7_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let res = app
        .admin(
            Method::POST,
            &firmware_url(&[
                ("manufacturer", "Acme"),
                ("model", "X1"),
                ("version", "1.0"),
                ("hardware", "rev>=C"),
                ("notes", "first release"),
            ]),
        )
        .header("x-checksum-sha256", sha256_hex(&image))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["sha256"], sha256_hex(&image));
    assert_eq!(created["size"], image.len());
    assert_eq!(created["hardware"], "rev>=C");
    assert_eq!(created["notes"], "first release");
    assert_eq!(
        created["blob_key"],
        format!("firmware/{}", sha256_hex(&image))
    );
    assert_eq!(
        blob_keys(&app, "firmware/").await,
        vec![format!("firmware/{}", sha256_hex(&image))]
    );

    let again = upload_firmware(&app, "Acme", "X1", "1.0", image.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], created["id"]);

    // Same identity, other bytes: a conflict that leaves the other bytes nowhere.
    let other = noise(2, 1000);
    let conflict = upload_firmware(&app, "Acme", "X1", "1.0", other.clone()).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let body: Value = conflict.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(blob_keys(&app, "firmware/").await.len(), 1);

    // Same bytes under another version share the blob.
    add_firmware(&app, "X1", "1.0-copy", image.clone()).await;
    assert_eq!(blob_keys(&app, "firmware/").await.len(), 1);
}

#[tokio::test]
async fn a_wrong_checksum_or_bad_metadata_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            &firmware_url(&[("manufacturer", "Acme"), ("model", "X1"), ("version", "1")]),
        )
        .header("x-checksum-sha256", "00".repeat(32))
        .body(noise(3, 5000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let missing_version = app
        .admin(
            Method::POST,
            &firmware_url(&[("manufacturer", "Acme"), ("model", "X1")]),
        )
        .body(noise(3, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_version.status(), StatusCode::BAD_REQUEST);

    let control_char = upload_firmware(&app, "Acme", "X\u{1}", "1", noise(3, 10)).await;
    assert_eq!(control_char.status(), StatusCode::BAD_REQUEST);
    let empty = upload_firmware(&app, "Acme", "X1", "1", Vec::new()).await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);

    let list = get_json(&app, "/api/v1/firmware").await;
    assert_eq!(list["firmware"], json!([]));
    assert!(blob_keys(&app, "firmware/").await.is_empty());
}

#[tokio::test]
async fn an_image_over_the_limit_is_413_and_leaves_nothing_behind() {
    let app = spawn_app_with(|c| c.firmware.max_bytes = 10_000).await;
    // Declared length over the limit: refused before reading.
    let res = upload_firmware(&app, "Acme", "X1", "1", noise(4, 20_000)).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    // Unknown length: refused while streaming.
    let chunks: Vec<Result<Bytes, std::io::Error>> = noise(5, 20_000)
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let res = app
        .admin(
            Method::POST,
            &firmware_url(&[("manufacturer", "Acme"), ("model", "X1"), ("version", "1")]),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    if let Ok(res) = res {
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert!(blob_keys(&app, "firmware/").await.is_empty());
    assert_eq!(
        get_json(&app, "/api/v1/firmware").await["firmware"],
        json!([])
    );
    // Exactly at the limit is fine.
    add_firmware(&app, "X1", "1", noise(6, 10_000)).await;
}

/// The request lines of the app's /metrics: requests in flight and answered.
async fn in_flight_and_answered(client: &reqwest::Client, url: &str) -> String {
    let text = client.get(url).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("updraft_http_requests"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_upload_aborted_midway_leaves_no_row_and_no_blob() {
    let app = spawn_app().await;
    let first = Bytes::from(noise(7, 64 * 1024));
    // The uploader dies only once the server is busy with its upload: otherwise the
    // client may give up before a byte leaves it, and the server would see nothing.
    let metrics_url = app.url("/metrics");
    let probe = crate::helpers::http_client();
    let died = async move {
        wait_for(
            "the server to start on the upload",
            Duration::from_secs(30),
            || async {
                let text = in_flight_and_answered(&probe, &metrics_url).await;
                // Our own probe is one request in flight; the upload is the other.
                if text.contains("updraft_http_requests_in_flight 2") {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        )
        .await;
        Err(std::io::Error::other("the uploader died"))
    };
    let stream = futures_util::stream::iter([Ok(first.clone()), Ok(first)])
        .chain(futures_util::stream::once(died));
    let res = app
        .admin(
            Method::POST,
            &firmware_url(&[("manufacturer", "Acme"), ("model", "X1"), ("version", "1")]),
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    assert!(
        res.is_err() || res.unwrap().status().is_client_error(),
        "an aborted upload never succeeds"
    );
    // The server notices the broken connection on its own time; it is done with the
    // upload once it has answered it, which its request count in /metrics shows.
    let metrics_url = app.url("/metrics");
    wait_for(
        "the server to answer the aborted upload",
        Duration::from_secs(30),
        || async {
            let text = in_flight_and_answered(&app.client, &metrics_url).await;
            let answered = r#"updraft_http_requests_total{method="POST",route="/api/v1/firmware","#;
            if text.contains(answered) && text.contains("updraft_http_requests_in_flight 1") {
                Ok(())
            } else {
                Err(text)
            }
        },
    )
    .await;
    assert!(blob_keys(&app, "firmware/").await.is_empty());
    assert_eq!(
        get_json(&app, "/api/v1/firmware").await["firmware"],
        json!([])
    );
    // And the same identity can be uploaded properly afterwards.
    add_firmware(&app, "X1", "1", noise(7, 1000)).await;
}

#[tokio::test]
async fn firmware_lists_filter_and_paginate() {
    let app = spawn_app().await;
    let base = noise(8, 4000);
    for (i, (model, version)) in [("X1", "1"), ("X1", "2"), ("X2", "1"), ("X1", "3")]
        .iter()
        .enumerate()
    {
        add_firmware(&app, model, version, variant(&base, i as u64)).await;
    }
    let x1 = get_json(&app, "/api/v1/firmware?model=X1").await;
    let versions: Vec<&str> = x1["firmware"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1", "2", "3"]);
    let one = get_json(&app, "/api/v1/firmware?model=X2&version=1").await;
    assert_eq!(one["firmware"].as_array().unwrap().len(), 1);

    let page1 = get_json(&app, "/api/v1/firmware?limit=3").await;
    assert_eq!(page1["firmware"].as_array().unwrap().len(), 3);
    let next = page1["next"].as_i64().unwrap();
    let page2 = get_json(&app, &format!("/api/v1/firmware?limit=3&after={next}")).await;
    assert_eq!(page2["firmware"].as_array().unwrap().len(), 1);
    assert!(page2["next"].is_null());

    let bad = app
        .admin(Method::GET, "/api/v1/firmware?limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let id = page1["firmware"][0]["id"].as_i64().unwrap();
    let one = get_json(&app, &format!("/api/v1/firmware/{id}")).await;
    assert_eq!(one["model"], "X1");
    let missing = app
        .admin(Method::GET, "/api/v1/firmware/9999")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_is_refused_while_a_build_refers_to_the_firmware() {
    let app = spawn_app_with(|c| c.builds.enabled = false).await;
    let base = noise(9, 4000);
    let old = add_firmware(&app, "X1", "1", base.clone()).await;
    let new = add_firmware(&app, "X1", "2", variant(&base, 1)).await;
    let spare = add_firmware(&app, "X1", "3", variant(&base, 2)).await;
    let res = app
        .admin(Method::POST, "/api/v1/packages/builds")
        .json(&json!({"target_firmware_id": new["id"], "source_firmware_ids": [old["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    for fw in [&old, &new] {
        let res = app
            .admin(Method::DELETE, &format!("/api/v1/firmware/{}", fw["id"]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("build job"),
            "{body}"
        );
    }
    assert_eq!(blob_keys(&app, "firmware/").await.len(), 3);

    let res = app
        .admin(Method::DELETE, &format!("/api/v1/firmware/{}", spare["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(blob_keys(&app, "firmware/").await.len(), 2);
    let gone = app
        .admin(Method::GET, &format!("/api/v1/firmware/{}", spare["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

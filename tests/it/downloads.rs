//! Device-facing downloads (`/dl/{token}`): signed links, Range/HEAD/If-Range, refusals,
//! byte accounting, replicas sharing a key, S3 redirects, OMA Download descriptors.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use updraft::downloads::token::{self, Grant, TokenKey};
use updraft::package::{self, NoProgress, PayloadEncoding, Release, SecretKey};

use crate::helpers::firmware::noise;
use crate::helpers::{TestApp, spawn_app_with, spawn_replica};

const KEY: &str = "test-download-key-0123456789abcdef0123456789";

async fn app() -> TestApp {
    spawn_app_with(|c| c.downloads.token_key = Some(KEY.to_owned().into())).await
}

/// Uploads an offline-signed full package of `len` random bytes; returns (id, file bytes).
async fn add_package(app: &TestApp, seed: u64, len: usize) -> (i64, Vec<u8>) {
    let key = SecretKey::from_seed([9; 32]);
    let res = app
        .admin(Method::POST, "/api/v1/keys/import")
        .json(&json!({ "public_key": key.public().to_file_text() }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let version = format!("1.{seed}");
    let release = Release {
        manufacturer: "Acme",
        model: "X1",
        target_version: &version,
        source_version: None,
        security_version: 1,
        created_at: chrono::Utc::now().timestamp() - 60,
        expires_at: None,
    };
    let bytes = package::build_full(
        &release,
        &noise(seed, len),
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
    let stored: Value = res.json().await.unwrap();
    (stored["id"].as_i64().unwrap(), bytes)
}

async fn mint(app: &TestApp, package_id: i64, body: Value) -> Value {
    let res = app
        .admin(
            Method::POST,
            &format!("/api/v1/packages/{package_id}/download-links"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

fn token_of(link: &Value) -> String {
    link["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// Waits until the job key's accounted bytes reach `expected` (they are written when a
/// response's body is dropped, just after the client has read it), then checks equality.
async fn wait_for_bytes(app: &TestApp, job_key: &str, expected: u64) -> Value {
    let stats = crate::helpers::wait_for(
        &format!("{job_key}: {expected} bytes accounted"),
        Duration::from_secs(10),
        || async {
            let res = app
                .admin(Method::GET, &format!("/api/v1/downloads/{job_key}"))
                .send()
                .await
                .unwrap();
            if res.status() != StatusCode::OK {
                return Err(format!("status {}", res.status()));
            }
            let stats: Value = res.json().await.unwrap();
            let served = stats["bytes_served"].as_u64().unwrap();
            if served >= expected {
                Ok(stats)
            } else {
                Err(format!("{served} bytes so far"))
            }
        },
    )
    .await;
    assert_eq!(stats["bytes_served"].as_u64().unwrap(), expected, "{stats}");
    stats
}

fn header_of(res: &reqwest::Response, name: header::HeaderName) -> &str {
    res.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn a_link_serves_the_package_with_range_head_and_if_range() {
    let app = app().await;
    let (id, bytes) = add_package(&app, 1, 300_000).await;
    let len = bytes.len();
    let link = mint(&app, id, json!({ "job_key": "job-1", "ttl_secs": 600 })).await;
    assert_eq!(link["job_key"], "job-1");
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.url("/dl/")), "{url}");
    let client = &app.client;

    let full = client.get(&url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(header_of(&full, header::CONTENT_LENGTH), len.to_string());
    assert_eq!(header_of(&full, header::ACCEPT_RANGES), "bytes");
    let etag = header_of(&full, header::ETAG).to_owned();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert_eq!(etag, format!("\"{sha}\""));
    let last_modified = header_of(&full, header::LAST_MODIFIED).to_owned();
    assert_eq!(&full.bytes().await.unwrap()[..], &bytes[..]);
    let mut served = len as u64;

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header_of(&head, header::CONTENT_LENGTH), len.to_string());
    assert_eq!(header_of(&head, header::ETAG), etag);
    assert!(head.bytes().await.unwrap().is_empty());

    let ranged = |range: String, if_range: Option<String>| {
        let mut req = client.get(&url).header(header::RANGE, range);
        if let Some(condition) = if_range {
            req = req.header(header::IF_RANGE, condition);
        }
        req.send()
    };
    let part = ranged("bytes=1000-1999".into(), None).await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header_of(&part, header::CONTENT_RANGE),
        format!("bytes 1000-1999/{len}")
    );
    assert_eq!(header_of(&part, header::CONTENT_LENGTH), "1000");
    assert_eq!(&part.bytes().await.unwrap()[..], &bytes[1000..2000]);
    served += 1000;

    // Resuming at an offset to the end, and a suffix range.
    let tail = ranged(format!("bytes={}-", len - 10), None).await.unwrap();
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&tail.bytes().await.unwrap()[..], &bytes[len - 10..]);
    let suffix = ranged("bytes=-7".into(), None).await.unwrap();
    assert_eq!(
        header_of(&suffix, header::CONTENT_RANGE),
        format!("bytes {}-{}/{len}", len - 7, len - 1)
    );
    assert_eq!(&suffix.bytes().await.unwrap()[..], &bytes[len - 7..]);
    served += 17;

    // HEAD with a range: the 206 headers, no body.
    let head_part = client
        .head(&url)
        .header(header::RANGE, "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(head_part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header_of(&head_part, header::CONTENT_LENGTH), "100");
    assert!(head_part.bytes().await.unwrap().is_empty());

    // If-Range: the same entity tag or date resumes; another tag gets the whole file.
    let resumed = ranged("bytes=5-9".into(), Some(etag.clone()))
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&resumed.bytes().await.unwrap()[..], &bytes[5..10]);
    let by_date = ranged("bytes=5-9".into(), Some(last_modified))
        .await
        .unwrap();
    assert_eq!(by_date.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&by_date.bytes().await.unwrap()[..], &bytes[5..10]);
    let stale = ranged("bytes=5-9".into(), Some("\"0000\"".into()))
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(header_of(&stale, header::CONTENT_LENGTH), len.to_string());
    assert_eq!(&stale.bytes().await.unwrap()[..], &bytes[..]);
    served += 10 + len as u64;

    // Several ranges: answered with the whole file (documented).
    let multi = ranged("bytes=0-1,5-6".into(), None).await.unwrap();
    assert_eq!(multi.status(), StatusCode::OK);
    assert_eq!(multi.bytes().await.unwrap().len(), len);
    served += len as u64;

    let unsatisfiable = ranged(format!("bytes={len}-"), None).await.unwrap();
    assert_eq!(unsatisfiable.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header_of(&unsatisfiable, header::CONTENT_RANGE),
        format!("bytes */{len}")
    );

    let stats = wait_for_bytes(&app, "job-1", served).await;
    assert_eq!(stats["package_id"], id);
    assert_eq!(stats["responses"], 8, "{stats}");
}

#[tokio::test]
async fn bad_forged_and_expired_links_are_refused() {
    let app = app().await;
    let (id, _) = add_package(&app, 2, 10_000).await;
    let link = mint(&app, id, json!({ "job_key": "job-2" })).await;
    let token = token_of(&link);
    let get = |token: String| app.client.get(app.url(&format!("/dl/{token}"))).send();

    assert_eq!(get(token.clone()).await.unwrap().status(), StatusCode::OK);
    for bad in ["x", "AAAA", "not-a-token-at-all", &"A".repeat(300)] {
        let res = get(bad.to_owned()).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{bad}");
    }
    // One character changed anywhere in the token.
    let mut altered = token.clone().into_bytes();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(get(altered).await.unwrap().status(), StatusCode::FORBIDDEN);

    let far = chrono::Utc::now().timestamp() + 3600;
    let grant = |expires_at| Grant {
        job_key: "job-2".into(),
        package_id: id,
        expires_at,
    };
    // Signed with another key: forged, even though it is otherwise perfect.
    let other_key = TokenKey::new(b"some-other-key-0123456789abcdef0123").unwrap();
    let forged = token::issue(&other_key, &grant(far), [1; 16]).unwrap();
    assert_eq!(get(forged).await.unwrap().status(), StatusCode::FORBIDDEN);

    // Genuine but expired: 410, and so for its descriptor.
    let key = TokenKey::new(KEY.as_bytes()).unwrap();
    let expired = token::issue(&key, &grant(chrono::Utc::now().timestamp() - 1), [2; 16]).unwrap();
    assert_eq!(
        get(expired.clone()).await.unwrap().status(),
        StatusCode::GONE
    );
    let dd = app
        .client
        .get(app.url(&format!("/dl/{expired}/dd")))
        .send()
        .await
        .unwrap();
    assert_eq!(dd.status(), StatusCode::GONE);
    // A genuine token for a package that does not exist is gone too.
    let missing = token::issue(
        &key,
        &Grant {
            package_id: id + 1000,
            ..grant(far)
        },
        [3; 16],
    )
    .unwrap();
    assert_eq!(get(missing).await.unwrap().status(), StatusCode::GONE);
}

#[tokio::test]
async fn a_token_fetches_only_its_own_package_and_job() {
    let app = app().await;
    let (a, a_bytes) = add_package(&app, 3, 20_000).await;
    let (b, b_bytes) = add_package(&app, 4, 30_000).await;
    let link_a = mint(&app, a, json!({ "job_key": "job-a" })).await;
    let link_b = mint(&app, b, json!({ "job_key": "job-b" })).await;
    let app = &app;
    let fetch = |token: String| async move {
        let res = app
            .client
            .get(app.url(&format!("/dl/{token}")))
            .send()
            .await
            .unwrap();
        (res.status(), res.bytes().await.unwrap())
    };
    assert_eq!(fetch(token_of(&link_a)).await.1, a_bytes);
    assert_eq!(fetch(token_of(&link_b)).await.1, b_bytes);

    // Re-pointing job A's token at package B, or at job B, keeps A's tag: refused.
    let raw = URL_SAFE_NO_PAD.decode(token_of(&link_a)).unwrap();
    let mut to_b = raw.clone();
    to_b[9..17].copy_from_slice(&b.to_be_bytes());
    let (status, _) = fetch(URL_SAFE_NO_PAD.encode(to_b)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut to_job_b = raw.clone();
    let key_at = 34;
    assert_eq!(&to_job_b[key_at..key_at + 5], b"job-a");
    to_job_b[key_at + 4] = b'b';
    let (status, _) = fetch(URL_SAFE_NO_PAD.encode(to_job_b)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Each job's bytes are its own.
    wait_for_bytes(app, "job-a", a_bytes.len() as u64).await;
    wait_for_bytes(app, "job-b", b_bytes.len() as u64).await;
}

#[tokio::test]
async fn two_servers_on_one_database_serve_each_others_links() {
    let first = app().await;
    let second = spawn_replica(&first, |c| {
        c.downloads.token_key = Some(KEY.to_owned().into());
    })
    .await;
    let (id, bytes) = add_package(&first, 5, 50_000).await;

    let from_first = mint(&first, id, json!({ "job_key": "job-r" })).await;
    let res = first
        .client
        .post(second.url(&format!("/api/v1/packages/{id}/download-links")))
        .bearer_auth(&first.admin_token)
        .json(&json!({ "job_key": "job-r" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let from_second: Value = res.json().await.unwrap();

    // Each server serves the other's link (and its own).
    for (server, link) in [
        (second.addr, &from_first),
        (first.addr, &from_second),
        (first.addr, &from_first),
    ] {
        let url = format!("http://{server}/dl/{}", token_of(link));
        let got = first.client.get(url).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(&got.bytes().await.unwrap()[..], &bytes[..]);
    }
    // Both servers' responses add up under the one job key.
    wait_for_bytes(&first, "job-r", 3 * bytes.len() as u64).await;

    // A server with another key refuses them: the key is what replicas must share.
    let stranger = spawn_replica(&first, |c| {
        c.downloads.token_key = Some(
            "a-different-key-entirely-0123456789abcdef"
                .to_owned()
                .into(),
        );
    })
    .await;
    let res = first
        .client
        .get(stranger.url(&format!("/dl/{}", token_of(&from_first))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_a_configured_key_one_is_generated_into_the_data_folder_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let first = spawn_app_with(|_| {}).await;
    let key_file = first.data_dir.path().join("download-token.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (id, bytes) = add_package(&first, 6, 5_000).await;
    let link = mint(&first, id, json!({})).await;
    assert!(link["job_key"].as_str().unwrap().starts_with("link-"));
    // Another process on the same data folder reads the same key.
    let second = spawn_replica(&first, |c| c.data_dir = first.data_dir.path().to_owned()).await;
    let res = first
        .client
        .get(second.url(&format!("/dl/{}", token_of(&link))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(&res.bytes().await.unwrap()[..], &bytes[..]);
}

#[tokio::test]
async fn minting_checks_the_package_the_job_key_the_lifetime_and_the_role() {
    let app = app().await;
    let (id, _) = add_package(&app, 7, 5_000).await;
    let post = |path: String, body: Value| app.admin(Method::POST, &path).json(&body).send();
    let path = format!("/api/v1/packages/{id}/download-links");
    for (body, status) in [
        (json!({ "job_key": "has space" }), StatusCode::BAD_REQUEST),
        (
            json!({ "job_key": "k".repeat(65) }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "ttl_secs": 0 }), StatusCode::BAD_REQUEST),
        (
            json!({ "ttl_secs": 40 * 24 * 3600 }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "unknown": 1 }), StatusCode::BAD_REQUEST),
    ] {
        let res = post(path.clone(), body.clone()).await.unwrap();
        assert_eq!(res.status(), status, "{body}");
    }
    let res = post("/api/v1/packages/999999/download-links".into(), json!({}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let link = mint(&app, id, json!({ "ttl_secs": 120 })).await;
    let expires: chrono::DateTime<chrono::Utc> =
        link["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!(
        left.num_seconds() > 100 && left.num_seconds() <= 120,
        "{left}"
    );

    let res = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({ "name": "ro", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    let viewer = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .client
        .post(app.url(&path))
        .bearer_auth(viewer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.admin(Method::GET, "/api/v1/downloads/never-served")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_download_descriptor_points_at_the_link_and_install_status_is_recorded() {
    let app = app().await;
    let (id, bytes) = add_package(&app, 8, 8_000).await;
    let link = mint(&app, id, json!({ "job_key": "job-dd" })).await;
    let dd = app
        .client
        .get(link["descriptor_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(dd.status(), StatusCode::OK);
    assert_eq!(
        header_of(&dd, header::CONTENT_TYPE),
        "application/vnd.oma.dd+xml"
    );
    let xml = dd.text().await.unwrap();
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = xml
            .find(&open)
            .unwrap_or_else(|| panic!("no {name} in {xml}"))
            + open.len();
        let end = xml[start..].find("</").unwrap() + start;
        xml[start..end].to_owned()
    };
    assert!(xml.contains("<media xmlns=\"http://www.openmobilealliance.org/xmlns/dd\">"));
    assert_eq!(element("size"), bytes.len().to_string());
    assert_eq!(element("objectURI"), link["url"].as_str().unwrap());
    assert_eq!(element("DDVersion"), "1.0");
    let object = app.client.get(element("objectURI")).send().await.unwrap();
    assert_eq!(&object.bytes().await.unwrap()[..], &bytes[..]);

    let notify_uri = element("installNotifyURI");
    let notify = |uri: String, body: &'static str| app.client.post(uri).body(body).send();
    let res = notify(notify_uri.clone(), "902 User Cancelled\n")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = notify(notify_uri.clone(), "hello").await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let forged = notify_uri.replace("/dl/", "/dl/AAAA");
    assert_eq!(
        notify(forged, "900 Success").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let stats = wait_for_bytes(&app, "job-dd", bytes.len() as u64).await;
    assert_eq!(stats["install"]["status"], 902, "{stats}");
    assert_eq!(stats["install"]["message"], "User Cancelled");
    // A later report replaces the earlier one.
    notify(notify_uri, "900 Success").await.unwrap();
    let store = app.store().await;
    let stats = store.downloads().get("job-dd").await.unwrap().unwrap();
    assert_eq!(stats.install.unwrap().status, 900);
    assert_eq!(stats.bytes_served, bytes.len() as u64);
}

#[tokio::test]
async fn with_s3_and_redirects_on_a_download_is_sent_to_a_presigned_url() {
    let Some(s3) = crate::helpers::s3::fresh_bucket().await else {
        return;
    };
    let app = spawn_app_with(|c| {
        c.downloads.token_key = Some(KEY.to_owned().into());
        c.blob.s3 = s3;
        c.blob.backend = Some(updraft::config::BlobBackendKind::S3);
        c.downloads.redirect_to_s3 = true;
        c.downloads.presign_ttl_secs = 60;
    })
    .await;
    let (id, bytes) = add_package(&app, 9, 40_000).await;
    let link = mint(&app, id, json!({ "job_key": "job-s3" })).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = link["url"].as_str().unwrap();
    let res = no_redirects.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = header_of(&res, header::LOCATION).to_owned();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(location.contains("X-Amz-Expires=60"), "{location}");
    // The presigned URL serves the package, ranges included, without our token.
    let direct = no_redirects.get(&location).send().await.unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(&direct.bytes().await.unwrap()[..], &bytes[..]);
    let ranged = no_redirects
        .get(&location)
        .header(header::RANGE, "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&ranged.bytes().await.unwrap()[..], &bytes[10..20]);
    // HEAD is answered by us (a presigned GET does not sign HEAD).
    let head = no_redirects.head(url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        header_of(&head, header::CONTENT_LENGTH),
        bytes.len().to_string()
    );
    // Refusals come before any redirect.
    let res = no_redirects
        .get(app.url("/dl/AAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn with_s3_without_redirects_the_bytes_are_proxied() {
    let Some(s3) = crate::helpers::s3::fresh_bucket().await else {
        return;
    };
    let app = spawn_app_with(|c| {
        c.downloads.token_key = Some(KEY.to_owned().into());
        c.blob.s3 = s3;
        c.blob.backend = Some(updraft::config::BlobBackendKind::S3);
    })
    .await;
    let (id, bytes) = add_package(&app, 10, 40_000).await;
    let link = mint(&app, id, json!({ "job_key": "job-s3p" })).await;
    let res = app
        .client
        .get(link["url"].as_str().unwrap())
        .header(header::RANGE, "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&res.bytes().await.unwrap()[..], &bytes[100..]);
    wait_for_bytes(&app, "job-s3p", bytes.len() as u64 - 100).await;
}

//! The HTTP edge: health, readiness, metrics, request ids, JSON errors, authentication.

use reqwest::StatusCode;

use crate::helpers::{database::fresh_postgres, s3, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_and_readyz_answer_200_on_a_fresh_app() {
    let app = spawn_app().await;
    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["ok"], true);
    assert_eq!(body["blob_store"]["backend"], "local");
}

#[tokio::test]
async fn readyz_is_503_when_the_blob_folder_is_gone() {
    let app = spawn_app().await;
    std::fs::remove_dir_all(app.data_dir.path().join("blobs")).unwrap();
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["blob_store"]["ok"], false);
    assert_eq!(body["database"]["ok"], true);
}

#[tokio::test]
async fn readyz_is_503_when_postgres_goes_away() {
    let db = fresh_postgres().await;
    let url = db.url.clone();
    let app = spawn_app_with(|c| c.database_url = Some(url.into())).await;
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );
    db.drop_now().await;
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"]["ok"], false);
    assert_eq!(body["database"]["backend"], "postgres");
}

#[tokio::test]
async fn readyz_follows_the_s3_bucket() {
    let Some(mut s3config) = s3::fresh_bucket().await else {
        return;
    };
    let good = s3config.clone();
    let app = spawn_app_with(|c| c.blob.s3 = good).await;
    let body: serde_json::Value = app
        .get("/readyz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["blob_store"]["backend"], "s3");
    assert_eq!(body["blob_store"]["ok"], true);

    s3config.bucket = Some("no-such-bucket-here".into());
    let app = spawn_app_with(|c| c.blob.s3 = s3config).await;
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // An endpoint where nothing listens at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = spawn_app_with(|c| {
        c.blob.s3 = updraft::config::S3Config {
            endpoint: Some(format!("http://{closed}")),
            ..c.blob.s3.clone()
        };
        c.blob.s3.bucket = Some("x".into());
        c.blob.s3.access_key_id = Some("k".into());
        c.blob.s3.secret_access_key = Some("s".to_owned().into());
        c.blob.s3.path_style = true;
    })
    .await;
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.get("/healthz").send().await.unwrap();
    }
    app.get("/api/v1/whoami").send().await.unwrap();
    let metrics = app.get("/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            r#"updraft_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"updraft_http_requests_total{method="GET",route="/api/v1/whoami",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        "updraft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\""
    ));
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let app = spawn_app().await;
    let echoed = app
        .get("/healthz")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let replaced = app
        .get("/healthz")
        .header("x-request-id", "has spaces; and=junk")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a generated uuid, got {id}");
    let fresh = app.get("/healthz").send().await.unwrap();
    assert_ne!(
        fresh.headers()["x-request-id"],
        replaced.headers()["x-request-id"]
    );
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = spawn_app().await;
    let res = app.get("/no/such/thing").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/no/such/thing")
    );
}

#[tokio::test]
async fn whoami_needs_a_valid_token() {
    let app = spawn_app().await;
    let none = app.get("/api/v1/whoami").send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"updraft\""
    );
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let wrong = app
        .get("/api/v1/whoami")
        .bearer_auth("updraft_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = app
        .get("/api/v1/whoami")
        .header("authorization", format!("Basic {}", app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    let ok = app
        .get("/api/v1/whoami")
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["name"], "bootstrap");
}

#[tokio::test]
async fn a_fresh_database_without_configured_token_generates_one_once() {
    let db = crate::helpers::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let config = updraft::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        database_url: Some(db.url.clone().into()),
        ..Default::default()
    };
    let mut first = updraft::startup::Application::build(config.clone())
        .await
        .unwrap();
    let token = first
        .take_generated_admin_token()
        .expect("generated on first start");
    drop(first);
    let mut second = updraft::startup::Application::build(config).await.unwrap();
    assert!(
        second.take_generated_admin_token().is_none(),
        "only on the first start"
    );
    let addr = second.local_addr();
    let stop = second.handle();
    let task = tokio::spawn(second.run_until_stopped());
    use secrecy::ExposeSecret;
    let res = crate::helpers::http_client()
        .get(format!("http://{addr}/api/v1/whoami"))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    stop.stop().await;
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_graceful_stop_returns_ok_and_closes_the_port() {
    let app = spawn_app().await;
    let addr = app.addr;
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
    app.stop().await.expect("clean shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}

//! `/api/v1/tokens`: creation, roles, revocation, and bad input.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_admin_creates_a_viewer_token_that_can_read_but_not_administer() {
    let app = spawn_app().await;
    let res = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "dashboard", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: serde_json::Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "viewer");

    let who: serde_json::Value = app
        .get("/api/v1/whoami")
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["role"], "viewer");
    assert_eq!(who["name"], "dashboard");

    let forbidden = app
        .client
        .get(app.url("/api/v1/tokens"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = forbidden.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    let list: Vec<serde_json::Value> = app
        .admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter().all(|t| t.get("secret").is_none()),
        "secrets never listed"
    );

    let id = created["id"].as_str().unwrap();
    let revoked = app
        .admin(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let after = app
        .get("/api/v1/whoami")
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let again = app
        .admin(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_token_requests_get_precise_errors_and_write_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            app.admin(Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "x", "role": "root"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            app.admin(Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "", "role": "viewer"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            app.admin(Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "x", "role": "viewer", "extra": 1})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            app.admin(Method::POST, "/api/v1/tokens")
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            app.admin(Method::POST, "/api/v1/tokens")
                .header("content-type", "text/plain")
                .body("name=x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            app.admin(Method::POST, "/api/v1/tokens")
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"name\": \"{}\", \"role\": \"viewer\"}}",
                    "a".repeat(300 * 1024)
                )),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), status);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    let list: Vec<serde_json::Value> = app
        .admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "only the bootstrap token: {list:?}");

    let dup = |name: &str| {
        app.admin(Method::POST, "/api/v1/tokens")
            .json(&json!({"name": name, "role": "operator"}))
            .send()
    };
    assert_eq!(dup("ci").await.unwrap().status(), StatusCode::CREATED);
    let conflict = dup("ci").await.unwrap();
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
}

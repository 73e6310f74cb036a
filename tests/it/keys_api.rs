//! `/api/v1/keys`: generate, rotate, list, retire, import; private keys stay in files.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::firmware::{generate_key, get_json};
use crate::helpers::spawn_app;

#[tokio::test]
async fn keys_rotate_with_the_old_key_still_valid_until_retired() {
    let app = spawn_app().await;
    assert_eq!(get_json(&app, "/api/v1/keys").await, json!([]));

    let first = generate_key(&app).await;
    assert_eq!(first["state"], "active");
    assert_eq!(first["origin"], "generated");
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert!(
        first["public_key"]
            .as_str()
            .unwrap()
            .starts_with("updraft-ed25519-public ")
    );

    // The private half is a 0600 file in the key folder, in the keygen format.
    let path = app.data_dir.path().join("keys").join(format!("{id}.key"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("updraft-ed25519-secret "));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let secret = updraft::package::SecretKey::from_file_text(&text).unwrap();
    assert_eq!(secret.public().id().to_string(), id);

    let second = generate_key(&app).await;
    assert_ne!(second["id"], first["id"]);
    let list = get_json(&app, "/api/v1/keys").await;
    let states: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&(id.as_str(), "valid")), "{list}");
    assert!(
        states.contains(&(second["id"].as_str().unwrap(), "active")),
        "{list}"
    );
    assert!(!list.to_string().contains(&text[23..]), "no secret listed");

    let retired: Value = app
        .admin(Method::POST, &format!("/api/v1/keys/{id}/retire"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retired["state"], "retired");
    assert!(retired["retired_at"].is_string());

    let missing = app
        .admin(Method::POST, "/api/v1/keys/0000000000000000/retire")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_public_key_imports_once_and_garbage_is_refused() {
    let app = spawn_app().await;
    let ci = updraft::package::SecretKey::from_seed([5; 32]).public();
    let import = |text: String| {
        app.admin(Method::POST, "/api/v1/keys/import")
            .json(&json!({ "public_key": text }))
            .send()
    };
    let res = import(ci.to_file_text()).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let key: Value = res.json().await.unwrap();
    assert_eq!(key["id"], ci.id().to_string());
    assert_eq!(key["state"], "valid");
    assert_eq!(key["origin"], "imported");
    assert_eq!(
        import(ci.to_file_text()).await.unwrap().status(),
        StatusCode::OK
    );

    let garbage = import("updraft-ed25519-public zz".into()).await.unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let secret_instead = import(updraft::package::SecretKey::from_seed([5; 32]).to_file_text())
        .await
        .unwrap();
    assert_eq!(secret_instead.status(), StatusCode::BAD_REQUEST);

    app.admin(Method::POST, &format!("/api/v1/keys/{}/retire", ci.id()))
        .send()
        .await
        .unwrap();
    let back = import(ci.to_file_text()).await.unwrap();
    assert_eq!(back.status(), StatusCode::CONFLICT);
    assert_eq!(
        get_json(&app, "/api/v1/keys")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn only_admins_manage_keys() {
    let app = spawn_app().await;
    let created: Value = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "ops", "role": "operator"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/keys"))
        .bearer_auth(created["secret"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(get_json(&app, "/api/v1/keys").await, json!([]));
}

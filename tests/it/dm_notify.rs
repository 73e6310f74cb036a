//! Package 0 is sent once per trigger across replicas, and the gateway webhook URL (which
//! carries the gateway's credential) never ends up in a stored error.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use updraft::config::Config;

use crate::helpers::slow_gateway::slow_gateway;
use crate::helpers::{TestApp, fresh_database, spawn_app_with, wait_for};

async fn provision(app: &TestApp, dev_id: &str) -> String {
    let created: Value = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": "s"},
            "server": {"type": "md5", "name": "updraft", "secret": "t"},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_replicas_never_send_one_notification_at_the_same_time() {
    // Every attempt takes longer than the retry interval: without a lease shared by the
    // notify path and the workers, the workers would send it again while it is in flight.
    let (webhook, calls) = slow_gateway(500, Duration::from_millis(1500)).await;
    let db = fresh_database().await;
    let share = |c: &mut Config| {
        c.database_url = Some(db.url.clone().into());
        c.dm.push_webhook_url = Some(webhook.clone().into());
        c.dm.notification_retry_secs = 1;
        c.dm.notification_max_attempts = 3;
    };
    let a = spawn_app_with(share).await;
    let _b = spawn_app_with(share).await;
    let id = provision(&a, "IMEI:440000000000001").await;
    let res = a
        .admin(Method::POST, &format!("/api/v1/devices/{id}/notify"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let notification: Value = res.json().await.unwrap();
    let last_error = notification["last_error"].as_str().unwrap();
    assert!(last_error.contains("500"), "{last_error}");
    for secret in ["SECRET-KEY-123", "gw-password", "api_key"] {
        assert!(
            !last_error.contains(secret),
            "the stored error shows the webhook URL: {last_error}"
        );
    }

    // Wait until the notification has expired after its last attempt.
    let store = updraft::store::Store::connect_url(&db.url).await.unwrap();
    let nid = notification["id"].as_i64().unwrap();
    let record = wait_for(
        "the notification to expire",
        Duration::from_secs(30),
        || {
            let store = &store;
            async move {
                let n = store.notifications().get(nid).await.unwrap().unwrap();
                if n.state == "expired" {
                    Ok(n)
                } else {
                    Err(format!("{n:?}"))
                }
            }
        },
    )
    .await;
    assert_eq!(record.attempts, 3);
    let mut calls = calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(calls.len(), 3, "one send per attempt, no more: {calls:?}");
    for pair in calls.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two sends of one notification overlapped: {calls:?}"
        );
    }
}

//! The store on the database under test (SQLite, or PostgreSQL with UPDRAFT_TEST_DB=postgres).

use chrono::Utc;
use updraft::access::Role;
use updraft::store::{Store, StoreError};

use crate::helpers::fresh_database;

async fn migrated_store() -> (Store, crate::helpers::TestDatabase) {
    let db = fresh_database().await;
    let store = Store::connect_url(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    (store, db)
}

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_concurrently() {
    let db = fresh_database().await;
    let a = Store::connect_url(&db.url).await.unwrap();
    let b = Store::connect_url(&db.url).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.migrate().await.unwrap();
    assert_eq!(a.tokens().count().await.unwrap(), 0);
}

#[tokio::test]
async fn tokens_round_trip_and_names_and_digests_are_unique() {
    let (store, _db) = migrated_store().await;
    let tokens = store.tokens();
    let now = Utc::now();
    let t = tokens
        .insert("ci", Role::Operator, &"a".repeat(64), now)
        .await
        .unwrap();
    assert_eq!(t.role, Role::Operator);
    let found = tokens.find_active(&"a".repeat(64)).await.unwrap().unwrap();
    assert_eq!(found.id, t.id);
    assert!(tokens.find_active(&"b".repeat(64)).await.unwrap().is_none());

    let same_name = tokens
        .insert("ci", Role::Viewer, &"b".repeat(64), now)
        .await;
    assert!(
        matches!(same_name, Err(StoreError::Conflict(_))),
        "{same_name:?}"
    );
    let same_digest = tokens
        .insert("other", Role::Viewer, &"a".repeat(64), now)
        .await;
    assert!(
        matches!(same_digest, Err(StoreError::Conflict(_))),
        "{same_digest:?}"
    );
    assert_eq!(tokens.count().await.unwrap(), 1);
}

#[tokio::test]
async fn revoked_tokens_are_not_found_and_cannot_be_revoked_twice() {
    let (store, _db) = migrated_store().await;
    let tokens = store.tokens();
    let t = tokens
        .insert("x", Role::Viewer, &"c".repeat(64), Utc::now())
        .await
        .unwrap();
    tokens.touch(&t.id, Utc::now()).await.unwrap();
    tokens.revoke(&t.id, Utc::now()).await.unwrap();
    assert!(tokens.find_active(&"c".repeat(64)).await.unwrap().is_none());
    assert!(matches!(
        tokens.revoke(&t.id, Utc::now()).await,
        Err(StoreError::NotFound)
    ));
    let listed = tokens.list().await.unwrap();
    assert!(listed[0].revoked_at.is_some());
    assert!(listed[0].last_used_at.is_some());
}

#[tokio::test]
async fn the_bootstrap_token_follows_its_configured_value() {
    let (store, _db) = migrated_store().await;
    let tokens = store.tokens();
    let first = tokens
        .upsert_named("bootstrap", Role::Admin, &"d".repeat(64), Utc::now())
        .await
        .unwrap();
    let again = tokens
        .upsert_named("bootstrap", Role::Admin, &"d".repeat(64), Utc::now())
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    tokens
        .upsert_named("bootstrap", Role::Admin, &"e".repeat(64), Utc::now())
        .await
        .unwrap();
    assert!(
        tokens.find_active(&"d".repeat(64)).await.unwrap().is_none(),
        "old value stops working"
    );
    assert!(tokens.find_active(&"e".repeat(64)).await.unwrap().is_some());
    assert_eq!(tokens.count().await.unwrap(), 1);
}

//! The build queue under failure and concurrency: a crashed worker's job is taken over
//! after its lease and published once; two servers on one database build each job once.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use updraft::blob::BlobStore;
use updraft::builds::BuildWorker;
use updraft::config::Config;
use updraft::keys::KeyFolder;
use updraft::store::{JobResult, JobState, Store, StoreError};

use crate::helpers::firmware::{
    add_firmware, generate_key, get_json, noise, variant, wait_for_job,
};
use crate::helpers::process::Server;
use crate::helpers::{fresh_database, spawn_app_with, wait_for};

#[tokio::test]
async fn a_crashed_workers_job_is_built_after_its_lease_and_published_once() {
    let mut config: Option<Config> = None;
    let app = spawn_app_with(|c| {
        c.builds.enabled = false;
        config = Some(c.clone());
    })
    .await;
    let config = config.unwrap();
    generate_key(&app).await;
    let fw = add_firmware(&app, "X1", "1", noise(21, 40_000)).await;
    let res = app
        .admin(Method::POST, "/api/v1/packages/builds")
        .json(&json!({"target_firmware_id": fw["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    let store = Store::connect(&config).await.unwrap();
    let blobs = BlobStore::from_config(&config).await.unwrap();
    // A worker claims the job, then dies mid-build (it never reports back).
    let now = chrono::Utc::now();
    let crashed = store
        .packages()
        .claim("crashed-worker", now, now + chrono::Duration::minutes(10))
        .await
        .unwrap()
        .expect("the job is due");
    assert_eq!(crashed.state, JobState::Running);
    assert_eq!(crashed.attempts, 1);
    let seen = get_json(&app, &format!("/api/v1/packages/builds/{}", crashed.id)).await;
    assert_eq!(seen["state"], "running");
    assert_eq!(
        get_json(&app, "/api/v1/packages").await["packages"],
        json!([])
    );

    let worker = BuildWorker::new(
        store.clone(),
        blobs,
        KeyFolder::from_config(&config).unwrap(),
        config.builds.clone(),
    );
    assert!(
        !worker.run_once().await.unwrap(),
        "a live lease is not taken over"
    );
    // The crashed worker's last heartbeat promised a lease that has since run out.
    // Moving that promise into the past stands in for waiting it out, so the test
    // does not depend on how fast this machine gets from one line to the next.
    let ran_out = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert!(
        store
            .packages()
            .heartbeat(crashed.id, "crashed-worker", 10, ran_out, ran_out)
            .await
            .unwrap(),
        "the crashed worker still held its lease"
    );
    assert!(worker.run_once().await.unwrap(), "an expired lease is");
    let job = store.packages().job(crashed.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.attempts, 2);
    assert!(job.full_package_id.is_some());

    // The crashed worker wakes up and tries to publish: refused, nothing is written.
    let late = store
        .packages()
        .complete(
            crashed.id,
            "crashed-worker",
            JobResult {
                full: None,
                delta: None,
                outcome: Some("late".into()),
            },
            chrono::Utc::now(),
        )
        .await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert!(
        !store
            .packages()
            .heartbeat(crashed.id, "crashed-worker", 50, now, now)
            .await
            .unwrap()
    );
    assert_eq!(store.packages().count().await.unwrap(), 1);
    let job = store.packages().job(crashed.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.outcome, None);
    assert!(!worker.run_once().await.unwrap(), "nothing left to do");
}

#[tokio::test]
async fn two_servers_on_one_database_build_every_job_exactly_once() {
    let db = fresh_database().await;
    let shared = tempfile::tempdir().unwrap();
    let share = |c: &mut Config| {
        c.database_url = Some(db.url.clone().into());
        c.blob.local_dir = Some(shared.path().join("blobs"));
        c.keys.dir = Some(shared.path().join("keys"));
        c.builds.concurrency = 2;
        c.builds.poll_interval_ms = 20;
    };
    let a = spawn_app_with(share).await;
    let b = spawn_app_with(share).await;
    generate_key(&a).await;

    let base = noise(22, 64 * 1024);
    let mut ids = Vec::new();
    for i in 0..5u64 {
        let fw = add_firmware(&a, "X1", &format!("{i}"), variant(&base, i + 1)).await;
        ids.push(fw["id"].clone());
    }
    let mut jobs: Vec<Value> = Vec::new();
    for (target, sources) in [(4, vec![0, 1, 2, 3]), (3, vec![0, 1, 2])] {
        let via = if target == 4 { &a } else { &b };
        let body = json!({
            "target_firmware_id": ids[target],
            "source_firmware_ids": sources.iter().map(|s| ids[*s].clone()).collect::<Vec<_>>(),
        });
        let res: Value = via
            .admin(Method::POST, "/api/v1/packages/builds")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jobs.extend(res["jobs"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(jobs.len(), 9);
    let mut package_ids = Vec::new();
    for job in &jobs {
        let done = wait_for_job(&b, job["id"].as_i64().unwrap(), Duration::from_secs(300)).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["attempts"], 1, "built exactly once: {done}");
        for key in ["full_package_id", "delta_package_id"] {
            if let Some(id) = done[key].as_i64() {
                package_ids.push(id);
            }
        }
    }
    // 2 full packages and 7 deltas (the images differ in a few bytes), one row each.
    let listed = get_json(&a, "/api/v1/packages?limit=500").await;
    let packages = listed["packages"].as_array().unwrap();
    assert_eq!(package_ids.len(), 9, "{jobs:?}");
    assert_eq!(packages.len(), 9);
    let mut job_ids: Vec<i64> = packages
        .iter()
        .map(|p| p["job_id"].as_i64().unwrap())
        .collect();
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 9, "one package per job");
    drop(b);
    drop(a);
}

#[tokio::test]
async fn killing_a_server_mid_build_publishes_nothing_and_the_build_completes_after_restart() {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(&db.url, dir.path());
    let res = first
        .request(Method::POST, "/api/v1/keys")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    // Incompressible and large enough that compressing it takes a while.
    let res = first
        .request(
            Method::POST,
            "/api/v1/firmware?manufacturer=Acme&model=X1&version=1",
        )
        .body(noise(23, 4 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let fw: Value = res.json().await.unwrap();
    let jobs: Value = first
        .request(Method::POST, "/api/v1/packages/builds")
        .json(&json!({"target_firmware_id": fw["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = jobs["jobs"][0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/packages/builds/{id}");
    wait_for("the build to start", Duration::from_secs(30), || async {
        let job = first.json(&path).await;
        assert_ne!(job["state"], "succeeded", "the build ended before the kill");
        if job["state"] == "running" {
            Ok(())
        } else {
            Err(job.to_string())
        }
    })
    .await;
    drop(first); // SIGKILL mid-build

    let second = Server::start(&db.url, dir.path());
    let packages = second.json("/api/v1/packages").await;
    assert_eq!(
        packages["packages"],
        json!([]),
        "no partial package is visible"
    );
    let job = wait_for(
        "the build to be taken over and finish",
        Duration::from_secs(300),
        || async {
            let job = second.json(&path).await;
            if job["state"] == "succeeded" || job["state"] == "failed" {
                Ok(job)
            } else {
                Err(job.to_string())
            }
        },
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["attempts"], 2,
        "taken over once after the lease ran out"
    );
    let packages = second.json("/api/v1/packages").await;
    assert_eq!(packages["packages"].as_array().unwrap().len(), 1);
}

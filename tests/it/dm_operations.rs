//! The operation lifecycle over real HTTP with the simulator as the device: expiry without a
//! status, cancel and requeue, owners' outcome log, and Large Objects both ways (a 64 MiB value
//! with the server's memory flat, a 16 MiB result without the session state growing).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use updraft::dm::Encoding;
use updraft::dm::auth::AuthType;
use updraft::simulator::{
    Access, DeviceProfile, HttpReply, HttpRequest, HttpTransport, Initiation, SimDevice, SimError,
    Transport, run_session,
};
use updraft::store::OperationState;

use crate::helpers::alloc::HEAVY;
use crate::helpers::{TestApp, spawn_app};

const CLIENT_SECRET: &str = "device-secret";
const SERVER_SECRET: &str = "server-secret";

fn profile(dev_id: &str, encoding: Encoding) -> DeviceProfile {
    let mut p = DeviceProfile::new(dev_id, CLIENT_SECRET);
    p.encoding = encoding;
    p.auth = AuthType::Md5;
    p.server_id = "updraft".into();
    p.server_secret = SERVER_SECRET.into();
    p.server_auth = Some(AuthType::Md5);
    p
}

async fn provision(app: &TestApp, dev_id: &str) -> String {
    let created: Value = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": CLIENT_SECRET},
            "server": {"type": "md5", "name": "updraft", "secret": SERVER_SECRET},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

async fn queue(app: &TestApp, device: &str, body: Value) -> i64 {
    let res = app
        .admin(
            Method::POST,
            &format!("/api/v1/devices/{device}/operations"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn operation(app: &TestApp, id: i64) -> Value {
    app.admin(Method::GET, &format!("/api/v1/operations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn action(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.admin(Method::POST, path).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn transport() -> HttpTransport {
    HttpTransport::new(Duration::from_secs(60)).unwrap()
}

/// A connection that breaks after delivering the first reply that carries `marker`: the
/// device got the command and never answers it.
struct DropsAfter {
    inner: HttpTransport,
    marker: &'static str,
    dropped: AtomicBool,
}

impl Transport for DropsAfter {
    async fn post(&self, req: HttpRequest) -> Result<HttpReply, SimError> {
        let url = req.url.clone();
        let reply = self.inner.post(req).await?;
        if String::from_utf8_lossy(&reply.body).contains(self.marker)
            && !self.dropped.swap(true, Ordering::SeqCst)
        {
            return Err(SimError::Http {
                url,
                reason: "connection lost (test)".into(),
            });
        }
        Ok(reply)
    }
}

#[tokio::test]
async fn a_command_sent_without_a_status_expires_is_never_resent_and_requeues_on_request() {
    let app = spawn_app().await;
    let dev_id = "IMEI:990000000000011";
    let device = provision(&app, dev_id).await;
    let replace = queue(
        &app,
        &device,
        json!({"kind": "replace", "uri": "./FUMO/fw1/PkgVersion", "data": "3.0.0", "owner": "update_job:7"}),
    )
    .await;
    let exec = queue(
        &app,
        &device,
        json!({"kind": "exec", "uri": "./FUMO/fw1/DownloadAndUpdate", "correlator": "job-7", "owner": "update_job:7"}),
    )
    .await;
    let cancelled = queue(
        &app,
        &device,
        json!({"kind": "get", "uri": "./DevDetail/FwV"}),
    )
    .await;
    let (code, view) = action(&app, &format!("/api/v1/operations/{cancelled}/cancel")).await;
    assert_eq!((code, view["state"].as_str()), (200, Some("cancelled")));

    // The device receives both commands, then its connection breaks: no status comes back.
    let url = app.url("/dm");
    let mut sim = SimDevice::new(profile(dev_id, Encoding::Xml));
    let drops = DropsAfter {
        inner: transport(),
        marker: "./FUMO/fw1/PkgVersion",
        dropped: AtomicBool::new(false),
    };
    let err = run_session(&mut sim, &drops, &url, Initiation::Client).await;
    assert!(err.is_err(), "the session broke off");
    assert!(drops.dropped.load(Ordering::SeqCst));
    for id in [replace, exec] {
        assert_eq!(operation(&app, id).await["state"], "sent");
    }
    let (code, _) = action(&app, &format!("/api/v1/operations/{exec}/cancel")).await;
    assert_eq!(code, 409, "too late to cancel a sent operation");

    // The idle sweep ends the session; what it left without a status expires.
    let config = updraft::config::Config::default();
    let blobs = updraft::blob::BlobStore::Local(
        updraft::blob::LocalBlobs::open(app.data_dir.path().join("sweep-blobs"))
            .await
            .unwrap(),
    );
    let edge = updraft::dm_edge::DmEdge::new(app.store().await, blobs, &config);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(edge.expire_idle_sessions(later).await.unwrap(), 1);
    for id in [replace, exec] {
        let op = operation(&app, id).await;
        assert_eq!(op["state"], "expired", "{op}");
    }

    // A new session sends nothing: expired is not silently resent, cancelled never goes.
    let report = run_session(&mut sim, &transport(), &url, Initiation::Client)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.commands_received, 0, "nothing sent twice");
    assert_eq!(operation(&app, cancelled).await["state"], "cancelled");

    // An Exec is requeued only when forced; the Replace on request.
    let (code, body) = action(&app, &format!("/api/v1/operations/{exec}/requeue")).await;
    assert_eq!(code, 409, "{body}");
    let (code, view) = action(&app, &format!("/api/v1/operations/{replace}/requeue")).await;
    assert_eq!((code, view["state"].as_str()), (200, Some("queued")));
    let report = run_session(&mut sim, &transport(), &url, Initiation::Client)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.commands_received, 1, "only the requeued Replace");
    assert_eq!(operation(&app, replace).await["state"], "done");
    assert_eq!(operation(&app, exec).await["state"], "expired");

    // The owner reads every transition of its operations from the database, in order.
    let store = app.store().await;
    let events = store
        .operations()
        .outcomes_for_owner("update_job:7", 0, 100)
        .await
        .unwrap();
    let of = |id: i64| -> Vec<OperationState> {
        events
            .iter()
            .filter(|e| e.operation_id == id)
            .map(|e| e.state)
            .collect()
    };
    use OperationState::*;
    assert_eq!(of(replace), [Queued, Sent, Expired, Queued, Sent, Done]);
    assert_eq!(of(exec), [Queued, Sent, Expired]);
    let after = events[2].id;
    let newer = store
        .operations()
        .outcomes_for_owner("update_job:7", after, 100)
        .await
        .unwrap();
    assert_eq!(newer.len(), events.len() - 3, "read on from a cursor");
}

/// `len` deterministic bytes in 64 KiB pieces, never all in memory, and their sha256.
fn generated(
    len: u64,
) -> (
    impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>,
    String,
) {
    const PIECE: u64 = 64 * 1024;
    let piece = move |i: u64| -> Vec<u8> {
        let start = i * PIECE;
        (start..(start + PIECE).min(len))
            .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    };
    let mut digest = Sha256::new();
    for i in 0..len.div_ceil(PIECE) {
        digest.update(piece(i));
    }
    let stream = futures_util::stream::iter(
        (0..len.div_ceil(PIECE)).map(move |i| Ok(Bytes::from(piece(i)))),
    );
    (stream, hex::encode(digest.finalize()))
}

#[tokio::test]
async fn a_64_mib_value_reaches_the_device_as_a_large_object_with_server_memory_flat() {
    const SIZE: u64 = 64 * 1024 * 1024;
    let _heavy = HEAVY.lock().await;
    // The server and the device are separate processes: the memory measured is the server's
    // own, as the kernel counts it (peak resident set), whatever thread allocates it.
    let db = crate::helpers::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let server = crate::helpers::process::Server::start(&db.url, dir.path());
    let prefix = "IMEI:99000000000007";
    let dev_id = format!("{prefix}1");
    let created: Value = server
        .request(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": CLIENT_SECRET},
            "server": {"type": "md5", "name": "updraft", "secret": SERVER_SECRET},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = created["id"].as_str().unwrap();
    let (body, sha256) = generated(SIZE);
    let res = server
        .request(
            Method::POST,
            &format!(
                "/api/v1/devices/{device}/operations/upload?kind=replace&uri=./FUMO/fw1/Update/PkgData&mime_type=application/octet-stream"
            ),
        )
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let op: Value = res.json().await.unwrap();
    assert_eq!(
        op["operation"]["Replace"]["value"]["data"]["Blob"]["size"],
        SIZE
    );

    server.reset_peak_memory();
    let (_, before) = server.memory();
    let url = format!("{}/dm", server.base);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args(["simulate", "--server", &url, "--devices", "1"])
            .args(["--dev-id-prefix", prefix, "--encoding", "wbxml", "--json"])
            .args(["--max-msg-size", "262144", "--max-obj-size", "70000000"])
            .args(["--secret", CLIENT_SECRET, "--server-secret", SERVER_SECRET])
            .args(["--server-auth", "md5", "--timeout-secs", "120"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (peak, _) = server.memory();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let dev = &summary["devices"][0];
    assert_eq!(dev["errors"], json!([]), "{summary}");
    assert_eq!(
        dev["large_objects"],
        json!([sha256]),
        "the object arrived whole"
    );
    assert!(dev["messages"].as_u64().unwrap() > 200, "{summary}");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "server peak RSS while sending a 64 MiB Large Object: {peak} bytes, {growth} above the {before} before"
    );
    assert!(
        growth < 24 * 1024 * 1024,
        "the server's resident memory rose by {growth} bytes: the value was loaded whole"
    );
    let op: Value = server
        .json(&format!("/api/v1/operations/{}", op["id"]))
        .await;
    assert_eq!(op["state"], "done", "{op}");
}

/// Records the size of the stored session state after every exchange.
struct WatchesState {
    inner: HttpTransport,
    store: updraft::store::Store,
    device: String,
    largest: AtomicUsize,
    exchanges: AtomicUsize,
}

impl Transport for WatchesState {
    async fn post(&self, req: HttpRequest) -> Result<HttpReply, SimError> {
        let limits = updraft::dm::Limits::default();
        let session_id = updraft::dm::decode(&req.body, &limits)
            .map(|(m, _)| m.hdr.session_id)
            .unwrap_or_default();
        let reply = self.inner.post(req).await?;
        if let Some(s) = self
            .store
            .sessions()
            .latest(&self.device, &session_id)
            .await
            .unwrap()
        {
            self.largest.fetch_max(s.state_json.len(), Ordering::SeqCst);
            self.exchanges.fetch_add(1, Ordering::SeqCst);
        }
        Ok(reply)
    }
}

#[tokio::test]
async fn a_16_mib_result_arrives_from_the_device_without_growing_the_session_state() {
    const SIZE: usize = 16 * 1024 * 1024;
    // Its 16 MiB would count in the other heavy test's measurement.
    let _heavy = HEAVY.lock().await;
    let app = spawn_app().await;
    let dev_id = "IMEI:990000000000021";
    let device = provision(&app, dev_id).await;
    let get = queue(&app, &device, json!({"kind": "get", "uri": "./Ext/Big"})).await;
    let data: Vec<u8> = (0..SIZE)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let sha256 = hex::encode(Sha256::digest(&data));
    let mut sim = SimDevice::new(profile(dev_id, Encoding::Xml));
    sim.tree
        .set_leaf("./Ext/Big", "bin", data, Access::READ_ONLY);
    let watch = Arc::new(WatchesState {
        inner: transport(),
        store: app.store().await,
        device: device.clone(),
        largest: AtomicUsize::new(0),
        exchanges: AtomicUsize::new(0),
    });
    let report = run_session(&mut sim, &watch, &app.url("/dm"), Initiation::Client)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let exchanges = watch.exchanges.load(Ordering::SeqCst);
    assert!(
        exchanges > 30,
        "16 MiB in base64 cannot fit fewer messages: {exchanges}"
    );
    let largest = watch.largest.load(Ordering::SeqCst);
    eprintln!("largest stored session state while receiving 16 MiB: {largest} bytes");
    assert!(
        largest < 64 * 1024,
        "the session state reached {largest} bytes"
    );
    let op = operation(&app, get).await;
    assert_eq!(op["state"], "done", "{op}");
    let result = &op["results"][0];
    assert_eq!(result["size"], SIZE as u64, "{op}");
    assert_eq!(result["sha256"], sha256.as_str());
    assert_eq!(result["uri"], "./Ext/Big");
    let key = result["blob"].as_str().unwrap();
    assert!(key.ends_with(&sha256), "{key}");
}

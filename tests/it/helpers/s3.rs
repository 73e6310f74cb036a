//! The S3 test server: a real S3-protocol server (moto) started once per test run on loopback.
//!
//! It is started through a tiny shell wrapper that kills it when our stdin closes,
//! that is when this test process exits, however it exits.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use updraft::config::S3Config;

use super::under_ci;

struct S3Server {
    endpoint: String,
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Option<S3Server>> = OnceLock::new();

fn start() -> Option<S3Server> {
    if let Ok(endpoint) = std::env::var("UPDRAFT_TEST_S3") {
        // An S3 server someone else runs, e.g. MinIO: use it as is.
        return Some(S3Server {
            endpoint,
            _child: Mutex::new(Command::new("true").spawn().unwrap()),
        });
    }
    let has_moto = Command::new("python3")
        .args(["-c", "import moto.server"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_moto {
        let message = "no S3 test server: install it with `pip install 'moto[server]'` (the test script does)";
        if under_ci() {
            panic!("{message}; CI=true makes this a failure");
        }
        eprintln!("skipping S3 tests: {message}");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!(
        "python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh runs");
    // Keep the pipe open for the life of the process: leak our end on purpose.
    let stdin = child.stdin.take().unwrap();
    std::mem::forget(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the S3 test server did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    })
}

/// An S3 configuration for a fresh bucket on the test server, or `None` (outside CI) when none runs.
pub async fn fresh_bucket() -> Option<S3Config> {
    let server = SERVER.get_or_init(start).as_ref()?;
    let bucket = format!("t-{}", uuid::Uuid::new_v4().simple());
    // moto accepts unsigned requests, which keeps bucket creation out of the code under test.
    let created = crate::helpers::http_client()
        .put(format!("{}/{bucket}", server.endpoint))
        .send()
        .await
        .expect("create bucket");
    assert!(
        created.status().is_success(),
        "create bucket: {}",
        created.status()
    );
    let _ = std::io::stderr().flush();
    Some(S3Config {
        bucket: Some(bucket),
        prefix: "updraft/".into(),
        endpoint: Some(server.endpoint.clone()),
        region: "us-east-1".into(),
        path_style: true,
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".to_owned().into()),
        part_size_bytes: 5 * 1024 * 1024,
    })
}

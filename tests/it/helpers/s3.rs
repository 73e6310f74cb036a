//! The S3 test server: a real S3-protocol server (moto) started once per test run on loopback.
//!
//! It is started through a tiny shell wrapper that kills it when our stdin closes,
//! that is when this test process exits, however it exits.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use updraft::config::S3Config;

use super::{under_ci, wait_until_blocking};

struct S3Server {
    endpoint: String,
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Option<S3Server>> = OnceLock::new();

/// Why no S3 test server runs, when none does.
static UNAVAILABLE: OnceLock<String> = OnceLock::new();

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
        let reason = "no S3 test server: install it with `pip install 'moto[server]'` (scripts/test.sh does)";
        if under_ci() {
            panic!("{reason}; CI=true makes this a failure");
        }
        let _ = UNAVAILABLE.set(reason.to_owned());
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
    wait_until_blocking(
        "the S3 test server to accept connections",
        Duration::from_secs(30),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the S3 test server exited before it listened: {status}");
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        },
    );
    Some(S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    })
}

/// Says, on stderr and under the test's name, that this test did not run; a skip
/// must be visible in the output, never a silent pass.
fn report_skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("an S3 test");
    let line = format!("SKIPPED: {test}: {reason} (set CI=true to require it)\n");
    // One write, so that lines of tests running in parallel do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// An S3 configuration for a fresh bucket on the test server, or `None` when none
/// runs: outside CI only, and then the test says `SKIPPED` on stderr. Under CI=true a
/// missing server fails the test.
pub async fn fresh_bucket() -> Option<S3Config> {
    let Some(server) = SERVER.get_or_init(start).as_ref() else {
        report_skip(
            UNAVAILABLE
                .get()
                .map_or("no S3 test server", String::as_str),
        );
        return None;
    };
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

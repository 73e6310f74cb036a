//! The real binary in an empty folder: starts on the embedded default, serves, stops on SIGTERM with 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn updraft() -> Command {
    Command::new(env!("CARGO_BIN_EXE_updraft"))
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Reads the JSON log on stderr until the "listening" line, and returns its address.
fn wait_for_listen(
    stderr: std::process::ChildStderr,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("\"message\":\"listening\"") {
                let value: serde_json::Value = serde_json::from_str(&line).unwrap();
                tx.send(value["listen"].as_str().unwrap().to_owned())
                    .unwrap();
                sent = true;
            }
            lines.push(line);
        }
        lines
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs its address");
    (addr, reader)
}

#[tokio::test]
async fn serve_in_an_empty_folder_then_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = updraft()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("UPDRAFT_DATABASE_URL")
        .env_remove("UPDRAFT_ADMIN_TOKEN")
        .env("UPDRAFT_LOG_FORMAT", "json")
        .env("UPDRAFT_UNKNOWN_SETTING", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, log) = wait_for_listen(child.stderr.take().unwrap());
    let client = crate::helpers::http_client();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let startup = started.elapsed();
    eprintln!("startup to first /healthz answer: {startup:?}");
    assert_eq!(
        client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("updraft_http_requests_total")
    );

    // The default data folder, in the working directory.
    let data = dir.path().join("updraft-data");
    assert!(data.join("updraft.db").is_file());
    assert!(data.join("blobs/objects").is_dir());

    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");

    // The generated token was printed once on stdout; logs never contain it.
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let token = stdout
        .split_whitespace()
        .find(|w| w.starts_with("updraft_"))
        .expect("bootstrap token printed on stdout")
        .to_owned();
    let log = log.join().unwrap().join("\n");
    assert!(!log.contains(&token), "token leaked into the log");
    assert!(
        log.contains("UPDRAFT_UNKNOWN_SETTING"),
        "unknown variable warned about"
    );
    assert!(log.contains("updraft stopped"));

    // A second start on the same folder keeps the token and prints none.
    let mut child = updraft()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("UPDRAFT_DATABASE_URL")
        .env_remove("UPDRAFT_ADMIN_TOKEN")
        .env("UPDRAFT_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _log) = wait_for_listen(child.stderr.take().unwrap());
    let who = client
        .get(format!("http://{addr}/api/v1/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 200);
    signal(child.id(), "INT");
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "SIGINT is graceful too"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(!stdout.contains("updraft_"), "no second token: {stdout}");
}

#[test]
fn bad_configuration_fails_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = updraft()
        .args(["serve"])
        .current_dir(dir.path())
        .env("UPDRAFT_LISTEN", "nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UPDRAFT_LISTEN"), "{stderr}");
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = updraft()
        .args(["migrate", "--data-dir", "d"])
        .current_dir(dir.path())
        .env_remove("UPDRAFT_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("d/updraft.db").is_file());
}

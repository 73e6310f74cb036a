//! A missing optional service is a visible skip outside CI and a failure under CI=true.
//!
//! Each case runs one S3 test in a child copy of this test binary with no way to
//! start the S3 test server (no `python3` on its PATH), and reads what it reports.

use std::process::{Command, Output};

const S3_TEST: &str = "blob_conformance::s3::delete_is_idempotent";

fn run_without_s3(ci: Option<&str>) -> Output {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([S3_TEST, "--exact", "--nocapture"])
        .env("PATH", "/nonexistent")
        .env_remove("UPDRAFT_TEST_S3")
        .env_remove("CI");
    if let Some(ci) = ci {
        child.env("CI", ci);
    }
    child.output().expect("the test binary runs")
}

#[test]
fn outside_ci_a_missing_s3_server_is_reported_as_skipped() {
    let out = run_without_s3(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("SKIPPED: ") && stderr.contains("no S3 test server"),
        "the skip is not visible:\n{stderr}"
    );
    assert!(stderr.contains("(set CI=true to require it)"), "{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "exactly the one test ran: {stdout}"
    );
}

#[test]
fn under_ci_a_missing_s3_server_fails_the_test() {
    for ci in ["true", "1"] {
        let out = run_without_s3(Some(ci));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "CI={ci} let it pass:\n{stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("CI=true makes this a failure"),
            "CI={ci}:\n{stderr}"
        );
        assert!(!stderr.contains("SKIPPED"), "{stderr}");
        assert!(stdout.contains("1 failed"), "{stdout}");
    }
}

//! Proof that the sans-IO and simulator rules can fail: snippets in every form of path.

use super::negative::named;
use super::*;

fn sans_io(text: &str) -> Vec<String> {
    named(&sans_io_violations(
        SANS_IO_CORES,
        "src/dm/session/bad.rs",
        text,
    ))
}

#[test]
fn sans_io_catches_grouped_and_multi_line_imports() {
    assert_eq!(sans_io("use std::{fs, net};"), ["std::fs", "std::net"]);
    assert_eq!(sans_io("use std::{self, env};"), ["std::env"]);
    assert_eq!(
        sans_io(
            "use std::{\n    collections::HashMap,\n    io::{self, Read},\n    os::unix::fs::PermissionsExt,\n    time::{Duration, SystemTime},\n};\nfn f() -> SystemTime { SystemTime::now() }\n"
        ),
        [
            "std::os::unix::fs::PermissionsExt",
            "std::time::SystemTime::now"
        ]
    );
    assert_eq!(sans_io("use std::*;"), ["std::*"]);
    assert_eq!(
        sans_io("use ::tokio::{sync::{mpsc, oneshot as once}};"),
        ["tokio::sync::mpsc", "tokio::sync::oneshot"]
    );
    assert_eq!(
        sans_io("use std::fs as disk;\nfn f() { disk::read(\"x\"); }"),
        ["std::fs", "std::fs::read"]
    );
    let found = sans_io_violations(
        SANS_IO_CORES,
        "src/package/x.rs",
        "use std::{\n\n    env,\n};",
    );
    assert!(found[0].starts_with("src/package/x.rs:3: `std::env` (the process environment) in the sans-IO core src/package"), "{found:?}");
}

#[test]
fn sans_io_catches_fully_qualified_paths_in_code() {
    let text = r#"//! A core gone wrong.
#[tokio::test]
async fn t() {
    let _ = std::fs::read("fixture");
    tokio::spawn(async {});
    ::tokio::time::sleep(d).await;
    tokio::select! { _ = a => {} }
    std::thread::sleep(d);
    let _ = std::env::var("HOME");
    std::process::exit(1);
    let _ = std::net::TcpStream::connect(addr);
    writeln!(std::io::stdout(), "x");
    println!("progress");
    dbg!(x);
    let _ = reqwest::get(url);
}
"#;
    assert_eq!(
        sans_io(text),
        [
            "tokio::test",
            "std::fs::read",
            "tokio::spawn",
            "tokio::time::sleep",
            "tokio::select!",
            "std::thread::sleep",
            "std::env::var",
            "std::process::exit",
            "std::net::TcpStream::connect",
            "std::io::stdout",
            "println!",
            "dbg!",
            "reqwest::get",
        ]
    );
}

#[test]
fn clocks_and_randomness_count_as_io_in_the_cores() {
    let text = r#"//! Time and chance read from the world.
use rand::Rng;
use std::time::Instant as Clock;
use uuid::Uuid;
fn f() {
    let _ = chrono::Utc::now();
    let _ = Utc::now();
    let _ = chrono::Local::now();
    let _ = Clock::now();
    let _ = std::time::SystemTime::now();
    let _ = Uuid::new_v4();
    let _ = uuid::Uuid::now_v7();
    let _ = rand::random::<u64>();
    let _ = rand_core::OsRng;
    getrandom::fill(&mut buf).unwrap();
    let _ = fastrand::u64(..);
    let _ = time::OffsetDateTime::now_utc();
}
"#;
    assert_eq!(
        sans_io(text),
        [
            "rand::Rng",
            "chrono::Utc::now",
            "Utc::now",
            "chrono::Local::now",
            "std::time::Instant::now",
            "std::time::SystemTime::now",
            "uuid::Uuid::new_v4",
            "uuid::Uuid::now_v7",
            "rand::random",
            "rand_core::OsRng",
            "getrandom::fill",
            "fastrand::u64",
            "time::OffsetDateTime::now_utc",
        ]
    );
}

#[test]
fn sans_io_allows_pure_code_and_exempt_tests() {
    let pure = r#"//! Pure: time and randomness arrive as arguments.
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};
use uuid::Uuid;
const VERSION: &str = env!("CARGO_PKG_VERSION");
static TABLE: &[u8] = include_bytes!("table.bin");
fn step(now: SystemTime, nonce: [u8; 16], clock: &dyn Fn() -> u64) -> (Uuid, Duration) {
    let _ = clock.now();
    let _ = format!("{}", "std::fs::read and tokio::spawn in a string");
    // std::env::var in a comment
    (Uuid::from_bytes(nonce), Duration::from_secs(1))
}
"#;
    assert_eq!(sans_io(pure), Vec::<String>::new());
    let io = "use std::fs;\nfn f() { tokio::spawn(async {}); }";
    assert!(sans_io_violations(SANS_IO_CORES, "src/dm/tests/vectors.rs", io).is_empty());
    assert!(sans_io_violations(SANS_IO_CORES, "src/package/tests.rs", io).is_empty());
    assert!(sans_io_violations(SANS_IO_CORES, "src/http/mod.rs", io).is_empty());
    // `tests.rs` is exempt in src/package, not a `tests.rs` anywhere below it.
    assert_eq!(
        sans_io_violations(SANS_IO_CORES, "src/package/delta/tests.rs", io).len(),
        2
    );
}

fn simulator(text: &str) -> Vec<String> {
    named(&simulator_violations("src/simulator/device.rs", text))
}

#[test]
fn the_simulator_rule_catches_every_way_to_reach_the_engine() {
    assert_eq!(
        simulator("use crate::dm::session::Engine;"),
        ["crate::dm::session::Engine"]
    );
    assert_eq!(
        simulator("use crate::dm::{\n    message::SyncML,\n    session::{self, Effect},\n};"),
        ["crate::dm::session", "crate::dm::session::Effect"]
    );
    assert_eq!(
        simulator("use crate::{dm::{large_object::{Planner}}};"),
        ["crate::dm::large_object::Planner"]
    );
    assert_eq!(
        simulator("fn f() { crate::dm::session::handle(x); }"),
        ["crate::dm::session::handle"]
    );
    assert_eq!(
        simulator("fn f() { super::super::dm::session::handle(x); }"),
        ["super::super::dm::session::handle"]
    );
    assert_eq!(
        simulator("fn f() { updraft::dm::session::handle(x); }"),
        ["updraft::dm::session::handle"]
    );
    assert_eq!(
        simulator("use crate::dm;\nfn f() { dm::session::handle(x); }"),
        ["crate::dm::session::handle"]
    );
    assert_eq!(
        simulator("use crate::dm as engine;\nfn f() { engine::large_object::plan(x); }"),
        ["crate::dm::large_object::plan"]
    );
    assert_eq!(simulator("use crate::dm::*;"), ["crate::dm::*"]);
    let found = simulator_violations(
        "src/simulator/x.rs",
        "//! X.\n\nuse crate::dm::{\n    session::Effect,\n};",
    );
    assert!(
        found[0].starts_with(
            "src/simulator/x.rs:4: `crate::dm::session::Effect`: the simulator must not"
        ),
        "{found:?}"
    );
}

#[test]
fn the_simulator_rule_leaves_the_shared_protocol_model_alone() {
    let ok = r#"//! Uses the message model and codecs, which both sides share.
use crate::dm::message::{SyncML, Status};
use crate::dm::{Encoding, encode};
use crate::simulator::session::Client;
use super::session::State;
// crate::dm::session::Engine in a comment
fn f() -> &'static str { "dm::session" }
"#;
    assert_eq!(simulator(ok), Vec::<String>::new());
    let engine = "use crate::dm::session::Engine;";
    assert!(simulator_violations("src/simulator/tests/peer.rs", engine).is_empty());
    assert!(simulator_violations("src/dm_edge/mod.rs", engine).is_empty());
}

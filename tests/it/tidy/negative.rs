//! Proof that every tidy rule can fail: synthetic snippets and temporary trees that break it.

use std::path::Path;

use super::*;

/// The backtick-quoted paths the violations name, in order.
pub(super) fn named(violations: &[String]) -> Vec<String> {
    violations
        .iter()
        .map(|v| v.split('`').nth(1).unwrap_or(v).to_owned())
        .collect()
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A tree that passes every rule: each rule's folders exist and each home uses its crate.
fn clean_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "src/lib.rs", "//! The crate.\n");
    write(
        root,
        "src/store/mod.rs",
        "//! Store.\nuse sea_orm::EntityTrait;\n",
    );
    write(
        root,
        "src/blob/mod.rs",
        "//! Blobs.\nuse aws_sdk_s3::Client;\n",
    );
    write(root, "src/http/mod.rs", "//! HTTP.\nuse actix_web::App;\n");
    write(
        root,
        "src/dm/mod.rs",
        "//! DM.\npub fn handle(now: u64) -> u64 { now }\n",
    );
    write(
        root,
        "src/dm/tests/fixtures.rs",
        "//! Fixtures.\nfn f() { std::fs::read(\"x\").unwrap(); }\n",
    );
    write(root, "src/package/mod.rs", "//! Package.\n");
    write(root, "src/package/tests.rs", "//! Tests.\nuse std::fs;\n");
    write(root, "src/package/shape_tests.rs", "//! Shape tests.\n");
    write(root, "src/fumo/mod.rs", "//! FUMO.\n");
    write(root, "src/campaign/mod.rs", "//! Campaign planning.\n");
    write(root, "src/fumo/tests.rs", "//! Tests.\n");
    write(
        root,
        "tests/it/helpers/slow_gateway.rs",
        "//! Slow.\nasync fn later() { tokio::time::sleep(D).await; }\n",
    );
    write(
        root,
        "src/simulator/mod.rs",
        "//! Simulator.\nuse crate::dm::message::SyncML;\n",
    );
    write(
        root,
        "src/simulator/tests/peer.rs",
        "//! Peer.\nuse crate::dm::session::handle;\n",
    );
    write(root, "migrations/src/lib.rs", "//! Migrations.\n");
    write(root, "tests/it/main.rs", "//! Tests.\n");
    write(
        root,
        "tests/it/helpers/wait.rs",
        "//! Polls.\nfn poll() { std::thread::sleep(POLL); }\n",
    );
    dir
}

#[test]
fn a_rule_over_a_missing_or_empty_folder_fails() {
    let dir = tempfile::tempdir().unwrap();
    let err = rust_files(dir.path(), "src/nowhere").unwrap_err();
    assert!(err.contains("`src/nowhere` is not a folder"), "{err}");
    std::fs::create_dir_all(dir.path().join("src/empty")).unwrap();
    write(dir.path(), "src/empty/notes.txt", "not Rust");
    let err = rust_files(dir.path(), "src/empty").unwrap_err();
    assert!(err.contains("holds no .rs files"), "{err}");
    write(dir.path(), "src/empty/b/deep.rs", "");
    write(dir.path(), "src/empty/a.rs", "");
    let found: Vec<String> = rust_files(dir.path(), "src/empty")
        .unwrap()
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    assert_eq!(found, ["src/empty/a.rs", "src/empty/b/deep.rs"]);
}

#[test]
fn the_clean_tree_passes_and_each_rule_fails_without_its_folders() {
    let tree = clean_tree();
    let root = tree.path();
    assert_eq!(check_confinement(root), Vec::<String>::new());
    assert_eq!(check_sans_io(root, SANS_IO_CORES), Vec::<String>::new());
    assert_eq!(check_simulator(root), Vec::<String>::new());
    assert_eq!(check_doc_lines(root), Vec::<String>::new());
    assert_eq!(check_sleeps(root), Vec::<String>::new());

    let empty = tempfile::tempdir().unwrap();
    let problems = check_confinement(empty.path());
    for dir in ["src", "src/store", "src/blob", "src/http"] {
        assert!(
            problems
                .iter()
                .any(|p| p.contains(&format!("`{dir}` is not a folder"))),
            "{dir}: {problems:?}"
        );
    }
    let problems = check_sans_io(empty.path(), SANS_IO_CORES);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`src/dm` is not a folder")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`src/package` is not a folder")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("exemption `src/dm/tests` names nothing")),
        "{problems:?}"
    );
    let problems = check_simulator(empty.path());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`src/simulator` is not a folder")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`src/simulator/tests` names nothing")),
        "{problems:?}"
    );
    let problems = check_doc_lines(empty.path());
    assert_eq!(problems.len(), DOCUMENTED.len(), "{problems:?}");
    let problems = check_sleeps(empty.path());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`tests/it/helpers/wait.rs` names nothing")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`tests` is not a folder")),
        "{problems:?}"
    );

    // A future core joins by one entry; before its folder exists the rule fails.
    let rollout = [Core {
        dir: "src/rollout",
        exempt: &[],
    }];
    let problems = check_sans_io(root, &rollout);
    assert!(
        problems[0].contains("`src/rollout` is not a folder"),
        "{problems:?}"
    );
    write(
        root,
        "src/rollout/planner.rs",
        "//! Planner.\nfn f() { let _ = tokio::spawn(async {}); }\n",
    );
    let problems = check_sans_io(root, &rollout);
    assert_eq!(named(&problems), ["tokio::spawn"]);
}

#[test]
fn confinement_fires_in_a_temporary_tree() {
    let tree = clean_tree();
    let root = tree.path();
    write(
        root,
        "src/http/api/bad.rs",
        "//! A handler.\nuse sea_orm::{\n    EntityTrait,\n};\n",
    );
    write(
        root,
        "src/dm/worse.rs",
        "//! Worse.\nfn f() { let _ = ::actix_web::HttpResponse::Ok(); }\n",
    );
    let problems = check_confinement(root);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0]
            .starts_with("src/dm/worse.rs:2: `actix_web::HttpResponse::Ok` outside src/http"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("src/http/api/bad.rs:3: `sea_orm::EntityTrait` outside src/store"),
        "{problems:?}"
    );

    // A home that no longer uses its crate means the rule guards nothing.
    write(root, "src/blob/mod.rs", "//! Blobs, now elsewhere.\n");
    let problems = check_confinement(root);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("src/blob: names none of")),
        "{problems:?}"
    );
}

#[test]
fn confinement_sees_every_form_of_path() {
    let bad = r#"//! A handler that reaches past its edges.
use {std::fmt, sea_orm::{self, QueryFilter}};
use aws_sdk_s3::{
    Client,
    types::{ObjectPart as Part},
};
extern crate sqlx;
#[actix_web::main]
async fn main() {}
#[sea_orm(table_name = "x")]
struct Row;
fn f<T: sea_query::Iden>() -> impl Fn() {
    let _ = <Row as sea_orm::EntityTrait>::find();
    let _ = aws_smithy_types::Blob::new(vec![]);
    let _ = format!("{}", actix_http::Version::HTTP_11);
    let _ = aws_credential_types::Credentials::new;
    || {}
}
"#;
    let found = confinement_violations("src/dm_edge/bad.rs", bad);
    assert_eq!(
        named(&found),
        [
            "sea_orm",
            "sea_orm::QueryFilter",
            "sqlx",
            "sea_orm",
            "sea_query::Iden",
            "sea_orm::EntityTrait",
            "aws_sdk_s3::Client",
            "aws_sdk_s3::types::ObjectPart",
            "aws_smithy_types::Blob::new",
            "aws_credential_types::Credentials::new",
            "actix_web::main",
            "actix_http::Version::HTTP_11",
        ],
        "{found:#?}"
    );
    assert!(found[0].starts_with("src/dm_edge/bad.rs:2:"), "{found:?}");
    assert!(found[7].starts_with("src/dm_edge/bad.rs:5:"), "{found:?}");
}

#[test]
fn confinement_ignores_homes_comments_and_strings() {
    let text = r##"//! Mentions, not uses.
// use sea_orm::EntityTrait;
/* aws_sdk_s3::Client /* nested */ actix_web::App */
/// `sea_orm::EntityTrait` in a doc comment
fn f() -> (&'static str, &'static str, char) {
    let my_sea_orm = 1;
    let _ = my_sea_orm;
    ("sea_orm::EntityTrait", r#"use actix_web::App;"#, ':')
}
"##;
    assert_eq!(
        confinement_violations("src/http/x.rs", text),
        Vec::<String>::new()
    );
    assert_eq!(
        confinement_violations("src/dm/x.rs", text),
        Vec::<String>::new()
    );
    assert!(confinement_violations("src/store/x.rs", "use sea_orm::EntityTrait;").is_empty());
    assert!(confinement_violations("src/http/x.rs", "use actix_web::App;").is_empty());
    assert!(confinement_violations("src/blob/s3.rs", "use aws_sdk_s3::Client;").is_empty());
    // `src/storehouse` is not `src/store`.
    assert_eq!(
        confinement_violations("src/storehouse/x.rs", "use sea_orm::X;").len(),
        1
    );
}

#[test]
fn a_file_that_does_not_lex_is_a_failure_not_a_pass() {
    let found = confinement_violations("src/x.rs", "fn f() { let s = \"unterminated; }");
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("does not lex"), "{found:?}");
    let found = sans_io_violations(SANS_IO_CORES, "src/dm/x.rs", "fn f() { ( }");
    assert!(found[0].contains("does not lex"), "{found:?}");
    let found = simulator_violations("src/simulator/x.rs", "}");
    assert!(found[0].contains("does not lex"), "{found:?}");
}

#[test]
fn the_first_line_rule_fires() {
    assert_eq!(
        doc_line_violation("src/a.rs", "//! A module.\nfn f() {}"),
        None
    );
    for text in [
        "",
        "\n//! Late.",
        "// A plain comment.\n",
        "/// An item's doc.\nfn f() {}",
        "/*! A block doc. */",
        "#![allow(dead_code)]\n//! After an attribute.",
        "use std::fs;",
        " //! Indented.",
    ] {
        let found = doc_line_violation("src/a.rs", text);
        assert_eq!(
            found.as_deref(),
            Some("src/a.rs: does not begin with a `//!` line saying what it is"),
            "{text:?}"
        );
    }
    let tree = clean_tree();
    write(tree.path(), "tests/it/undocumented.rs", "use std::fs;\n");
    write(tree.path(), "migrations/src/m1.rs", "// migration\n");
    let problems = check_doc_lines(tree.path());
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("migrations/src/m1.rs:"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("tests/it/undocumented.rs:"),
        "{problems:?}"
    );
}

#[test]
fn use_trees_expand_to_the_paths_they_import() {
    let paths =
        scan::paths("use a::{b::{self, c as d}, e::*};\nfn g() { d::x(); b::y!(); }").unwrap();
    let shown: Vec<(String, usize)> = paths.iter().map(|p| (p.display(), p.line)).collect();
    assert_eq!(
        shown,
        [
            ("a::b".to_owned(), 1),
            ("a::b::c".to_owned(), 1),
            ("a::e::*".to_owned(), 1),
            ("a::b::c::x".to_owned(), 2),
            ("a::b::y!".to_owned(), 2),
        ]
    );
}

#[test]
fn a_test_that_sleeps_is_caught() {
    let sleepy = "//! A test.\nasync fn t() {\n    tokio::time::sleep(Duration::from_millis(500)).await;\n}\n";
    let found = sleep_violations("tests/it/firmware_api.rs", sleepy);
    assert_eq!(named(&found), ["tokio::time::sleep"]);
    assert!(
        found[0].starts_with("tests/it/firmware_api.rs:3:"),
        "{found:?}"
    );
    assert_eq!(
        named(&sleep_violations(
            "tests/it/x.rs",
            "use std::thread::{self, sleep};\nfn t() { sleep(d); thread::sleep(d); }"
        )),
        ["std::thread::sleep", "std::thread::sleep"]
    );
    assert_eq!(
        named(&sleep_violations(
            "src/dm/tests/x.rs",
            "fn t() { std::thread::sleep(d); }"
        ))
        .len(),
        1
    );
    assert_eq!(
        named(&sleep_violations(
            "src/package/tests.rs",
            "fn t() { std::thread::sleep(d); }"
        ))
        .len(),
        1
    );
    // In src, only the test modules are tests.
    let module = r#"//! A worker.
async fn run() { tokio::time::sleep(poll).await; }
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[tokio::test]
    async fn t() {
        tokio::time::sleep_until(deadline).await;
    }
}
"#;
    let found = sleep_violations("src/builds/mod.rs", module);
    assert_eq!(named(&found), ["tokio::time::sleep_until"]);
    assert!(found[0].starts_with("src/builds/mod.rs:8:"), "{found:?}");
    assert!(
        sleep_violations(
            "src/startup.rs",
            "async fn f() { tokio::time::sleep(d).await; }"
        )
        .is_empty()
    );
    // The wait helper's polling interval is the one listed exception.
    assert!(sleep_violations("tests/it/helpers/wait.rs", sleepy).is_empty());
    assert!(
        sleep_violations(
            "tests/it/x.rs",
            "// tokio::time::sleep(d)\nfn f() -> &'static str { \"sleep\" }"
        )
        .is_empty()
    );

    let tree = clean_tree();
    write(tree.path(), "tests/it/slow.rs", sleepy);
    let problems = check_sleeps(tree.path());
    assert_eq!(named(&problems), ["tokio::time::sleep"], "{problems:?}");
}

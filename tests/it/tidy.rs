//! Architecture invariants from `ARCHITECTURE.md`, checked on the source text.
//!
//! Each failure says which rule broke and how to fix it.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (crate path as written in code, the only places it may appear, fix-it hint)
const CONFINED: &[(&str, &[&str], &str)] = &[
    (
        "sea_orm",
        &["src/store/"],
        "database access belongs in src/store: add a repository method there and call it",
    ),
    (
        "sqlx",
        &["src/store/"],
        "database access belongs in src/store",
    ),
    (
        "aws_sdk_s3",
        &["src/blob/"],
        "object storage belongs in src/blob: extend BlobStore",
    ),
    (
        "aws_smithy",
        &["src/blob/"],
        "object storage belongs in src/blob",
    ),
    (
        "aws_credential_types",
        &["src/blob/"],
        "object storage belongs in src/blob",
    ),
    (
        "actix_web",
        &["src/http/"],
        "HTTP belongs in src/http: keep handlers thin and call the domain modules",
    ),
    ("actix_http", &["src/http/"], "HTTP belongs in src/http"),
];

/// The sans-IO cores: no sockets, files, clocks, async runtimes, database or storage.
const SANS_IO: &[&str] = &["src/dm/", "src/package/"];
/// Their test folders may read fixtures from disk.
const SANS_IO_TESTS: &[&str] = &["src/dm/tests", "src/package/tests"];
const IO_MARKERS: &[&str] = &[
    "tokio",
    "actix",
    "sea_orm",
    "aws_",
    "reqwest",
    "std::fs",
    "std::net",
    "SystemTime::now",
    "Utc::now",
    "Instant::now",
    "std::thread::sleep",
];

fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_start()))
        .filter(|(_, l)| !l.starts_with("//"))
}

/// The confinement violations in one file, given its path relative to the repository.
fn confinement_violations(rel: &str, text: &str) -> Vec<String> {
    let mut violations = Vec::new();
    for (krate, allowed, hint) in CONFINED {
        if allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        for (n, line) in code_lines(text) {
            if line.contains(&format!("{krate}::")) || line.contains(&format!("use {krate}")) {
                violations.push(format!(
                    "{rel}:{n}: uses `{krate}` outside {allowed:?}: {hint}"
                ));
            }
        }
    }
    violations
}

#[test]
fn crates_stay_in_their_modules() {
    let mut violations = Vec::new();
    for file in rust_files(&root().join("src")) {
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        violations.extend(confinement_violations(
            &rel,
            &std::fs::read_to_string(&file).unwrap(),
        ));
    }
    assert!(
        violations.is_empty(),
        "architecture invariant broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn protocol_and_package_cores_are_sans_io() {
    let mut violations = Vec::new();
    for core in SANS_IO {
        for file in rust_files(&root().join(core)) {
            let rel = file
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if SANS_IO_TESTS.iter().any(|t| rel.starts_with(t)) {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in code_lines(&text) {
                for marker in IO_MARKERS {
                    if line.contains(marker) {
                        violations.push(format!(
                            "{rel}:{n}: `{marker}` in a sans-IO core: take bytes and time as arguments and return effects; do the I/O at the edge"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "sans-IO invariant broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_source_file_says_what_it_is() {
    let mut missing = Vec::new();
    for dir in ["src", "migrations/src", "tests"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.starts_with("//!") {
                missing.push(file.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these files do not begin with a `//!` line saying what they are:\n{}",
        missing.join("\n")
    );
}

#[test]
fn importing_sea_orm_in_the_http_module_is_caught() {
    // The rule must be able to fail: a handler that reaches for the database directly.
    let bad =
        "//! A handler.\nuse sea_orm::EntityTrait;\nfn f() { let _ = aws_sdk_s3::Client::new; }\n";
    let found = confinement_violations("src/http/api/bad.rs", bad);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("src/http/api/bad.rs:2: uses `sea_orm`"),
        "{found:?}"
    );
    assert!(confinement_violations("src/store/ok.rs", "use sea_orm::EntityTrait;").is_empty());
    assert!(confinement_violations("src/http/x.rs", "// sea_orm:: in a comment").is_empty());
}

#[test]
fn the_simulator_does_not_mirror_the_server_engine() {
    // An independent client catches the server's mistakes; one sharing its session code
    // would repeat them. Only the simulator's tests may drive the engine, as the peer.
    let mut violations = Vec::new();
    for file in rust_files(&root().join("src/simulator")) {
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        if rel.starts_with("src/simulator/tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in code_lines(&text) {
            if line.contains("dm::session") || line.contains("dm::large_object") {
                violations.push(format!("{rel}:{n}: the simulator must not use the server's engine or Large Object planner; write the client side in src/simulator"));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

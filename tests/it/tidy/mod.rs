//! Architecture invariants from `ARCHITECTURE.md`, checked on the source's tokens.
//!
//! Each rule is a function over a source tree: the repository here; temporary trees
//! and snippets in `negative.rs` and `negative_cores.rs`, which prove that every
//! rule can fail. A rule over a folder that does not exist, or an exemption that
//! names nothing, is itself a failure, so that a rename cannot quietly turn a rule
//! off. Each failure says which rule broke and how to fix it.

mod negative;
mod negative_cores;
mod scan;

use std::path::{Path, PathBuf};

use scan::{Kind, PathRef};

/// A path pattern, segments separated by `::`.
///
/// A leading `::` anchors it at the crate root (`::std::fs` is std's own module);
/// without it the segments may appear anywhere in a path (`SystemTime::now`,
/// `dm::session`, whatever comes before them). A segment ending in `*` matches any
/// segment it begins (`::aws_*`). A trailing `!` matches only a macro call (`println!`).
#[derive(Clone, Copy, Debug)]
pub struct Pattern(pub &'static str);

fn segment_matches(pattern: &str, segment: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => segment.starts_with(stem),
        None => pattern == segment,
    }
}

fn window_matches(pattern: &[&str], segments: &[String]) -> bool {
    pattern.len() == segments.len()
        && pattern
            .iter()
            .zip(segments)
            .all(|(p, s)| segment_matches(p, s))
}

impl Pattern {
    fn parts(&self) -> (bool, Vec<&'static str>, bool) {
        let (anchored, rest) = match self.0.strip_prefix("::") {
            Some(rest) => (true, rest),
            None => (false, self.0),
        };
        let (is_macro, rest) = match rest.strip_suffix('!') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        (anchored, rest.split("::").collect(), is_macro)
    }

    /// Whether `path` names what the pattern forbids, or (a glob) may import it unnamed.
    pub fn matches(&self, path: &PathRef) -> bool {
        let (anchored, want, is_macro) = self.parts();
        let got = &path.segments;
        if is_macro {
            return path.kind == Kind::Macro
                && got.len() >= want.len()
                && window_matches(&want, &got[got.len() - want.len()..]);
        }
        let named = if anchored {
            got.len() >= want.len() && window_matches(&want, &got[..want.len()])
        } else {
            got.windows(want.len()).any(|w| window_matches(&want, w))
        };
        named || (path.kind == Kind::Glob && self.glob_reaches(&want, anchored, got))
    }

    /// `use std::*` reaches `::std::fs`; `use crate::dm::*` reaches `dm::session`.
    fn glob_reaches(&self, want: &[&str], anchored: bool, glob: &[String]) -> bool {
        if anchored {
            return glob.len() < want.len() && window_matches(&want[..glob.len()], glob);
        }
        (1..want.len())
            .any(|k| glob.len() >= k && window_matches(&want[..k], &glob[glob.len() - k..]))
    }
}

/// Whether the repository-relative path `rel` is `prefix` or lies under it.
fn under(rel: &str, prefix: &str) -> bool {
    rel == prefix || rel.starts_with(&format!("{prefix}/"))
}

/// The `.rs` files under `root/dir`, as (repository-relative path, full path), sorted.
/// A folder that does not exist or holds no Rust is an error: a rule over it checks nothing.
pub fn rust_files(root: &Path, dir: &str) -> Result<Vec<(String, PathBuf)>, String> {
    fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                collect(root, &path, out)?;
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.push((rel, path));
            }
        }
        Ok(())
    }
    let full = root.join(dir);
    if !full.is_dir() {
        return Err(format!(
            "`{dir}` is not a folder under {}: a rule over a missing folder checks nothing; point the rule at the folder's new place",
            root.display()
        ));
    }
    let mut out = Vec::new();
    collect(root, &full, &mut out).map_err(|e| format!("`{dir}`: {e}"))?;
    if out.is_empty() {
        return Err(format!(
            "`{dir}` holds no .rs files: the rule checks nothing"
        ));
    }
    out.sort();
    Ok(out)
}

/// Every exemption must name a file or folder that exists, or it is stale.
fn stale_exemptions(root: &Path, rule: &str, exempt: &[&str]) -> Vec<String> {
    exempt
        .iter()
        .filter(|e| !root.join(e).exists())
        .map(|e| format!("{rule}: the exemption `{e}` names nothing; remove or fix it"))
        .collect()
}

/// Runs `check(rel, text)` over every file under each of `dirs`, gathering problems.
fn over_files(
    root: &Path,
    dirs: &[&str],
    check: impl Fn(&str, &str) -> Vec<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for dir in dirs {
        match rust_files(root, dir) {
            Err(e) => problems.push(e),
            Ok(files) => {
                for (rel, path) in files {
                    match std::fs::read_to_string(&path) {
                        Ok(text) => problems.extend(check(&rel, &text)),
                        Err(e) => problems.push(format!("{rel}: unreadable: {e}")),
                    }
                }
            }
        }
    }
    problems
}

/// The paths of `text` that match any of `patterns`, or the reason it cannot be read.
fn offending(
    rel: &str,
    text: &str,
    patterns: &[Pattern],
) -> Result<Vec<(PathRef, Pattern)>, String> {
    let paths = scan::paths(text).map_err(|e| format!("{rel}: {e}"))?;
    let mut hits = Vec::new();
    for path in paths {
        if let Some(p) = patterns.iter().find(|p| p.matches(&path)) {
            hits.push((path, *p));
        }
    }
    Ok(hits)
}

// ---------------------------------------------------------------------------------
// Rule 1: each infrastructure crate is known to one module only.

pub struct Confined {
    pub crates: &'static [Pattern],
    pub home: &'static str,
    pub hint: &'static str,
}

pub const CONFINED: &[Confined] = &[
    Confined {
        crates: &[
            Pattern("::sea_orm"),
            Pattern("::sea_query"),
            Pattern("::sqlx"),
        ],
        home: "src/store",
        hint: "database access belongs in src/store: add a repository method there and call it",
    },
    Confined {
        crates: &[Pattern("::aws_*")],
        home: "src/blob",
        hint: "object storage belongs in src/blob: extend BlobStore",
    },
    Confined {
        crates: &[Pattern("::actix*")],
        home: "src/http",
        hint: "HTTP belongs in src/http: keep handlers thin and call the domain modules",
    },
];

/// The confinement violations in one file, given its repository-relative path.
pub fn confinement_violations(rel: &str, text: &str) -> Vec<String> {
    let mut violations = Vec::new();
    for rule in CONFINED.iter().filter(|r| !under(rel, r.home)) {
        match offending(rel, text, rule.crates) {
            Err(e) => return vec![e],
            Ok(hits) => violations.extend(hits.into_iter().map(|(path, _)| {
                format!(
                    "{rel}:{}: `{}` outside {}: {}",
                    path.line,
                    path.display(),
                    rule.home,
                    rule.hint
                )
            })),
        }
    }
    violations
}

pub fn check_confinement(root: &Path) -> Vec<String> {
    let mut problems = over_files(root, &["src"], confinement_violations);
    // Each home must name one of its crates; otherwise the crate left (drop the rule)
    // or the home moved (fix it), and either way the rule guards nothing.
    for rule in CONFINED {
        let used = rust_files(root, rule.home).map(|files| {
            files.iter().any(|(rel, path)| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                offending(rel, &text, rule.crates).is_ok_and(|hits| !hits.is_empty())
            })
        });
        match used {
            Err(e) => problems.push(e),
            Ok(false) => problems.push(format!(
                "{}: names none of {:?}; the confinement rule guards nothing",
                rule.home,
                rule.crates.iter().map(|p| p.0).collect::<Vec<_>>()
            )),
            Ok(true) => {}
        }
    }
    problems
}

// ---------------------------------------------------------------------------------
// Rule 2: the cores are sans-IO.

/// A sans-IO core and the test files in it that may read fixtures from disk.
pub struct Core {
    pub dir: &'static str,
    pub exempt: &'static [&'static str],
}

/// A new core (say the campaign planner in `src/campaign`) joins with one line here.
pub const SANS_IO_CORES: &[Core] = &[
    Core {
        dir: "src/dm",
        exempt: &["src/dm/tests"],
    },
    Core {
        dir: "src/campaign",
        exempt: &[],
    },
    Core {
        dir: "src/package",
        exempt: &["src/package/tests.rs", "src/package/shape_tests.rs"],
    },
    Core {
        dir: "src/fumo",
        exempt: &["src/fumo/tests.rs"],
    },
];

/// What a core may not touch: time and randomness come in as arguments, I/O happens at the edge.
pub const IO_MARKERS: &[(Pattern, &str)] = &[
    (Pattern("::tokio"), "an async runtime"),
    (Pattern("::actix*"), "the HTTP server"),
    (Pattern("::hyper"), "HTTP"),
    (Pattern("::reqwest"), "an HTTP client"),
    (Pattern("::sea_orm"), "the database"),
    (Pattern("::sqlx"), "the database"),
    (Pattern("::aws_*"), "object storage"),
    (Pattern("::tempfile"), "the file system"),
    (Pattern("::std::fs"), "the file system"),
    (Pattern("::std::net"), "the network"),
    (Pattern("::std::os"), "OS-specific files and sockets"),
    (Pattern("::std::env"), "the process environment"),
    (Pattern("::std::process"), "processes"),
    (Pattern("::std::thread::sleep"), "the clock"),
    (Pattern("::std::io::stdin"), "the terminal"),
    (Pattern("::std::io::stdout"), "the terminal"),
    (Pattern("::std::io::stderr"), "the terminal"),
    (Pattern("println!"), "the terminal"),
    (Pattern("print!"), "the terminal"),
    (Pattern("eprintln!"), "the terminal"),
    (Pattern("eprint!"), "the terminal"),
    (Pattern("dbg!"), "the terminal"),
    (Pattern("SystemTime::now"), "a clock read"),
    (Pattern("Instant::now"), "a clock read"),
    (Pattern("Utc::now"), "a clock read"),
    (Pattern("Local::now"), "a clock read"),
    (Pattern("OffsetDateTime::now_utc"), "a clock read"),
    (Pattern("OffsetDateTime::now_local"), "a clock read"),
    (Pattern("Timestamp::now"), "a clock read"),
    (Pattern("::rand"), "randomness"),
    (Pattern("::rand_*"), "randomness"),
    (Pattern("::getrandom"), "randomness"),
    (Pattern("::fastrand"), "randomness"),
    (Pattern("::nanorand"), "randomness"),
    (Pattern("::ring::rand"), "randomness"),
    (Pattern("OsRng"), "randomness"),
    (Pattern("thread_rng"), "randomness"),
    (Pattern("Uuid::new_v4"), "randomness"),
    (Pattern("Uuid::new_v7"), "randomness"),
    (Pattern("Uuid::now_v1"), "a clock read"),
    (Pattern("Uuid::now_v6"), "a clock read"),
    (Pattern("Uuid::now_v7"), "a clock read and randomness"),
];

/// The sans-IO violations in one file, if it belongs to one of `cores` and is not exempt.
pub fn sans_io_violations(cores: &[Core], rel: &str, text: &str) -> Vec<String> {
    let Some(core) = cores.iter().find(|c| under(rel, c.dir)) else {
        return Vec::new();
    };
    if core.exempt.iter().any(|e| under(rel, e)) {
        return Vec::new();
    }
    let patterns: Vec<Pattern> = IO_MARKERS.iter().map(|(p, _)| *p).collect();
    match offending(rel, text, &patterns) {
        Err(e) => vec![e],
        Ok(hits) => hits
            .into_iter()
            .map(|(path, pattern)| {
                let what = IO_MARKERS.iter().find(|(p, _)| p.0 == pattern.0).unwrap().1;
                format!(
                    "{rel}:{}: `{}` ({what}) in the sans-IO core {}: take bytes, time and randomness as arguments and return effects; do the I/O at the edge",
                    path.line,
                    path.display(),
                    core.dir
                )
            })
            .collect(),
    }
}

pub fn check_sans_io(root: &Path, cores: &[Core]) -> Vec<String> {
    let mut problems = Vec::new();
    for core in cores {
        problems.extend(stale_exemptions(root, "sans-IO", core.exempt));
        problems.extend(over_files(root, &[core.dir], |rel, text| {
            sans_io_violations(cores, rel, text)
        }));
    }
    problems
}

// ---------------------------------------------------------------------------------
// Rule 3: the simulator is an independent client.

pub const SIMULATOR: &str = "src/simulator";
/// Its tests drive the server engine as the peer under test.
pub const SIMULATOR_EXEMPT: &[&str] = &["src/simulator/tests"];
pub const SERVER_ENGINE: &[Pattern] = &[Pattern("dm::session"), Pattern("dm::large_object")];

/// The simulator-independence violations in one file.
pub fn simulator_violations(rel: &str, text: &str) -> Vec<String> {
    if !under(rel, SIMULATOR) || SIMULATOR_EXEMPT.iter().any(|e| under(rel, e)) {
        return Vec::new();
    }
    match offending(rel, text, SERVER_ENGINE) {
        Err(e) => vec![e],
        Ok(hits) => hits
            .into_iter()
            .map(|(path, _)| {
                format!(
                    "{rel}:{}: `{}`: the simulator must not use the server's engine or Large Object planner; write the client side in src/simulator",
                    path.line,
                    path.display()
                )
            })
            .collect(),
    }
}

pub fn check_simulator(root: &Path) -> Vec<String> {
    let mut problems = stale_exemptions(root, "simulator", SIMULATOR_EXEMPT);
    problems.extend(over_files(root, &[SIMULATOR], simulator_violations));
    problems
}

// ---------------------------------------------------------------------------------
// Rule 4: every source file begins by saying what it is.

pub const DOCUMENTED: &[&str] = &["src", "migrations/src", "tests"];

pub fn doc_line_violation(rel: &str, text: &str) -> Option<String> {
    (!text.starts_with("//!"))
        .then(|| format!("{rel}: does not begin with a `//!` line saying what it is"))
}

pub fn check_doc_lines(root: &Path) -> Vec<String> {
    over_files(root, DOCUMENTED, |rel, text| {
        doc_line_violation(rel, text).into_iter().collect()
    })
}

// ---------------------------------------------------------------------------------
// Rule 5: tests wait for events, not for time.

/// Where a test may pause for a fixed time, and why: the polling interval of a wait
/// helper, or a test of time itself.
pub const MAY_SLEEP: &[(&str, &str)] = &[
    (
        "tests/it/helpers/wait.rs",
        "the polling interval of wait_for / wait_until_blocking: the outcome depends on the condition",
    ),
    (
        "tests/it/helpers/slow_gateway.rs",
        "a gateway slower than the retry interval: its delay is the condition under test",
    ),
];
pub const SLEEPS: &[Pattern] = &[
    Pattern("sleep"),
    Pattern("sleep_until"),
    Pattern("sleep_ms"),
    Pattern("park_timeout"),
];

/// Whole files of tests: the integration tests and the cores' test folders.
fn is_test_file(rel: &str) -> bool {
    rel.starts_with("tests/") || rel.contains("/tests/") || rel.ends_with("/tests.rs")
}

/// Sleeps in test code: every path of a test file, the `#[cfg(test)]` modules of others.
pub fn sleep_violations(rel: &str, text: &str) -> Vec<String> {
    if MAY_SLEEP.iter().any(|(file, _)| *file == rel) {
        return Vec::new();
    }
    let paths = if is_test_file(rel) {
        scan::paths(text)
    } else {
        scan::test_module_paths(text)
    };
    let paths = match paths {
        Ok(paths) => paths,
        Err(e) => return vec![format!("{rel}: {e}")],
    };
    paths
        .into_iter()
        .filter(|path| SLEEPS.iter().any(|p| p.matches(path)))
        .map(|path| {
            format!(
                "{rel}:{}: `{}` in a test: wait for the event instead (helpers::wait_for, a channel, a child's exit); if time itself is under test, list the file in MAY_SLEEP with the reason",
                path.line,
                path.display()
            )
        })
        .collect()
}

pub fn check_sleeps(root: &Path) -> Vec<String> {
    let files: Vec<&str> = MAY_SLEEP.iter().map(|(file, _)| *file).collect();
    let mut problems = stale_exemptions(root, "no sleeping tests", &files);
    problems.extend(over_files(root, &["tests", "src"], sleep_violations));
    problems
}

// ---------------------------------------------------------------------------------
// The rules over this repository.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn assert_clean(rule: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "architecture invariant broken ({rule}):\n{}",
        problems.join("\n")
    );
}

#[test]
fn crates_stay_in_their_modules() {
    assert_clean("confinement", check_confinement(&root()));
}

#[test]
fn protocol_and_package_cores_are_sans_io() {
    assert_clean("sans-IO", check_sans_io(&root(), SANS_IO_CORES));
}

#[test]
fn the_simulator_does_not_mirror_the_server_engine() {
    // An independent client catches the server's mistakes; one sharing its session code
    // would repeat them. Only the simulator's tests may drive the engine, as the peer.
    assert_clean("simulator independence", check_simulator(&root()));
}

#[test]
fn every_source_file_says_what_it_is() {
    assert_clean("`//!` first line", check_doc_lines(&root()));
}

#[test]
fn tests_wait_for_events_not_for_time() {
    assert_clean("no sleeping tests", check_sleeps(&root()));
}

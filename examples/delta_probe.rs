//! Diffs two files with the builder's matcher (or the classic one) and prints the work done.
//!
//!     cargo run --release --example delta_probe -- OLD NEW [classic]

use std::time::Instant;

use updraft::package::NoProgress;
use updraft::package::delta::diff::{MatchOptions, diff_with};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let old = std::fs::read(&args[1]).expect("old");
    let new = std::fs::read(&args[2]).expect("new");
    let options = if args.get(3).is_some_and(|a| a == "classic") {
        MatchOptions::CLASSIC
    } else {
        MatchOptions::DEFAULT
    };
    let unit = MatchOptions::budget_for(old.len(), new.len(), 1);
    let started = Instant::now();
    let (patch, stats) = diff_with(&old, &new, options, &mut NoProgress).expect("diff");
    println!(
        "{:.2} s, {} steps ({:.2} x n log2 n), {} searches, {} entries, {} extra bytes",
        started.elapsed().as_secs_f64(),
        stats.steps,
        stats.steps as f64 / unit as f64,
        stats.searches,
        patch.entries.len(),
        patch.extra.len()
    );
}

//! Input shapes that stress a matcher (runs of one byte, repeated blocks, shifts, random):
//! each round-trips through build, verify and apply, and matching stays within n log n.

use crate::package::delta::DeltaError;
use crate::package::delta::diff::{MatchOptions, diff_with};
use crate::package::*;

const NOW: i64 = 1_767_225_600;

/// Deterministic bytes that compress somewhat like code (xorshift, skewed, with phrases).
fn code(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let phrases: Vec<Vec<u8>> = (0..64)
        .map(|_| (0..(next() % 8 + 2)).map(|_| next() as u8).collect())
        .collect();
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let r = next();
        if r % 10 < 6 {
            out.extend_from_slice(&phrases[(r >> 8) as usize % phrases.len()]);
        } else {
            out.push((r >> 16) as u8);
        }
    }
    out.truncate(len);
    out
}

/// `data` with a few bytes inserted, deleted or changed every ~`every` bytes.
fn edit(data: &[u8], every: usize, seed: u64) -> Vec<u8> {
    let noise = code(data.len() / every + 1, seed ^ 0xED17);
    let mut out = Vec::with_capacity(data.len() + data.len() / every * 8);
    for (k, chunk) in data.chunks(every).enumerate() {
        match noise[k] % 3 {
            0 => {
                out.extend_from_slice(chunk);
                out.extend_from_slice(&noise[k..(k + 5).min(noise.len())]);
            }
            1 => out.extend_from_slice(&chunk[chunk.len().min(3)..]),
            _ => {
                out.extend_from_slice(chunk);
                let at = out.len() - chunk.len() / 2 - 1;
                out[at] ^= 0x5A;
            }
        }
    }
    out
}

/// `edit(data)` cut or grown to `data.len() + 4`: what follows it in the image (a run of
/// padding) moves by 4 bytes, within the 8 bytes where classic bsdiff rejects a match
/// over the run and then tries again one byte on, all the way through the run.
fn edit_shift4(data: &[u8], every: usize, seed: u64) -> Vec<u8> {
    let mut e = edit(data, every, seed);
    e.resize(data.len() + 4, 0x42);
    e
}

fn padded(mut data: Vec<u8>, len: usize, byte: u8) -> Vec<u8> {
    data.resize(len.max(data.len()), byte);
    data
}

/// (name, old, new) for every shape at size `n` (the images are about `n` bytes).
pub fn shapes(n: usize) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let c = code(n / 4, 1);
    let ff = |k: usize| vec![0xFF; k];
    let half = &c[..c.len() / 2];
    let sector = code(4096, 7);
    let mut repeated_old = sector.repeat(n / 4096);
    let mut repeated_new = repeated_old.clone();
    for k in (0..n / 4096).step_by(13) {
        repeated_old[k * 4096..k * 4096 + 4096].copy_from_slice(&code(4096, k as u64 + 100));
    }
    for k in (0..n / 4096).step_by(7) {
        repeated_new[k * 4096..k * 4096 + 4096].copy_from_slice(&code(4096, k as u64 + 900));
    }
    repeated_new.extend(sector.repeat(4));
    let whole = code(n, 3);
    vec![
        (
            "pad-end",
            padded(c.clone(), n, 0xFF),
            padded(edit_shift4(&c, 2048, 1), n, 0xFF),
        ),
        ("pad-start", [ff(n - c.len()), c.clone()].concat(), {
            let e = edit(&c, 2048, 2);
            [ff(n.saturating_sub(e.len())), e].concat()
        }),
        (
            "pad-middle",
            [half, &ff(n - 2 * half.len())[..], half].concat(),
            [
                edit_shift4(half, 2048, 3),
                ff(n - 2 * half.len()),
                edit(half, 2048, 4),
            ]
            .concat(),
        ),
        (
            "zero-fill",
            padded(c.clone(), n, 0),
            padded(edit_shift4(&c, 2048, 5), n, 0),
        ),
        ("all-ff", ff(n), ff(n + 100)),
        ("repeated", repeated_old, repeated_new),
        ("identical", whole.clone(), whole.clone()),
        ("shifted", whole.clone(), [&b"SHIFTED"[..], &whole].concat()),
        ("random", code(n, 11).iter().map(|b| b ^ 0x33).collect(), {
            let mut x = 0x1234_5678_9abc_def1u64;
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 32) as u8
                })
                .collect()
        }),
        ("code", whole.clone(), edit(&whole, 8192, 9)),
    ]
}

fn release() -> Release<'static> {
    Release {
        manufacturer: "Acme",
        model: "X1",
        target_version: "2",
        source_version: Some("1"),
        security_version: 0,
        created_at: NOW,
        expires_at: None,
    }
}

#[test]
fn every_shape_round_trips_through_build_verify_and_apply() {
    let key = SecretKey::from_seed([9; 32]);
    let keys = KeyRing::new([key.public()]);
    for (name, old, new) in shapes(64 << 10) {
        for encoding in [
            PayloadEncoding::BsdiffSplitXz,
            PayloadEncoding::BsdiffSplitZstd,
            PayloadEncoding::BsdiffZstd,
        ] {
            let pkg = build_delta(&release(), &old, &new, encoding, &key, &mut NoProgress)
                .unwrap_or_else(|e| panic!("{name} {encoding:?}: {e}"));
            let (_, out) = apply(
                &mut &pkg.bytes[..],
                &Policy::new(&keys, NOW),
                Some(&old),
                Vec::new(),
                &mut NoProgress,
            )
            .unwrap_or_else(|e| panic!("{name} {encoding:?}: {e}"));
            assert!(out == new, "{name} {encoding:?}: applied image differs");
        }
        let full = build_full(
            &release(),
            &new,
            PayloadEncoding::FullXz,
            &key,
            &mut NoProgress,
        )
        .unwrap();
        let (_, out) = apply(
            &mut &full.bytes[..],
            &Policy::new(&keys, NOW),
            None,
            Vec::new(),
            &mut NoProgress,
        )
        .unwrap();
        assert!(out == new, "{name} full: applied image differs");
    }
}

/// Steps per n log2 n (n = old + new) the matcher may take on any shape. Measured: at most
/// about 2 on these shapes (see docs/BENCHMARKS.md); the classic scan needs thousands on a
/// 4 MiB run, so the bound separates linearithmic from quadratic with a wide margin.
const STEP_FACTOR: u64 = 8;

fn guarded(name: &str, old: &[u8], new: &[u8]) {
    let budget = MatchOptions::budget_for(old.len(), new.len(), STEP_FACTOR);
    let options = MatchOptions {
        max_steps: Some(budget),
        ..MatchOptions::DEFAULT
    };
    let (patch, stats) =
        diff_with(old, new, options, &mut NoProgress).unwrap_or_else(|e| panic!("{name}: {e}"));
    let per = stats.steps as f64 / (budget / STEP_FACTOR) as f64;
    println!("{name}: {} steps, {per:.2} x n log2 n", stats.steps);
    assert!(
        stats.steps <= budget,
        "{name}: {} steps > {budget}",
        stats.steps
    );
    assert_eq!(patch.new_len(), new.len() as u64, "{name}");
}

/// The regression guard: counts work, not time, on a 4 MiB image that is mostly one run.
/// It fails if the skip over rejected long matches is removed (see
/// `classic_matcher_is_quadratic_on_a_long_run`).
#[test]
fn matching_work_is_linearithmic_on_a_4_mib_run() {
    let (name, old, new) = shapes(4 << 20).swap_remove(0);
    guarded(name, &old, &new);
}

/// The same bound on every other shape (1 MiB, to keep the debug-build test quick).
#[test]
fn matching_work_is_linearithmic_on_every_shape() {
    for (name, old, new) in shapes(1 << 20) {
        guarded(name, &old, &new);
    }
}

/// Shows the guard can fail: the classic bsdiff scan (no skip) runs out of the same budget
/// on a padded image, long before it would finish.
#[test]
fn classic_matcher_is_quadratic_on_a_long_run() {
    let (_, old, new) = shapes(256 << 10).swap_remove(0);
    let budget = MatchOptions::budget_for(old.len(), new.len(), STEP_FACTOR);
    let options = MatchOptions {
        max_steps: Some(budget),
        ..MatchOptions::CLASSIC
    };
    match diff_with(&old, &new, options, &mut NoProgress) {
        Err(DeltaError::StepBudget(b)) => assert_eq!(b, budget),
        Err(other) => panic!("unexpected error {other}"),
        Ok((_, stats)) => panic!("classic matcher finished within budget: {stats:?}"),
    }
}

/// A caller's `should_stop` ends matching with `DeltaError::Stopped` (the worker's budget).
#[test]
fn matching_stops_when_the_caller_says_so() {
    struct StopNow;
    impl Progress for StopNow {
        fn start(&mut self, _: Step, _: u64) {}
        fn update(&mut self, _: u64) {}
        fn should_stop(&self) -> bool {
            true
        }
    }
    let (_, old, new) = shapes(256 << 10).swap_remove(0);
    let err = diff_with(&old, &new, MatchOptions::DEFAULT, &mut StopNow).unwrap_err();
    assert!(matches!(err, DeltaError::Stopped), "{err}");
    let err = build_delta(
        &release(),
        &old,
        &new,
        PayloadEncoding::BsdiffSplitXz,
        &SecretKey::from_seed([1; 32]),
        &mut StopNow,
    )
    .unwrap_err();
    assert!(
        matches!(err, BuildError::Delta(DeltaError::Stopped)),
        "{err}"
    );
}

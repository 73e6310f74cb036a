//! End-to-end tests: round trips, every rejection with its own error, property tests.

use std::path::Path;

use proptest::prelude::*;

use crate::package::delta::{diff, raw, split};
use crate::package::format::{HEADER_LEN_V2 as HEADER_LEN, Header};
use crate::package::signing::SIGNATURE_LEN;
use crate::package::*;

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn key() -> SecretKey {
    SecretKey::from_seed([42; 32])
}

fn release(source: Option<&'static str>) -> Release<'static> {
    Release {
        manufacturer: "Acme",
        model: "X1",
        target_version: "1.1.0",
        source_version: source,
        security_version: 3,
        created_at: NOW - 60,
        expires_at: Some(NOW + 3600),
    }
}

fn images() -> (Vec<u8>, Vec<u8>) {
    let old: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 20) as u8)
        .collect();
    let mut new = old.clone();
    for i in (0..new.len()).step_by(997) {
        new[i] = new[i].wrapping_add(4);
    }
    new.splice(50_000..50_000, b"new feature code".repeat(40));
    new.truncate(180_000);
    (old, new)
}

fn delta_package() -> (Vec<u8>, Vec<u8>, Package) {
    let (old, new) = images();
    let pkg = build_delta(
        &release(Some("1.0.0")),
        &old,
        &new,
        PayloadEncoding::BsdiffSplitXz,
        &key(),
        &mut NoProgress,
    )
    .unwrap();
    (old, new, pkg)
}

fn ring() -> KeyRing {
    KeyRing::new([key().public()])
}

fn apply_bytes(bytes: &[u8], old: Option<&[u8]>) -> Result<Vec<u8>, PackageError> {
    let keys = ring();
    apply(
        &mut &bytes[..],
        &Policy::new(&keys, NOW),
        old,
        Vec::new(),
        &mut NoProgress,
    )
    .map(|(_, out)| out)
}

/// Re-signs a package after changing its manifest with `edit` and its payload with `payload`.
fn resign(bytes: &[u8], edit: impl FnOnce(&mut Manifest), payload: Option<Vec<u8>>) -> Vec<u8> {
    let (_, mut manifest, _) = read_unverified(&mut &bytes[..]).unwrap();
    let start = HEADER_LEN + manifest.to_signed_bytes().len() + SIGNATURE_LEN;
    let payload = payload.unwrap_or_else(|| bytes[start..].to_vec());
    manifest.payload.sha256 = Sha256::of(&payload);
    manifest.payload.size = payload.len() as u64;
    edit(&mut manifest);
    let m = manifest.to_signed_bytes();
    let header = Header::v2_for_manifest(&m);
    [&header.to_bytes()[..], &m, &key().sign(&m), &payload].concat()
}

#[test]
fn full_packages_round_trip_in_every_full_encoding() {
    let (_, new) = images();
    for encoding in [PayloadEncoding::FullZstd, PayloadEncoding::FullXz] {
        let pkg = build_full(&release(None), &new, encoding, &key(), &mut NoProgress).unwrap();
        assert!(pkg.manifest.source.is_none());
        assert_eq!(apply_bytes(&pkg.bytes, None).unwrap(), new, "{encoding:?}");
    }
}

#[test]
fn delta_packages_round_trip_in_every_delta_encoding() {
    let (old, new) = images();
    for encoding in [
        PayloadEncoding::BsdiffZstd,
        PayloadEncoding::BsdiffSplitXz,
        PayloadEncoding::BsdiffSplitZstd,
    ] {
        let pkg = build_delta(
            &release(Some("1.0.0")),
            &old,
            &new,
            encoding,
            &key(),
            &mut NoProgress,
        )
        .unwrap();
        assert_eq!(
            apply_bytes(&pkg.bytes, Some(&old)).unwrap(),
            new,
            "{encoding:?}"
        );
        let keys = ring();
        let m = verify(
            &mut &pkg.bytes[..],
            &Policy::new(&keys, NOW),
            Some(&old),
            &mut NoProgress,
        )
        .unwrap();
        assert_eq!(m.source.unwrap().sha256, Sha256::of(&old));
    }
}

#[test]
fn bsdiff_zstd_payload_is_what_the_bsdiff_crate_applies() {
    let (old, new) = images();
    let pkg = build_delta(
        &release(Some("1.0.0")),
        &old,
        &new,
        PayloadEncoding::BsdiffZstd,
        &key(),
        &mut NoProgress,
    )
    .unwrap();
    let payload = &pkg.bytes[pkg.bytes.len() - pkg.manifest.payload.size as usize..];
    let stream = zstd::stream::decode_all(payload).unwrap();
    let mut rebuilt = Vec::new();
    bsdiff::patch(&old, &mut stream.as_slice(), &mut rebuilt).unwrap();
    assert_eq!(rebuilt, new);
}

#[test]
fn release_keeps_the_delta_only_when_small_enough() {
    let (old, new) = images();
    let policy = BuildPolicy::default();
    let built = build_release(
        &release(Some("1.0.0")),
        Some(&old),
        &new,
        &policy,
        &key(),
        &mut NoProgress,
    )
    .unwrap();
    let delta = built.delta.expect("a small delta is kept");
    assert!(delta.bytes.len() < built.full.bytes.len() / 2);
    // Unrelated images: the delta is no smaller than the full image, so it is dropped.
    let unrelated: Vec<u8> = new
        .iter()
        .map(|b| b.wrapping_mul(167).rotate_left(3))
        .collect();
    let built = build_release(
        &release(Some("1.0.0")),
        Some(&unrelated),
        &new,
        &policy,
        &key(),
        &mut NoProgress,
    )
    .unwrap();
    assert!(built.delta.is_none());
    assert!(built.dropped_delta_size.is_some());
}

#[test]
fn corpus_pair_round_trips() {
    // The shared corpus sits beside the repository (main crate) or two levels up (scratch).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = ["../shared", "../../shared"]
        .iter()
        .map(|up| root.join(up).join("bench/corpus/mcu-microbit"))
        .find(|dir| dir.join("new").is_file());
    let Some(dir) = found else {
        eprintln!(
            "skipping: shared corpus not found beside {}",
            root.display()
        );
        return;
    };
    let (old, new) = (
        std::fs::read(dir.join("old")).unwrap(),
        std::fs::read(dir.join("new")).unwrap(),
    );
    for encoding in [PayloadEncoding::BsdiffSplitXz, PayloadEncoding::BsdiffZstd] {
        let pkg = build_delta(
            &release(Some("1.0.0")),
            &old,
            &new,
            encoding,
            &key(),
            &mut NoProgress,
        )
        .unwrap();
        assert_eq!(apply_bytes(&pkg.bytes, Some(&old)).unwrap(), new);
    }
    let full = build_full(
        &release(None),
        &new,
        PayloadEncoding::FullXz,
        &key(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(apply_bytes(&full.bytes, None).unwrap(), new);
}

#[test]
fn tampered_payload_is_rejected() {
    let (old, _, pkg) = delta_package();
    let mut bytes = pkg.bytes.clone();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x01;
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::TamperedPayload)
    ));
    // Also when the change breaks decoding early: the digest still names the cause.
    let mut bytes = pkg.bytes.clone();
    let first = bytes.len() - pkg.manifest.payload.size as usize;
    bytes[first] ^= 0xff;
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::TamperedPayload)
    ));
    // The check without decoding says the same.
    let keys = ring();
    let mut input = &bytes[..];
    let manifest = read_manifest(&mut input, &Policy::new(&keys, NOW)).unwrap();
    assert!(matches!(
        check_payload(&mut input, &manifest, &mut NoProgress),
        Err(PackageError::TamperedPayload)
    ));
}

#[test]
fn tampered_manifest_is_rejected() {
    // Format 2 has no manifest digest: a changed manifest fails the signature.
    let (old, _, pkg) = delta_package();
    let mut bytes = pkg.bytes.clone();
    bytes[HEADER_LEN + 12] ^= 0x01;
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::BadSignature)
    ));
    // A changed key id names a key nobody trusts.
    let mut bytes = pkg.bytes.clone();
    bytes[HEADER_LEN + 1] ^= 0x01;
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::UnknownKey(_))
    ));
    // Format 1 tells a damaged manifest by the header's digest.
    let mut bytes = hex::decode(include_str!("testdata/tiny_package_v1.hex").trim()).unwrap();
    let at = 56 + 1 + "\"format_version\":1".len();
    assert_eq!(bytes[at], b',');
    bytes[at] = b' ';
    assert!(matches!(
        apply_bytes(&bytes, Some(b"hello, world! v1")),
        Err(PackageError::TamperedManifest)
    ));
}

#[test]
fn bad_signature_is_rejected() {
    let (old, _, pkg) = delta_package();
    let mut bytes = pkg.bytes.clone();
    let sig = HEADER_LEN + pkg.manifest.to_signed_bytes().len();
    bytes[sig + 5] ^= 0x20;
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::BadSignature)
    ));
    // A manifest edited together with its header digest still fails the signature.
    let mut m = pkg.manifest.clone();
    m.security_version = 99;
    let mb = m.to_signed_bytes();
    let header = Header::v2_for_manifest(&mb);
    let forged = [&header.to_bytes()[..], &mb, &pkg.bytes[sig..]].concat();
    assert!(matches!(
        apply_bytes(&forged, Some(&old)),
        Err(PackageError::BadSignature)
    ));
}

#[test]
fn unknown_key_is_rejected() {
    let (old, _, pkg) = delta_package();
    let other = KeyRing::new([SecretKey::from_seed([1; 32]).public()]);
    let err = apply(
        &mut &pkg.bytes[..],
        &Policy::new(&other, NOW),
        Some(&old),
        Vec::new(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, PackageError::UnknownKey(id) if id == key().public().id()));
}

#[test]
fn wrong_or_missing_source_is_rejected() {
    let (mut old, _, pkg) = delta_package();
    assert!(matches!(
        apply_bytes(&pkg.bytes, None),
        Err(PackageError::SourceRequired { .. })
    ));
    old[123] ^= 1;
    assert!(matches!(
        apply_bytes(&pkg.bytes, Some(&old)),
        Err(PackageError::WrongSource { .. })
    ));
}

#[test]
fn expired_package_is_rejected() {
    let (old, _, pkg) = delta_package();
    let keys = ring();
    let expires = pkg.manifest.expires_at.unwrap();
    for now in [expires, expires + 1] {
        let err = apply(
            &mut &pkg.bytes[..],
            &Policy::new(&keys, now),
            Some(&old),
            Vec::new(),
            &mut NoProgress,
        )
        .unwrap_err();
        assert!(matches!(err, PackageError::Expired { .. }));
    }
    assert!(
        apply(
            &mut &pkg.bytes[..],
            &Policy::new(&keys, expires - 1),
            Some(&old),
            Vec::new(),
            &mut NoProgress
        )
        .is_ok()
    );
}

#[test]
fn truncated_file_is_rejected_at_every_part() {
    let (old, _, pkg) = delta_package();
    let m = pkg.manifest.to_signed_bytes().len();
    let cases = [
        (10, "header"),
        (HEADER_LEN + 3, "manifest"),
        (HEADER_LEN + m + 10, "signature"),
        (pkg.bytes.len() - 1, "payload"),
        (HEADER_LEN + m + SIGNATURE_LEN + 3, "payload"),
    ];
    for (len, part) in cases {
        let err = apply_bytes(&pkg.bytes[..len], Some(&old)).unwrap_err();
        assert!(
            matches!(err, PackageError::Truncated(p) if p == part),
            "{len}: {err}"
        );
    }
}

#[test]
fn trailing_data_is_rejected() {
    let (old, _, pkg) = delta_package();
    let bytes = [&pkg.bytes[..], b"x"].concat();
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::TrailingData)
    ));
}

#[test]
fn wrong_model_and_rollback_are_rejected() {
    let (old, _, pkg) = delta_package();
    let keys = ring();
    let mut policy = Policy::new(&keys, NOW);
    policy.model = Some("X2");
    let err = apply(
        &mut &pkg.bytes[..],
        &policy,
        Some(&old),
        Vec::new(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, PackageError::WrongModel { .. }));
    let mut policy = Policy::new(&keys, NOW);
    policy.model = Some("X1");
    policy.manufacturer = Some("Acme");
    policy.min_security_version = 4;
    let err = apply(
        &mut &pkg.bytes[..],
        &policy,
        Some(&old),
        Vec::new(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        PackageError::Rollback {
            found: 3,
            minimum: 4
        }
    ));
}

#[test]
fn signed_but_wrong_target_or_corrupt_payload_is_rejected() {
    let (old, _, pkg) = delta_package();
    let bytes = resign(&pkg.bytes, |m| m.target.sha256 = Sha256([0; 32]), None);
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::TargetMismatch)
    ));
    let bytes = resign(&pkg.bytes, |_| {}, Some(vec![9; 40]));
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::CorruptPayload(_))
    ));
}

#[test]
fn header_errors_are_reported() {
    let (old, _, pkg) = delta_package();
    let mut bytes = pkg.bytes.clone();
    bytes[0] = b'P';
    assert!(matches!(
        apply_bytes(&bytes, Some(&old)),
        Err(PackageError::BadHeader(_))
    ));
}

/// The tiny package shown in docs/package-format.md: its bytes must not drift.
pub fn tiny_package() -> Package {
    let old = b"hello, world! v1".to_vec();
    let new = b"hello, world! v2 with more".to_vec();
    let release = Release {
        manufacturer: "Acme",
        model: "X1",
        target_version: "2",
        source_version: Some("1"),
        security_version: 1,
        created_at: NOW,
        expires_at: None,
    };
    build_delta(
        &release,
        &old,
        &new,
        PayloadEncoding::BsdiffSplitXz,
        &key(),
        &mut NoProgress,
    )
    .unwrap()
}

#[test]
fn a_format_1_package_still_verifies_and_applies() {
    // Built by the format 1 writer (docs/package-format.md, appendix); devices keep
    // installing packages of the old format that are already stored or signed offline.
    let bytes = hex::decode(include_str!("testdata/tiny_package_v1.hex").trim()).unwrap();
    assert_eq!(
        apply_bytes(&bytes, Some(b"hello, world! v1")).unwrap(),
        b"hello, world! v2 with more"
    );
    let (header, manifest, _) = read_unverified(&mut &bytes[..]).unwrap();
    assert_eq!((header.version, manifest.format_version), (1, 1));
    // The same facts re-signed in format 2 take 410 bytes fewer.
    assert_eq!(bytes.len() - tiny_package().bytes.len(), 410);
}

#[test]
fn tiny_package_bytes_are_stable() {
    let pkg = tiny_package();
    let hex = hex::encode(&pkg.bytes);
    assert_eq!(hex, include_str!("testdata/tiny_package.hex").trim());
    assert_eq!(
        apply_bytes(&pkg.bytes, Some(b"hello, world! v1")).unwrap(),
        b"hello, world! v2 with more"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn diff_then_apply_round_trips(
        old in proptest::collection::vec(0u8..8, 0..600),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 0..12),
    ) {
        // Start from old and edit it, so that matches exist (small alphabet: many ties).
        let mut new = old.clone();
        for (at, byte, op) in edits {
            let at = if new.is_empty() { 0 } else { at as usize % (new.len() + 1) };
            match op {
                0 if at < new.len() => new[at] = byte,
                1 => new.insert(at, byte),
                _ if at < new.len() => { new.remove(at); }
                _ => new.push(byte),
            }
        }
        let patch = diff::diff(&old, &new, &mut NoProgress).unwrap();
        let mut stream = Vec::new();
        raw::write(&patch, &mut stream).unwrap();
        let mut out = Vec::new();
        raw::apply(&old, &mut stream.as_slice(), &mut out).unwrap();
        prop_assert_eq!(&out, &new);
        let mut theirs = Vec::new();
        bsdiff::patch(&old, &mut stream.as_slice(), &mut theirs).unwrap();
        prop_assert_eq!(&theirs, &new);
        for zstd in [false, true] {
            let bytes = split::encode(&patch, zstd, &mut NoProgress).unwrap();
            let mut out = Vec::new();
            split::apply(&old, zstd, &mut bytes.as_slice(), &mut out).unwrap();
            prop_assert_eq!(&out, &new);
        }
    }
}

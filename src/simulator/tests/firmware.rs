//! The device's install step against real packages built with src/package: the happy path
//! (delta and full) and each attack of the Uptane/TUF list that applies, each refused with the
//! FUMO result code documented in `simulator::firmware`.

use crate::package::{
    KeyRing, NoProgress, PayloadEncoding, Release, SecretKey, build_delta, build_full,
};
use crate::simulator::firmware::{PublishedKey, declared_len, trusted_keys};
use crate::simulator::{Firmware, ImageCache, Trust, install};

const NOW: i64 = 1_780_000_000;

fn key() -> SecretKey {
    SecretKey::from_seed([3; 32])
}

fn v1() -> Vec<u8> {
    (0..60_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn v2() -> Vec<u8> {
    let mut new = v1();
    for i in (0..new.len()).step_by(501) {
        new[i] = new[i].wrapping_add(1);
    }
    new.extend_from_slice(&b"feature".repeat(100));
    new
}

fn release(
    model: &'static str,
    security_version: u64,
    expires_at: Option<i64>,
) -> Release<'static> {
    Release {
        manufacturer: "Updraft",
        model,
        target_version: "2.0.0",
        source_version: Some("1.0.0"),
        security_version,
        created_at: NOW - 60,
        expires_at,
    }
}

fn delta(r: &Release, old: &[u8], signer: &SecretKey) -> Vec<u8> {
    build_delta(
        r,
        old,
        &v2(),
        PayloadEncoding::BsdiffSplitXz,
        signer,
        &mut NoProgress,
    )
    .unwrap()
    .bytes
}

fn full(r: &Release) -> Vec<u8> {
    build_full(r, &v2(), PayloadEncoding::FullXz, &key(), &mut NoProgress)
        .unwrap()
        .bytes
}

fn trust() -> Trust {
    Trust {
        keys: KeyRing::new([key().public()]),
        manufacturer: "Updraft".into(),
        model: "SIM-1".into(),
    }
}

fn running(cache: &ImageCache) -> Firmware {
    let mut fw = Firmware::new("1.0.0", cache, v1());
    fw.security_version = 2;
    fw
}

fn refused_with(package: &[u8], trust: &Trust) -> (u16, String) {
    let cache = ImageCache::new();
    let r = install(&running(&cache), package, trust, NOW, &cache).unwrap_err();
    (r.code, r.reason)
}

#[test]
fn a_delta_installs_byte_identical_and_carries_the_security_version() {
    let cache = ImageCache::new();
    let pkg = delta(&release("SIM-1", 3, Some(NOW + 3600)), &v1(), &key());
    let new = install(&running(&cache), &pkg, &trust(), NOW, &cache).unwrap();
    assert_eq!(&*new.image, v2().as_slice());
    assert_eq!(new.version, "2.0.0");
    assert_eq!(new.security_version, 3);
    // Two devices on the same image share one copy.
    let again = Firmware::new("1.0.0", &cache, v1());
    assert!(std::sync::Arc::ptr_eq(&again.image, &running(&cache).image));
    assert_eq!(cache.len(), 2);
}

#[test]
fn a_full_package_installs_whatever_the_running_image() {
    let cache = ImageCache::new();
    let mut fw = Firmware::new("0.9.0", &cache, b"some other image".to_vec());
    fw.security_version = 1;
    let new = install(
        &fw,
        &full(&release("SIM-1", 3, None)),
        &trust(),
        NOW,
        &cache,
    )
    .unwrap();
    assert_eq!(&*new.image, v2().as_slice());
}

#[test]
fn an_arbitrary_package_with_a_bad_signature_is_404() {
    let mut pkg = delta(&release("SIM-1", 3, None), &v1(), &key());
    // The signature follows the 12-byte header and the manifest.
    let manifest_len = u16::from_be_bytes(pkg[10..12].try_into().unwrap()) as usize;
    pkg[12 + manifest_len + 5] ^= 1;
    let (code, reason) = refused_with(&pkg, &trust());
    assert_eq!(code, 404, "{reason}");
    assert!(reason.contains("signature"), "{reason}");
}

#[test]
fn a_package_from_an_unknown_key_is_404() {
    let pkg = delta(
        &release("SIM-1", 3, None),
        &v1(),
        &SecretKey::from_seed([9; 32]),
    );
    let (code, reason) = refused_with(&pkg, &trust());
    assert_eq!(code, 404, "{reason}");
    assert!(reason.contains("unknown key"), "{reason}");
}

#[test]
fn a_package_from_a_retired_key_is_404() {
    let old_key = SecretKey::from_seed([5; 32]);
    let published = [
        PublishedKey {
            public_key: key().public().to_file_text(),
            state: "active".into(),
        },
        PublishedKey {
            public_key: old_key.public().to_file_text(),
            state: "retired".into(),
        },
    ];
    let trust = Trust {
        keys: trusted_keys(&published).unwrap(),
        ..trust()
    };
    let pkg = delta(&release("SIM-1", 3, None), &v1(), &old_key);
    assert_eq!(refused_with(&pkg, &trust).0, 404);
    // The active one is still trusted.
    let cache = ImageCache::new();
    let ok = delta(&release("SIM-1", 3, None), &v1(), &key());
    assert!(install(&running(&cache), &ok, &trust, NOW, &cache).is_ok());
}

#[test]
fn a_rollback_is_405() {
    let pkg = delta(&release("SIM-1", 1, None), &v1(), &key());
    let (code, reason) = refused_with(&pkg, &trust());
    assert_eq!(code, 405, "{reason}");
    assert!(reason.contains("rollback"), "{reason}");
}

#[test]
fn a_frozen_package_past_its_expiry_is_405() {
    let pkg = delta(&release("SIM-1", 3, Some(NOW - 1)), &v1(), &key());
    let (code, reason) = refused_with(&pkg, &trust());
    assert_eq!(code, 405, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
}

#[test]
fn a_package_for_another_model_is_403() {
    let pkg = delta(&release("SIM-2", 3, None), &v1(), &key());
    let (code, reason) = refused_with(&pkg, &trust());
    assert_eq!(code, 403, "{reason}");
    assert!(reason.contains("SIM-2"), "{reason}");
}

#[test]
fn a_delta_from_another_source_is_403() {
    let mut other = v1();
    other[100] ^= 0xff;
    let pkg = delta(&release("SIM-1", 3, None), &other, &key());
    let (code, reason) = refused_with(&pkg, &trust());
    assert_eq!(code, 403, "{reason}");
    assert!(reason.contains("wrong source"), "{reason}");
}

#[test]
fn endless_data_is_402_and_the_declared_length_stops_the_download() {
    let pkg = delta(&release("SIM-1", 3, None), &v1(), &key());
    let mut endless = pkg.clone();
    endless.extend_from_slice(&[0u8; 4096]);
    let (code, reason) = refused_with(&endless, &trust());
    assert_eq!(code, 402, "{reason}");
    // The downloader learns the length from the header and manifest alone.
    assert!(declared_len(&pkg[..60]).is_none());
    let declared = declared_len(&pkg[..pkg.len().min(4096)]).unwrap().unwrap();
    assert_eq!(declared, pkg.len() as u64);
}

#[test]
fn a_corrupted_download_is_402() {
    let mut pkg = delta(&release("SIM-1", 3, None), &v1(), &key());
    let n = pkg.len();
    pkg[n - 10] ^= 0x40;
    let (code, reason) = refused_with(&pkg, &trust());
    assert_eq!(code, 402, "{reason}");
    let (code, _) = refused_with(&pkg[..n - 100], &trust());
    assert_eq!(code, 402, "a truncated package is corrupt too");
}

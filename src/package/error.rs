//! The errors of building and of verifying/applying a package: one variant per failure.

use std::io;

use crate::package::delta::DeltaError;
use crate::package::format::HeaderError;
use crate::package::manifest::{ManifestError, Sha256};
use crate::package::signing::KeyId;

/// Why a package was refused (or could not be read). Each check of the verifier has its
/// own variant, so callers (and devices reporting a FUMO result) can tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The file ends before the header, manifest, signature or payload is complete.
    #[error("package is truncated: {0} is incomplete")]
    Truncated(&'static str),
    /// Bytes follow the payload.
    #[error("package has data after the payload")]
    TrailingData,
    /// Bad magic, unsupported version, unknown flags, manifest length out of range.
    #[error("bad package header: {0}")]
    BadHeader(#[from] HeaderError),
    /// The manifest bytes do not match the digest in the header.
    #[error("manifest was tampered with (digest mismatch)")]
    TamperedManifest,
    /// The signing key id is not among the trusted keys.
    #[error("package is signed by unknown key {0}")]
    UnknownKey(KeyId),
    /// The signature does not verify with the trusted key of that id.
    #[error("bad signature")]
    BadSignature,
    /// The signed manifest is not a valid canonical manifest (a signer bug).
    #[error("invalid manifest: {0}")]
    InvalidManifest(#[from] ManifestError),
    /// The signed manifest disagrees with the header (key id).
    #[error("manifest key id {manifest} does not match header key id {header}")]
    KeyIdMismatch { header: KeyId, manifest: String },
    /// The package's expiry time is not after `now`.
    #[error("package expired at {expires_at} (now {now}, unix seconds)")]
    Expired { expires_at: i64, now: i64 },
    /// The package is for another device model or manufacturer.
    #[error("package is for {found:?}, device is {expected:?}")]
    WrongModel { expected: String, found: String },
    /// The package's security version is below the device's minimum (anti-rollback).
    #[error("security version {found} is below the minimum {minimum} (rollback)")]
    Rollback { found: u64, minimum: u64 },
    /// A delta was given no source image.
    #[error("delta package needs the source image (version {version})")]
    SourceRequired { version: String },
    /// The source image is not the one the delta was built from.
    #[error(
        "wrong source image: expected sha256 {expected} ({expected_size} bytes), got {found} ({found_size} bytes)"
    )]
    WrongSource {
        expected: Sha256,
        expected_size: u64,
        found: Sha256,
        found_size: u64,
    },
    /// The payload's sha256 or size differs from the signed manifest.
    #[error("payload was tampered with (sha256 mismatch)")]
    TamperedPayload,
    /// The payload matches its signed digest but does not decode (a builder bug).
    #[error("payload is authentic but corrupt: {0}")]
    CorruptPayload(String),
    /// The applied image's sha256 or size differs from the manifest's target.
    #[error("result does not match the target image (sha256 or size mismatch)")]
    TargetMismatch,
    /// Reading the package or writing the output failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Why a package could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid build input: {0}")]
    Invalid(#[from] ManifestError),
    #[error("payload encoding {0} does not fit a {1} package")]
    EncodingMismatch(&'static str, &'static str),
    #[error(transparent)]
    Delta(#[from] DeltaError),
    #[error("compression failed: {0}")]
    Compress(#[from] io::Error),
}

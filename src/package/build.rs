//! The builder: payload encoding, manifest, signature, and the full-or-delta decision.

use crate::package::compress::{self, PayloadEncoding};
use crate::package::delta::{diff, raw, split};
use crate::package::error::BuildError;
use crate::package::format::Header;
use crate::package::manifest::{
    ImageRef, MANIFEST_VERSION, Manifest, ManifestError, PayloadRef, Sha256,
};
use crate::package::progress::{Progress, Step};
use crate::package::signing::SecretKey;

/// What a package is for. Times are unix seconds (UTC) supplied by the caller.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    pub manufacturer: &'a str,
    pub model: &'a str,
    pub target_version: &'a str,
    /// Version of the source image; required for a delta, ignored for a full package.
    pub source_version: Option<&'a str>,
    pub security_version: u64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A built, signed package.
#[derive(Debug, Clone)]
pub struct Package {
    pub manifest: Manifest,
    /// The whole package file.
    pub bytes: Vec<u8>,
}

/// Encodings and the rule for keeping a delta.
#[derive(Debug, Clone, Copy)]
pub struct BuildPolicy {
    pub full_encoding: PayloadEncoding,
    pub delta_encoding: PayloadEncoding,
    /// A delta is kept only when its package is smaller than this fraction of the full one.
    pub max_delta_ratio: f64,
}

impl Default for BuildPolicy {
    fn default() -> Self {
        Self {
            full_encoding: PayloadEncoding::FullXz,
            delta_encoding: PayloadEncoding::BsdiffSplitXz,
            max_delta_ratio: 0.5,
        }
    }
}

/// The packages for one target image: always the full fallback, and the delta if kept.
#[derive(Debug, Clone)]
pub struct ReleaseBuild {
    pub full: Package,
    pub delta: Option<Package>,
    /// Size of the delta package that was built but not kept (too large), if any.
    pub dropped_delta_size: Option<usize>,
}

/// Builds the full package and, given the source image, a delta kept by `policy`.
pub fn build_release(
    release: &Release,
    old: Option<&[u8]>,
    new: &[u8],
    policy: &BuildPolicy,
    key: &SecretKey,
    progress: &mut dyn Progress,
) -> Result<ReleaseBuild, BuildError> {
    let full = build_full(release, new, policy.full_encoding, key, progress)?;
    let Some(old) = old else {
        return Ok(ReleaseBuild {
            full,
            delta: None,
            dropped_delta_size: None,
        });
    };
    let delta = build_delta(release, old, new, policy.delta_encoding, key, progress)?;
    if (delta.bytes.len() as f64) < full.bytes.len() as f64 * policy.max_delta_ratio {
        Ok(ReleaseBuild {
            full,
            delta: Some(delta),
            dropped_delta_size: None,
        })
    } else {
        let dropped = Some(delta.bytes.len());
        Ok(ReleaseBuild {
            full,
            delta: None,
            dropped_delta_size: dropped,
        })
    }
}

/// Builds a full-image package.
pub fn build_full(
    release: &Release,
    new: &[u8],
    encoding: PayloadEncoding,
    key: &SecretKey,
    progress: &mut dyn Progress,
) -> Result<Package, BuildError> {
    if encoding.is_delta() {
        return Err(BuildError::EncodingMismatch(encoding.name(), "full"));
    }
    progress.start(Step::Compress, new.len() as u64);
    let payload = compress::compress_whole(encoding, new)?;
    progress.update(new.len() as u64);
    seal(release, None, new, encoding, payload, key)
}

/// Builds a delta package from `old` to `new`.
pub fn build_delta(
    release: &Release,
    old: &[u8],
    new: &[u8],
    encoding: PayloadEncoding,
    key: &SecretKey,
    progress: &mut dyn Progress,
) -> Result<Package, BuildError> {
    if !encoding.is_delta() {
        return Err(BuildError::EncodingMismatch(encoding.name(), "delta"));
    }
    let version = release.source_version.ok_or(ManifestError::Field {
        field: "source.version",
        why: "a delta needs the source version",
    })?;
    let payload = delta_payload(old, new, encoding, progress)?;
    let source = ImageRef {
        version: version.to_owned(),
        sha256: Sha256::of(old),
        size: old.len() as u64,
    };
    seal(release, Some(source), new, encoding, payload, key)
}

/// Diffs and encodes a delta payload (no manifest, no signature).
pub fn delta_payload(
    old: &[u8],
    new: &[u8],
    encoding: PayloadEncoding,
    progress: &mut dyn Progress,
) -> Result<Vec<u8>, BuildError> {
    let patch = diff::diff(old, new, progress)?;
    Ok(match encoding {
        PayloadEncoding::BsdiffZstd => {
            let mut stream = Vec::with_capacity(new.len() + patch.entries.len() * 24);
            raw::write(&patch, &mut stream)?;
            drop(patch);
            progress.start(Step::Compress, stream.len() as u64);
            compress::compress_whole(encoding, &stream)?
        }
        PayloadEncoding::BsdiffSplitXz => split::encode(&patch, false, progress)?,
        PayloadEncoding::BsdiffSplitZstd => split::encode(&patch, true, progress)?,
        PayloadEncoding::FullZstd | PayloadEncoding::FullXz => {
            return Err(BuildError::EncodingMismatch(encoding.name(), "delta"));
        }
    })
}

/// Writes manifest, header and signature around `payload`.
fn seal(
    release: &Release,
    source: Option<ImageRef>,
    new: &[u8],
    encoding: PayloadEncoding,
    payload: Vec<u8>,
    key: &SecretKey,
) -> Result<Package, BuildError> {
    let key_id = key.public().id();
    let manifest = Manifest {
        format_version: MANIFEST_VERSION,
        key_id: key_id.to_string(),
        manufacturer: release.manufacturer.to_owned(),
        model: release.model.to_owned(),
        target: ImageRef {
            version: release.target_version.to_owned(),
            sha256: Sha256::of(new),
            size: new.len() as u64,
        },
        source,
        payload: PayloadRef {
            encoding,
            sha256: Sha256::of(&payload),
            size: payload.len() as u64,
        },
        created_at: release.created_at,
        expires_at: release.expires_at,
        security_version: release.security_version,
    };
    manifest.validate()?;
    let manifest_bytes = manifest.to_signed_bytes();
    let header = Header::v2_for_manifest(&manifest_bytes);
    let signature = key.sign(&manifest_bytes);
    let mut bytes = Vec::with_capacity(header.envelope_len() + payload.len());
    bytes.extend_from_slice(&header.to_bytes());
    bytes.extend_from_slice(&manifest_bytes);
    bytes.extend_from_slice(&signature);
    bytes.extend_from_slice(&payload);
    Ok(Package { manifest, bytes })
}

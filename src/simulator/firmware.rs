//! The firmware a simulated device runs and how it takes a new one: images shared by digest,
//! the trusted signing keys, and the install step that verifies and applies an Updraft package
//! (src/package) and turns every refusal into the FUMO result code a real device reports.
//!
//! Result-code choices (brief 5.5), by the verifier's `PackageError`:
//!
//! | refusal | code | why |
//! |---|---|---|
//! | unknown or retired key, bad signature, manifest that does not parse or names another key | 404 | "failed package validation (signature check failed)" |
//! | another manufacturer or model, delta for another source image (or none) | 403 | "package–device mismatch": authentic, but not for this device as it is |
//! | rollback (security version below the installed one), expired | 405 | "package not acceptable": authentic and for this device, refused by policy |
//! | truncated, bad header, manifest bytes not matching the header digest, payload digest or size wrong, more bytes than the manifest says, payload that does not decode, result not the target image | 402 | "corrupted firmware update package" |
//! | writing the new image failed | 410 | "firmware update failed" |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::package::{self, KeyRing, PackageError, Policy, Sha256};

/// FUMO result codes the device reports (brief 5.5).
pub mod result {
    pub const SUCCESS: u16 = 200;
    pub const USER_CANCELLED: u16 = 401;
    pub const CORRUPTED: u16 = 402;
    pub const MISMATCH: u16 = 403;
    pub const VALIDATION_FAILED: u16 = 404;
    pub const NOT_ACCEPTABLE: u16 = 405;
    pub const DOWNLOAD_TIMEOUT: u16 = 407;
    pub const UPDATE_FAILED: u16 = 410;
    pub const BAD_URL: u16 = 411;
    pub const SERVER_UNAVAILABLE: u16 = 412;
    pub const DOWNLOAD_OUT_OF_MEMORY: u16 = 501;
    pub const NETWORK_FAILURE: u16 = 503;
}

/// Firmware images by sha256, so that devices running the same image hold one copy.
#[derive(Debug, Default)]
pub struct ImageCache {
    images: Mutex<HashMap<Sha256, Arc<[u8]>>>,
}

impl ImageCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `bytes` (the one already held when the digest is known).
    pub fn intern(&self, bytes: Vec<u8>) -> (Sha256, Arc<[u8]>) {
        let digest = Sha256::of(&bytes);
        let mut images = self.images.lock().unwrap_or_else(|p| p.into_inner());
        let shared = images
            .entry(digest)
            .or_insert_with(|| Arc::from(bytes.into_boxed_slice()))
            .clone();
        (digest, shared)
    }

    /// How many distinct images are held.
    pub fn len(&self) -> usize {
        self.images.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The firmware a device runs: its version string (`./DevDetail/FwV`), image and the
/// highest security version installed (the anti-rollback floor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    pub version: String,
    pub image: Arc<[u8]>,
    pub sha256: Sha256,
    pub security_version: u64,
}

impl Firmware {
    pub fn new(version: impl Into<String>, cache: &ImageCache, image: Vec<u8>) -> Self {
        let (sha256, image) = cache.intern(image);
        Self {
            version: version.into(),
            image,
            sha256,
            security_version: 0,
        }
    }
}

/// What a device checks a package against besides its own firmware.
#[derive(Debug, Clone)]
pub struct Trust {
    /// Active signing keys only: a retired key is not in the ring, so its packages are
    /// refused as signed by an unknown key.
    pub keys: KeyRing,
    pub manufacturer: String,
    pub model: String,
}

/// The FUMO result code for a refused package (the table in the module docs).
pub fn result_code(e: &PackageError) -> u16 {
    use PackageError as E;
    match e {
        E::UnknownKey(_) | E::BadSignature | E::InvalidManifest(_) | E::KeyIdMismatch { .. } => {
            result::VALIDATION_FAILED
        }
        E::WrongModel { .. } | E::SourceRequired { .. } | E::WrongSource { .. } => result::MISMATCH,
        E::Rollback { .. } | E::Expired { .. } => result::NOT_ACCEPTABLE,
        E::Truncated(_)
        | E::TrailingData
        | E::BadHeader(_)
        | E::TamperedManifest
        | E::TamperedPayload
        | E::CorruptPayload(_)
        | E::TargetMismatch => result::CORRUPTED,
        E::Io(_) => result::UPDATE_FAILED,
    }
}

/// A refused install: the FUMO code and the verifier's reason (for the summary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: u16,
    pub reason: String,
}

impl From<PackageError> for Refused {
    fn from(e: PackageError) -> Self {
        Self {
            code: result_code(&e),
            reason: e.to_string(),
        }
    }
}

/// Verifies `package` against the running firmware and applies it, streaming, into a new
/// image. `now` is unix seconds. The result is the new firmware (not yet running: the
/// device switches to it when it "reboots").
pub fn install(
    current: &Firmware,
    package: &[u8],
    trust: &Trust,
    now: i64,
    cache: &ImageCache,
) -> Result<Firmware, Refused> {
    let policy = Policy {
        keys: &trust.keys,
        now,
        manufacturer: Some(&trust.manufacturer),
        model: Some(&trust.model),
        min_security_version: current.security_version,
    };
    let mut input = package;
    let (manifest, image) = package::apply(
        &mut input,
        &policy,
        Some(&current.image),
        Vec::with_capacity(current.image.len()),
        &mut package::NoProgress,
    )?;
    let (sha256, image) = cache.intern(image);
    Ok(Firmware {
        version: manifest.target.version,
        image,
        sha256,
        security_version: manifest.security_version.max(current.security_version),
    })
}

/// The whole package's length as its (still unverified) header and manifest declare it,
/// once `prefix` holds them: `None` while too short. A device uses it to stop reading
/// "endless data" (more bytes than the manifest says); the signature check comes later, so
/// a lying header only shortens the download into a refusal, never lengthens it past
/// the device's own limit.
pub fn declared_len(prefix: &[u8]) -> Option<Result<u64, Refused>> {
    use crate::package::format::{Header, MAX_HEADER_LEN};
    let head = &prefix[..prefix.len().min(MAX_HEADER_LEN)];
    let header = match Header::parse(head) {
        Ok(h) => h?,
        Err(e) => return Some(Err(PackageError::from(e).into())),
    };
    let end = header.header_len() + header.manifest_len as usize;
    let manifest = prefix.get(header.header_len()..end)?;
    let parsed = match crate::package::Manifest::from_signed_bytes(header.version, manifest) {
        Ok(m) => m,
        Err(e) => return Some(Err(PackageError::from(e).into())),
    };
    Some(Ok(header.envelope_len() as u64 + parsed.payload.size))
}

/// One entry of `GET /api/v1/keys`, as much of it as a device needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PublishedKey {
    pub public_key: String,
    /// `active`, `valid` or `retired`.
    pub state: String,
}

/// The keys a device trusts from the server's published list: active and valid ones; a
/// retired key is left out, so packages it signed are refused (404) like an unknown key's.
pub fn trusted_keys(published: &[PublishedKey]) -> Result<KeyRing, String> {
    let mut ring = KeyRing::default();
    for k in published.iter().filter(|k| k.state != "retired") {
        let key = package::PublicKey::from_file_text(&k.public_key)
            .map_err(|e| format!("public key {:?}: {e}", k.public_key))?;
        ring.add(key);
    }
    Ok(ring)
}

/// Fetches the trusted keys from the admin API (`GET {api_url}/api/v1/keys`).
pub async fn fetch_keys(
    client: &reqwest::Client,
    api_url: &str,
    token: &str,
) -> Result<KeyRing, String> {
    let url = format!("{}/api/v1/keys", api_url.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let keys: Vec<PublishedKey> = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    trusted_keys(&keys)
}

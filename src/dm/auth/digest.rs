//! `syncml:auth-md5` (brief 2.3) and the stored credential form.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::constant_time_eq;

/// B64(MD5(bytes)), standard alphabet with padding (brief 9.4: compared as text by clients).
pub fn md5_b64(bytes: &[u8]) -> String {
    STANDARD.encode(Md5::digest(bytes))
}

/// The intermediate `B64(MD5(name ":" secret))`.
///
/// md5 credentials, HMAC macs and the Package 0 digest all start from this value, so storing
/// it instead of the secret means a database leak does not reveal the secret itself (it is
/// still enough to impersonate over DM, which the protocol cannot avoid).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialHash(pub String);

impl CredentialHash {
    pub fn compute(name: &str, secret: &str) -> Self {
        Self(md5_b64(format!("{name}:{secret}").as_bytes()))
    }
}

impl std::fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialHash(..)")
    }
}

/// How a per-device secret is stored. `Hash` is enough for md5, HMAC and Package 0; only
/// `syncml:auth-basic` needs `Cleartext`, so store that only for devices configured for basic.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredSecret {
    Hash(CredentialHash),
    Cleartext(String),
}

impl StoredSecret {
    /// The md5 intermediate for `name`.
    pub fn hash(&self, name: &str) -> CredentialHash {
        match self {
            Self::Hash(h) => h.clone(),
            Self::Cleartext(s) => CredentialHash::compute(name, s),
        }
    }

    pub fn cleartext(&self) -> Option<&str> {
        match self {
            Self::Cleartext(s) => Some(s),
            Self::Hash(_) => None,
        }
    }
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hash(_) => "StoredSecret::Hash(..)",
            Self::Cleartext(_) => "StoredSecret::Cleartext(..)",
        })
    }
}

/// `Cred/Data` for md5: B64(MD5(B64(MD5(name:secret)) ":" nonce)), nonce as decoded bytes.
pub fn md5_credential(hash: &CredentialHash, nonce: &[u8]) -> String {
    let mut input = Vec::with_capacity(hash.0.len() + 1 + nonce.len());
    input.extend_from_slice(hash.0.as_bytes());
    input.push(b':');
    input.extend_from_slice(nonce);
    md5_b64(&input)
}

/// Checks a presented md5 `Cred/Data` against one candidate nonce.
pub fn verify_md5_credential(hash: &CredentialHash, nonce: &[u8], presented: &str) -> bool {
    constant_time_eq(
        md5_credential(hash, nonce).as_bytes(),
        presented.trim().as_bytes(),
    )
}

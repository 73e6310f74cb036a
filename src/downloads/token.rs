//! Download tokens, sans-IO: a job key, a package id and an expiry, signed with HMAC-SHA256.
//!
//! A token is the whole authentication of a device-facing download URL, so it must be
//! verifiable by any replica without a database read, unguessable, and bound to one
//! package. Layout (version 1), then unpadded base64url:
//!
//! ```text
//! 0      1               9               17              33   34        34+L     50+L
//! | ver | expires (u64 BE) | package (i64 BE) | nonce (16 bytes) | L | job key (L) | tag (16) |
//! ```
//!
//! The tag is HMAC-SHA256 under the server's download key over a context string and
//! every byte before it, truncated to 128 bits (RFC 2104 allows truncation to half the
//! output; 128 bits leave no forgery within reach). The nonce makes two links for the
//! same job and package differ, so a link cannot be predicted from another. Time and
//! randomness come in as arguments.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const CONTEXT: &[u8] = b"updraft-download-token-v1";
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 8 + 8 + NONCE_LEN + 1;
/// Longest job key a token carries.
pub const MAX_JOB_KEY_LEN: usize = 64;
/// Shortest download key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;
/// Longest token text we even try to decode.
const MAX_TOKEN_CHARS: usize = (HEADER_LEN + MAX_JOB_KEY_LEN + TAG_LEN).div_ceil(3) * 4;

/// What a token grants: the bytes of one package, on behalf of one job, until a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The job the bytes are accounted to (an update job's id, or an operator link's key).
    pub job_key: String,
    pub package_id: i64,
    /// Unix seconds; the token is refused from this second on.
    pub expires_at: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours at all (bad encoding, length or version).
    #[error("malformed download token")]
    Malformed,
    /// Well-formed but not signed with our key, or altered.
    #[error("download token signature does not verify")]
    BadSignature,
    /// Genuine, but past its expiry.
    #[error("download token expired at {expires_at}")]
    Expired { expires_at: i64 },
}

/// Why a grant cannot be made into a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error(
        "job key must be 1 to {MAX_JOB_KEY_LEN} characters of letters, digits, '.', '_', ':' or '-'"
    )]
    BadJobKey,
    #[error("expiry must be a non-negative unix time")]
    BadExpiry,
}

/// The server's download key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct TokenKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the download key must be at least {MIN_KEY_LEN} bytes")]
pub struct KeyTooShort;

impl TokenKey {
    pub fn new(secret: &[u8]) -> Result<TokenKey, KeyTooShort> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyTooShort);
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        Ok(TokenKey { mac })
    }

    fn tag(&self, signed: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(signed);
        mac
    }
}

/// A job key is safe in a URL, a log line and a database key.
pub fn valid_job_key(key: &str) -> bool {
    (1..=MAX_JOB_KEY_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// Signs `grant` into a token; `nonce` must be fresh random bytes.
pub fn issue(key: &TokenKey, grant: &Grant, nonce: [u8; NONCE_LEN]) -> Result<String, GrantError> {
    if !valid_job_key(&grant.job_key) {
        return Err(GrantError::BadJobKey);
    }
    let expires = u64::try_from(grant.expires_at).map_err(|_| GrantError::BadExpiry)?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + grant.job_key.len() + TAG_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&expires.to_be_bytes());
    bytes.extend_from_slice(&grant.package_id.to_be_bytes());
    bytes.extend_from_slice(&nonce);
    bytes.push(grant.job_key.len() as u8);
    bytes.extend_from_slice(grant.job_key.as_bytes());
    let tag = key.tag(&bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..TAG_LEN]);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks a token's signature, then its expiry against `now` (unix seconds).
///
/// The signature is checked first and in constant time, so a forged token is always
/// `BadSignature`, never told whether it would have expired.
pub fn verify(key: &TokenKey, token: &str, now: i64) -> Result<Grant, TokenError> {
    let grant = verify_signature(key, token)?;
    if now >= grant.expires_at {
        return Err(TokenError::Expired {
            expires_at: grant.expires_at,
        });
    }
    Ok(grant)
}

/// Checks only the signature: for a report a device sends about a download it made,
/// which stays meaningful after the link expired.
pub fn verify_signature(key: &TokenKey, token: &str) -> Result<Grant, TokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() < HEADER_LEN + 1 + TAG_LEN || bytes[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let key_len = usize::from(bytes[HEADER_LEN - 1]);
    if bytes.len() != HEADER_LEN + key_len + TAG_LEN {
        return Err(TokenError::Malformed);
    }
    let (signed, tag) = bytes.split_at(HEADER_LEN + key_len);
    key.tag(signed)
        .verify_truncated_left(tag)
        .map_err(|_| TokenError::BadSignature)?;
    let expires = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let package_id = i64::from_be_bytes(bytes[9..17].try_into().expect("8 bytes"));
    let job_key = std::str::from_utf8(&signed[HEADER_LEN..])
        .ok()
        .filter(|k| valid_job_key(k))
        .ok_or(TokenError::Malformed)?;
    Ok(Grant {
        job_key: job_key.to_owned(),
        package_id,
        expires_at: i64::try_from(expires).map_err(|_| TokenError::Malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey::new(&[byte; 32]).unwrap()
    }

    fn grant() -> Grant {
        Grant {
            job_key: "job-17".into(),
            package_id: 42,
            expires_at: 1_900_000_000,
        }
    }

    #[test]
    fn a_token_round_trips_and_is_url_safe_and_compact() {
        let token = issue(&key(1), &grant(), [7; 16]).unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(token.len() < 80, "{} chars", token.len());
        assert_eq!(verify(&key(1), &token, 1_800_000_000), Ok(grant()));
    }

    #[test]
    fn the_nonce_makes_every_token_different() {
        let a = issue(&key(1), &grant(), [1; 16]).unwrap();
        let b = issue(&key(1), &grant(), [2; 16]).unwrap();
        assert_ne!(a, b);
        assert!(verify(&key(1), &b, 0).is_ok());
    }

    #[test]
    fn expiry_is_checked_after_the_signature() {
        let token = issue(&key(1), &grant(), [0; 16]).unwrap();
        assert_eq!(
            verify(&key(1), &token, 1_900_000_000),
            Err(TokenError::Expired {
                expires_at: 1_900_000_000
            })
        );
        // Under another key the same token is a forgery, expired or not.
        assert_eq!(
            verify(&key(2), &token, 1_900_000_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify_signature(&key(1), &token), Ok(grant()));
    }

    #[test]
    fn changing_any_bound_field_breaks_the_signature() {
        let token = issue(&key(1), &grant(), [0; 16]).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        // Every byte: expiry, package id, nonce, job key and the tag itself.
        for at in 1..bytes.len() {
            let mut altered = bytes.clone();
            altered[at] ^= 0x01;
            let altered = URL_SAFE_NO_PAD.encode(altered);
            assert!(
                matches!(
                    verify(&key(1), &altered, 0),
                    Err(TokenError::BadSignature | TokenError::Malformed)
                ),
                "byte {at}"
            );
        }
        // Re-pointing a genuine token at another package keeps its tag, which then fails.
        let mut other_package = bytes.clone();
        other_package[9..17].copy_from_slice(&43i64.to_be_bytes());
        assert_eq!(
            verify(&key(1), &URL_SAFE_NO_PAD.encode(other_package), 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for text in ["", "abc", "!!!!", &"A".repeat(500)] {
            assert_eq!(verify(&key(1), text, 0), Err(TokenError::Malformed));
        }
        let token = issue(&key(1), &grant(), [0; 16]).unwrap();
        assert_eq!(
            verify(&key(1), &token[..token.len() - 3], 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn job_keys_and_keys_are_checked() {
        for bad in ["", "a b", "x/y", &"k".repeat(65), "é"] {
            let g = Grant {
                job_key: bad.into(),
                ..grant()
            };
            assert_eq!(issue(&key(1), &g, [0; 16]), Err(GrantError::BadJobKey));
        }
        let g = Grant {
            job_key: "k".repeat(64),
            ..grant()
        };
        let token = issue(&key(1), &g, [0; 16]).unwrap();
        assert_eq!(verify(&key(1), &token, 0).unwrap().job_key, g.job_key);
        assert_eq!(
            issue(
                &key(1),
                &Grant {
                    expires_at: -1,
                    ..grant()
                },
                [0; 16]
            ),
            Err(GrantError::BadExpiry)
        );
        assert!(TokenKey::new(&[0; 31]).is_err());
    }
}

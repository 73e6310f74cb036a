//! The `x-syncml-hmac` header (brief 2.4). Despite the name it is not RFC 2104 HMAC but
//! plain MD5 over a concatenation, exactly as the device stacks compute it.

use super::{CredentialHash, constant_time_eq, md5_b64};

/// mac = B64(MD5(B64(MD5(name:secret)) ":" nonce ":" B64(MD5(body)))).
pub fn hmac_mac(hash: &CredentialHash, nonce: &[u8], body: &[u8]) -> String {
    let body_digest = md5_b64(body);
    let mut input = Vec::with_capacity(hash.0.len() + nonce.len() + body_digest.len() + 2);
    input.extend_from_slice(hash.0.as_bytes());
    input.push(b':');
    input.extend_from_slice(nonce);
    input.push(b':');
    input.extend_from_slice(body_digest.as_bytes());
    md5_b64(&input)
}

/// Checks a header's mac over the exact HTTP entity bytes.
pub fn verify_hmac(hash: &CredentialHash, nonce: &[u8], body: &[u8], mac: &str) -> bool {
    constant_time_eq(
        hmac_mac(hash, nonce, body).as_bytes(),
        mac.trim().as_bytes(),
    )
}

/// A parsed `x-syncml-hmac` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacHeader {
    /// Only `MD5` is defined; absent means MD5.
    pub algorithm: Option<String>,
    /// Equals `SyncHdr/Source/LocName` of the message.
    pub username: String,
    pub mac: String,
}

impl HmacHeader {
    /// Parses `algorithm=MD5, username="user", mac=...`: comma separated, whitespace tolerant
    /// (Sprint emits no spaces), quotes optional, keys case-insensitive, `username` and `mac`
    /// mandatory. Values are split at the first `=` only, because base64 macs end in `=`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut algorithm = None;
        let mut username = None;
        let mut mac = None;
        for part in value.split(',') {
            let (k, v) = part.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v)
                .to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "algorithm" => algorithm = Some(v),
                "username" => username = Some(v),
                "mac" => mac = Some(v),
                _ => {}
            }
        }
        if algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return None;
        }
        Some(Self {
            algorithm,
            username: username?,
            mac: mac?,
        })
    }

    /// Formats the header value as the spec example does.
    pub fn format(&self) -> String {
        format!(
            "algorithm={}, username=\"{}\", mac={}",
            self.algorithm.as_deref().unwrap_or("MD5"),
            self.username,
            self.mac
        )
    }
}

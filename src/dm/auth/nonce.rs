//! Nonces: raw bytes, base64 on the wire in `NextNonce`, issued from a caller-supplied source.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// Randomness for nonces and session tokens. The engine never reads OS randomness itself; the
/// service passes a CSPRNG, tests pass a deterministic source.
pub trait NonceSource {
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

/// A nonce as raw bytes. Digests hash these **decoded** bytes (brief 9.3).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nonce(pub Vec<u8>);

impl Nonce {
    /// 16 random bytes: ≥128 bits (brief 2.1) and well under Sprint's 50-byte limit.
    pub fn generate(src: &mut impl NonceSource) -> Self {
        let mut b = vec![0u8; 16];
        src.fill_bytes(&mut b);
        Self(b)
    }

    /// The `NextNonce` text: standard base64 with padding, no line breaks (brief 9.4).
    pub fn to_b64(&self) -> String {
        STANDARD.encode(&self.0)
    }

    /// Decodes a `NextNonce` (or a stored nonce) exactly once: standard base64 with padding,
    /// surrounding whitespace ignored. The empty text is the empty nonce, a value of its own
    /// (a bootstrap may set it), distinct from "no nonce known".
    ///
    /// Text that is not base64 is an error, never taken as raw bytes: a nonce silently read
    /// another way than the peer meant yields credentials that can only fail, far from the
    /// cause. The caller decides the outcome (and logs it).
    pub fn from_b64(text: &str) -> Result<Self, InvalidNonce> {
        STANDARD
            .decode(text.trim())
            .map(Self)
            .map_err(|_| InvalidNonce)
    }

    /// Resynchronisation defaults of brief 2.5: the spec's 0x00000000 as four zero bytes
    /// (Sprint's `AAAAAA==`) and as the ten ASCII characters `0x00000000` (libdmclient).
    /// Every device knows them, so a credential over one of them proves nothing fresh: the
    /// engine answers it with a challenge (see `dm::session::authn`).
    pub fn resync_defaults() -> [Nonce; 2] {
        [Nonce(vec![0; 4]), Nonce(b"0x00000000".to_vec())]
    }

    /// Whether this is one of the [`resync_defaults`](Self::resync_defaults).
    pub fn is_resync_default(&self) -> bool {
        Self::resync_defaults().contains(self)
    }
}

/// A nonce text that is not standard base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("nonce is not valid base64")]
pub struct InvalidNonce;

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never log nonces (STYLE: no credentials, nonces or keys in logs).
        write!(f, "Nonce({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_decoded_once_and_anything_else_refused() {
        assert_eq!(Nonce::from_b64(" Tm9uY2U= ").unwrap().0, b"Nonce");
        assert_eq!(
            Nonce::from_b64("").unwrap().0,
            b"",
            "the empty nonce is a nonce"
        );
        assert_eq!(Nonce::from_b64("not base64!"), Err(InvalidNonce));
        assert_eq!(
            Nonce::from_b64("Tm9uY2U"),
            Err(InvalidNonce),
            "padding required"
        );
    }

    #[test]
    fn resync_defaults_are_recognised() {
        assert!(Nonce(vec![0; 4]).is_resync_default());
        assert!(Nonce(b"0x00000000".to_vec()).is_resync_default());
        assert!(!Nonce(vec![0; 5]).is_resync_default());
        assert!(!Nonce(Vec::new()).is_resync_default());
    }
}

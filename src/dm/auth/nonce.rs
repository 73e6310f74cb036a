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

    /// Decodes a received `NextNonce` exactly once. Text that is not base64 is taken as the
    /// raw nonce, which is what Sprint falls back to as well.
    pub fn from_next_nonce(text: &str) -> Self {
        let t = text.trim();
        match STANDARD.decode(t) {
            Ok(b) => Self(b),
            Err(_) => Self(t.as_bytes().to_vec()),
        }
    }

    /// Resynchronisation defaults of brief 2.5: the spec's 0x00000000 as four zero bytes
    /// (Sprint's `AAAAAA==`) and as the ten ASCII characters `0x00000000` (libdmclient).
    pub fn resync_defaults() -> [Nonce; 2] {
        [Nonce(vec![0; 4]), Nonce(b"0x00000000".to_vec())]
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never log nonces (STYLE: no credentials, nonces or keys in logs).
        write!(f, "Nonce({} bytes)", self.0.len())
    }
}

//! DM application-layer authentication (brief 2): `syncml:auth-basic`, `syncml:auth-md5`,
//! the `x-syncml-hmac` header, nonces and the stored credential form.

mod basic;
mod digest;
mod hmac;
mod nonce;

pub use basic::{basic_credential, basic_secret_for, parse_basic_credential};
pub use digest::{CredentialHash, StoredSecret, md5_b64, md5_credential, verify_md5_credential};
pub use hmac::{HmacHeader, hmac_mac, verify_hmac};
pub use nonce::{InvalidNonce, Nonce, NonceSource};

use serde::{Deserialize, Serialize};

/// The application-layer authentication schemes (the `Type` in Cred/Chal Meta).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthType {
    /// `syncml:auth-basic`: B64(name:secret). Needs the cleartext secret on the server.
    Basic,
    /// `syncml:auth-md5`: the digest of brief 2.3.
    Md5,
    /// `syncml:auth-MAC`: the `x-syncml-hmac` HTTP header of brief 2.4.
    Hmac,
}

impl AuthType {
    pub fn type_uri(self) -> &'static str {
        match self {
            Self::Basic => "syncml:auth-basic",
            Self::Md5 => "syncml:auth-md5",
            Self::Hmac => "syncml:auth-MAC",
        }
    }

    /// Case-insensitive: stacks disagree on `auth-MAC` vs `auth-mac`.
    pub fn from_type_uri(t: &str) -> Option<Self> {
        let t = t.trim();
        [Self::Basic, Self::Md5, Self::Hmac]
            .into_iter()
            .find(|a| a.type_uri().eq_ignore_ascii_case(t))
    }

    /// Schemes whose challenge carries a `NextNonce`.
    pub fn uses_nonce(self) -> bool {
        !matches!(self, Self::Basic)
    }
}

/// Compares two byte strings in time independent of where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

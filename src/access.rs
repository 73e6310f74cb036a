//! Admin API access: roles, bearer-token generation and the digest under which tokens are stored.
//!
//! Tokens are 256 random bits, so a plain sha256 digest is enough to make a
//! leaked table useless (no salt or slow hash is needed for non-guessable secrets).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// What a token may do. Ordered: each role can do everything the ones below it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only access.
    Viewer,
    /// Runs campaigns and manages devices and firmware.
    Operator,
    /// Everything, including tokens and keys.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// True when this role may do what `required` may.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?} (expected admin, operator or viewer)")]
pub struct UnknownRole(pub String);

/// Prefix that makes a leaked token recognisable by secret scanners.
const TOKEN_PREFIX: &str = "updraft_";

/// A freshly generated token: the plaintext is shown once, only the digest is stored.
pub struct NewToken {
    pub plaintext: SecretString,
    pub sha256_hex: String,
}

pub fn generate_token() -> NewToken {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    let plaintext = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let sha256_hex = token_digest(&plaintext);
    NewToken {
        plaintext: SecretString::from(plaintext),
        sha256_hex,
    }
}

/// The stored form of a token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn generated_tokens_are_distinct_and_digest_matches() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a.plaintext.expose_secret(), b.plaintext.expose_secret());
        assert!(a.plaintext.expose_secret().starts_with("updraft_"));
        assert_eq!(a.sha256_hex, token_digest(a.plaintext.expose_secret()));
        assert_eq!(a.sha256_hex.len(), 64);
    }

    #[test]
    fn digest_is_sha256_hex() {
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

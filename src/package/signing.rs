//! ed25519 keys, key ids, signatures, and the text form of key files.
//!
//! Key files are one line of ASCII:
//! `updraft-ed25519-secret <64 hex: the 32-byte secret seed>` (the private key file) and
//! `updraft-ed25519-public <64 hex: the 32-byte public key>` (FILE.pub). A key id is the
//! first 8 bytes of sha256(public key), as 16 lowercase hex characters.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::package::manifest::Sha256;

const SECRET_TAG: &str = "updraft-ed25519-secret";
const PUBLIC_TAG: &str = "updraft-ed25519-public";
/// Length of a signature in a package.
pub const SIGNATURE_LEN: usize = 64;

/// Short id of a public key: first 8 bytes of its sha256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a key file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an updraft {0} key file")]
    Format(&'static str),
    #[error("not a valid ed25519 public key")]
    InvalidPoint,
}

fn parse_line(text: &str, tag: &str, what: &'static str) -> Result<[u8; 32], KeyError> {
    let rest = text
        .trim_end_matches(['\n', '\r'])
        .strip_prefix(tag)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(KeyError::Format(what))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(rest, &mut out).map_err(|_| KeyError::Format(what))?;
    Ok(out)
}

/// A private signing key. Its `Debug` output never shows the secret.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key for a 32-byte secret seed (take it from a CSPRNG).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }

    /// The private key file's text.
    pub fn to_file_text(&self) -> String {
        format!("{SECRET_TAG} {}\n", hex::encode(self.0.to_bytes()))
    }

    pub fn from_file_text(text: &str) -> Result<Self, KeyError> {
        parse_line(text, SECRET_TAG, "secret").map(Self::from_seed)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(id {})", self.public().id())
    }
}

/// A public key that can check package signatures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| KeyError::InvalidPoint)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn id(&self) -> KeyId {
        let digest = Sha256::of(self.0.as_bytes());
        KeyId(digest.0[..8].try_into().expect("8 bytes"))
    }

    /// Strict verification (rejects malleable and small-order forms).
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// The FILE.pub text.
    pub fn to_file_text(&self) -> String {
        format!("{PUBLIC_TAG} {}\n", hex::encode(self.to_bytes()))
    }

    pub fn from_file_text(text: &str) -> Result<Self, KeyError> {
        Self::from_bytes(&parse_line(text, PUBLIC_TAG, "public")?)
    }
}

/// The public keys a verifier trusts, looked up by key id. Rotation = several keys.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<PublicKey>,
}

impl KeyRing {
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }

    pub fn add(&mut self, key: PublicKey) {
        self.keys.push(key);
    }

    pub fn get(&self, id: KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = SecretKey::from_seed([7; 32]);
        let sig = key.sign(b"manifest");
        assert!(key.public().verify(b"manifest", &sig));
        assert!(!key.public().verify(b"manifesT", &sig));
        let other = SecretKey::from_seed([8; 32]).public();
        assert!(!other.verify(b"manifest", &sig));
    }

    #[test]
    fn key_files_round_trip_and_reject_garbage() {
        let key = SecretKey::from_seed([7; 32]);
        let text = key.to_file_text();
        assert!(text.starts_with("updraft-ed25519-secret 0707"));
        let back = SecretKey::from_file_text(&text).unwrap();
        assert_eq!(back.public(), key.public());
        let public = key.public().to_file_text();
        assert_eq!(PublicKey::from_file_text(&public).unwrap(), key.public());
        assert_eq!(
            PublicKey::from_file_text(&text),
            Err(KeyError::Format("public"))
        );
        assert_eq!(
            SecretKey::from_file_text("updraft-ed25519-secret 12").unwrap_err(),
            KeyError::Format("secret")
        );
        assert!(!format!("{key:?}").contains("0707"));
    }

    #[test]
    fn key_id_is_the_sha256_prefix_of_the_public_key() {
        let public = SecretKey::from_seed([7; 32]).public();
        let digest = Sha256::of(&public.to_bytes());
        assert_eq!(public.id().to_string(), hex::encode(&digest.0[..8]));
        let ring = KeyRing::new([public]);
        assert!(ring.get(public.id()).is_some());
        assert!(ring.get(KeyId([0; 8])).is_none());
    }
}

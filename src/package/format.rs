//! The fixed package header and the layout of a package file.
//!
//! ```text
//! offset  size  field
//! 0       8     magic 89 55 50 4B 0D 0A 1A 0A ("\x89UPK\r\n\x1a\n")
//! 8       2     format version, big-endian (1)
//! 10      2     flags, big-endian (0; any other value is refused)
//! 12      4     manifest length N, big-endian (1 ..= 65536)
//! 16      8     key id of the signing key
//! 24      32    sha256 of the manifest bytes
//! 56      N     manifest (canonical JSON, see manifest.rs)
//! 56+N    64    ed25519 signature over the N manifest bytes
//! 120+N   P     payload; P and its sha256 are in the manifest
//! ```
//! Nothing follows the payload. The header is not signed: every field in it is either
//! checked against the signed manifest (version, key id) or only locates it (length,
//! digest), so tampering with it shows up as a specific error, never as trust.

use crate::package::manifest::Sha256;
use crate::package::signing::KeyId;

pub const MAGIC: [u8; 8] = *b"\x89UPK\r\n\x1a\n";
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 56;
pub const MAX_MANIFEST_LEN: u32 = 64 * 1024;

/// The fixed-size header at the start of every package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub manifest_len: u32,
    pub key_id: KeyId,
    pub manifest_sha256: Sha256,
}

/// Why a header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not an updraft package (bad magic)")]
    BadMagic,
    #[error("unsupported package format version {0}")]
    UnsupportedVersion(u16),
    #[error("unknown header flags {0:#06x}")]
    UnknownFlags(u16),
    #[error("manifest length {0} out of range")]
    ManifestLength(u32),
}

impl Header {
    pub fn for_manifest(manifest: &[u8], key_id: KeyId) -> Self {
        Self {
            manifest_len: manifest.len() as u32,
            key_id,
            manifest_sha256: Sha256::of(manifest),
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        // bytes 10..12: flags, zero
        out[12..16].copy_from_slice(&self.manifest_len.to_be_bytes());
        out[16..24].copy_from_slice(&self.key_id.0);
        out[24..56].copy_from_slice(&self.manifest_sha256.0);
        out
    }

    /// Parses and bounds-checks a header, in field order.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, HeaderError> {
        if bytes[..8] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let version = u16_at(8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let flags = u16_at(10);
        if flags != 0 {
            return Err(HeaderError::UnknownFlags(flags));
        }
        let manifest_len = u32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if manifest_len == 0 || manifest_len > MAX_MANIFEST_LEN {
            return Err(HeaderError::ManifestLength(manifest_len));
        }
        Ok(Self {
            manifest_len,
            key_id: KeyId(bytes[16..24].try_into().expect("8 bytes")),
            manifest_sha256: Sha256(bytes[24..56].try_into().expect("32 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_checks_each_field() {
        let h = Header::for_manifest(b"{}", KeyId([1, 2, 3, 4, 5, 6, 7, 8]));
        let bytes = h.to_bytes();
        assert_eq!(
            &bytes[..16],
            b"\x89UPK\r\n\x1a\n\x00\x01\x00\x00\x00\x00\x00\x02"
        );
        assert_eq!(Header::parse(&bytes), Ok(h));
        let mut b = bytes;
        b[1] = b'X';
        assert_eq!(Header::parse(&b), Err(HeaderError::BadMagic));
        let mut b = bytes;
        b[9] = 2;
        assert_eq!(Header::parse(&b), Err(HeaderError::UnsupportedVersion(2)));
        let mut b = bytes;
        b[11] = 1;
        assert_eq!(Header::parse(&b), Err(HeaderError::UnknownFlags(1)));
        let mut b = bytes;
        b[12..16].copy_from_slice(&(MAX_MANIFEST_LEN + 1).to_be_bytes());
        assert_eq!(
            Header::parse(&b),
            Err(HeaderError::ManifestLength(MAX_MANIFEST_LEN + 1))
        );
    }
}

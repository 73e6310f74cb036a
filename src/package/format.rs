//! The package header and the layout of a package file, in both format versions.
//!
//! Version 2 (written by this code):
//! ```text
//! offset  size  field
//! 0       8     magic 89 55 50 4B 0D 0A 1A 0A ("\x89UPK\r\n\x1a\n")
//! 8       2     format version, big-endian (2)
//! 10      2     manifest length N, big-endian (1 ..= 4096)
//! 12      N     manifest (canonical binary, see manifest_bin.rs); its bytes 1..9 are the key id
//! 12+N    64    ed25519 signature over the N manifest bytes
//! 76+N    P     payload; P and its sha256 are in the manifest
//! ```
//! Version 1 (still read, no longer written):
//! ```text
//! 0       8     magic
//! 8       2     format version, big-endian (1)
//! 10      2     flags, big-endian (0; any other value is refused)
//! 12      4     manifest length N, big-endian (1 ..= 65536)
//! 16      8     key id of the signing key
//! 24      32    sha256 of the manifest bytes
//! 56      N     manifest (canonical JSON, see manifest.rs)
//! 56+N    64    ed25519 signature over the N manifest bytes
//! 120+N   P     payload
//! ```
//! Nothing follows the payload. The header is not signed: every field in it is either
//! checked against the signed manifest (version, key id) or only locates it (length,
//! digest), so tampering with it shows up as a specific error, never as trust.

use crate::package::manifest::Sha256;
use crate::package::signing::{KeyId, SIGNATURE_LEN};

pub const MAGIC: [u8; 8] = *b"\x89UPK\r\n\x1a\n";
/// The JSON-manifest format: read, no longer written.
pub const FORMAT_V1: u16 = 1;
/// The binary-manifest format: what the builder writes.
pub const FORMAT_V2: u16 = 2;
/// The version the builder writes.
pub const FORMAT_VERSION: u16 = FORMAT_V2;
/// Bytes that tell the format version (magic and version).
pub const PREFIX_LEN: usize = 10;
pub const HEADER_LEN_V1: usize = 56;
pub const HEADER_LEN_V2: usize = 12;
/// The longest header of any version.
pub const MAX_HEADER_LEN: usize = HEADER_LEN_V1;
pub const MAX_MANIFEST_LEN_V1: u32 = 64 * 1024;
pub const MAX_MANIFEST_LEN_V2: u32 = 4096;

/// The header at the start of every package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub manifest_len: u32,
    /// Version 1 only: the key id and manifest digest the header carries. Version 2 keeps
    /// the key id inside the signed manifest and has no digest.
    pub v1: Option<(KeyId, Sha256)>,
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
    /// The header of a version 2 package with these manifest bytes.
    pub fn v2_for_manifest(manifest: &[u8]) -> Self {
        Self {
            version: FORMAT_V2,
            manifest_len: manifest.len() as u32,
            v1: None,
        }
    }

    /// The header of a version 1 package (tests and fixtures of the old format).
    pub fn v1_for_manifest(manifest: &[u8], key_id: KeyId) -> Self {
        Self {
            version: FORMAT_V1,
            manifest_len: manifest.len() as u32,
            v1: Some((key_id, Sha256::of(manifest))),
        }
    }

    /// Length of this header.
    pub fn header_len(&self) -> usize {
        header_len(self.version)
    }

    /// Length of the header, manifest and signature: where the payload starts.
    pub fn envelope_len(&self) -> usize {
        self.header_len() + self.manifest_len as usize + SIGNATURE_LEN
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        match self.v1 {
            Some((key_id, digest)) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&self.manifest_len.to_be_bytes());
                out.extend_from_slice(&key_id.0);
                out.extend_from_slice(&digest.0);
            }
            None => out.extend_from_slice(&(self.manifest_len as u16).to_be_bytes()),
        }
        out
    }

    /// Parses and bounds-checks a header from the start of a package, in field order.
    /// `Ok(None)` while `bytes` is too short to decide.
    pub fn parse(bytes: &[u8]) -> Result<Option<Self>, HeaderError> {
        let magic = bytes.len().min(MAGIC.len());
        if bytes[..magic] != MAGIC[..magic] {
            return Err(HeaderError::BadMagic);
        }
        if bytes.len() < PREFIX_LEN {
            return Ok(None);
        }
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let version = u16_at(8);
        if version != FORMAT_V1 && version != FORMAT_V2 {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        if bytes.len() < header_len(version) {
            return Ok(None);
        }
        if version == FORMAT_V2 {
            let manifest_len = u32::from(u16_at(10));
            if manifest_len == 0 || manifest_len > MAX_MANIFEST_LEN_V2 {
                return Err(HeaderError::ManifestLength(manifest_len));
            }
            return Ok(Some(Self {
                version,
                manifest_len,
                v1: None,
            }));
        }
        let flags = u16_at(10);
        if flags != 0 {
            return Err(HeaderError::UnknownFlags(flags));
        }
        let manifest_len = u32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if manifest_len == 0 || manifest_len > MAX_MANIFEST_LEN_V1 {
            return Err(HeaderError::ManifestLength(manifest_len));
        }
        Ok(Some(Self {
            version,
            manifest_len,
            v1: Some((
                KeyId(bytes[16..24].try_into().expect("8 bytes")),
                Sha256(bytes[24..56].try_into().expect("32 bytes")),
            )),
        }))
    }
}

/// Header length of a (supported) format version.
pub fn header_len(version: u16) -> usize {
    if version == FORMAT_V1 {
        HEADER_LEN_V1
    } else {
        HEADER_LEN_V2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_header_round_trips_and_checks_each_field() {
        let h = Header::v1_for_manifest(b"{}", KeyId([1, 2, 3, 4, 5, 6, 7, 8]));
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN_V1);
        assert_eq!(
            &bytes[..16],
            b"\x89UPK\r\n\x1a\n\x00\x01\x00\x00\x00\x00\x00\x02"
        );
        assert_eq!(Header::parse(&bytes), Ok(Some(h)));
        assert_eq!(Header::parse(&bytes[..20]), Ok(None));
        let mut b = bytes.clone();
        b[1] = b'X';
        assert_eq!(Header::parse(&b), Err(HeaderError::BadMagic));
        assert_eq!(Header::parse(&b[..3]), Err(HeaderError::BadMagic));
        let mut b = bytes.clone();
        b[9] = 3;
        assert_eq!(Header::parse(&b), Err(HeaderError::UnsupportedVersion(3)));
        let mut b = bytes.clone();
        b[11] = 1;
        assert_eq!(Header::parse(&b), Err(HeaderError::UnknownFlags(1)));
        let mut b = bytes;
        b[12..16].copy_from_slice(&(MAX_MANIFEST_LEN_V1 + 1).to_be_bytes());
        assert_eq!(
            Header::parse(&b),
            Err(HeaderError::ManifestLength(MAX_MANIFEST_LEN_V1 + 1))
        );
    }

    #[test]
    fn v2_header_round_trips_and_checks_each_field() {
        let h = Header::v2_for_manifest(&[7; 150]);
        let bytes = h.to_bytes();
        assert_eq!(bytes, b"\x89UPK\r\n\x1a\n\x00\x02\x00\x96");
        assert_eq!(h.envelope_len(), 12 + 150 + 64);
        assert_eq!(Header::parse(&bytes), Ok(Some(h)));
        assert_eq!(Header::parse(&bytes[..11]), Ok(None));
        assert_eq!(Header::parse(&bytes[..5]), Ok(None));
        let mut b = bytes.clone();
        b[10..12].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(Header::parse(&b), Err(HeaderError::ManifestLength(0)));
        let mut b = bytes;
        b[10..12].copy_from_slice(&4097u16.to_be_bytes());
        assert_eq!(Header::parse(&b), Err(HeaderError::ManifestLength(4097)));
    }
}

//! The signed manifest: what a package is for, and its canonical byte encodings.
//!
//! Format version 2 signs the binary encoding of `manifest_bin.rs`. Format version 1
//! signed canonical JSON, still read: compact JSON (no whitespace) with the fields in the fixed order of
//! the structs below, produced by serde_json. Integers are JSON numbers (all below 2^53),
//! digests are 64 lowercase hex characters, absent optional values are `null` (never
//! omitted), times are unix seconds (UTC). Parsing is strict: unknown fields are rejected,
//! and the bytes must equal the re-encoding of what was parsed, so every manifest has
//! exactly one valid byte form (no reordering, spaces, escapes or uppercase hex).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::package::compress::PayloadEncoding;

/// Manifest format version written by this code (the package format version).
pub const MANIFEST_VERSION: u32 = 2;
/// Longest text field (manufacturer, model, versions), in bytes.
pub const MAX_TEXT: usize = 128;
/// Largest size field; keeps every number exact in JSON and every offset in i64.
pub const MAX_SIZE: u64 = 1 << 50;

/// A sha256 digest, written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(data).into())
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(Self(out))
    }
}

/// An image the package produces (target) or starts from (source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    pub version: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// The payload that follows the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadRef {
    pub encoding: PayloadEncoding,
    pub sha256: Sha256,
    pub size: u64,
}

/// What a package is and what it must be applied to. Field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    /// Id of the signing key (see `signing::KeyId`), 16 lowercase hex characters.
    pub key_id: String,
    pub manufacturer: String,
    pub model: String,
    pub target: ImageRef,
    /// The image a delta applies to; `null` for a full-image package.
    pub source: Option<ImageRef>,
    pub payload: PayloadRef,
    /// Creation time, unix seconds UTC.
    pub created_at: i64,
    /// After this unix time (UTC) the package is refused; `null` = never expires.
    pub expires_at: Option<i64>,
    /// Anti-rollback counter: a device refuses packages below the highest it has installed.
    pub security_version: u64,
}

/// Why manifest bytes are not a valid manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("not a manifest: {0}")]
    Syntax(String),
    #[error("manifest is not in canonical form")]
    NotCanonical,
    #[error("invalid manifest field {field}: {why}")]
    Field {
        field: &'static str,
        why: &'static str,
    },
}

impl Manifest {
    /// The signed bytes of this manifest in its own format version: binary for 2,
    /// canonical JSON for 1.
    pub fn to_signed_bytes(&self) -> Vec<u8> {
        if self.format_version == 1 {
            self.to_json()
        } else {
            crate::package::manifest_bin::encode(self)
        }
    }

    /// Compact JSON, the canonical bytes of format version 1 and what the API shows for
    /// every version.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serializes")
    }

    /// Parses the signed bytes of a package of format `version` strictly (one byte form
    /// only) and checks the field rules, including that the manifest's own format version
    /// is the package's.
    pub fn from_signed_bytes(version: u16, bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest = if version == 1 {
            let m: Self =
                serde_json::from_slice(bytes).map_err(|e| ManifestError::Syntax(e.to_string()))?;
            if m.format_version != 1 {
                return Err(ManifestError::Field {
                    field: "format_version",
                    why: "differs from the package's format version",
                });
            }
            m
        } else {
            let m = crate::package::manifest_bin::decode(bytes)?;
            if m.format_version != u32::from(version) {
                return Err(ManifestError::Field {
                    field: "format_version",
                    why: "differs from the package's format version",
                });
            }
            m
        };
        if manifest.to_signed_bytes() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Field rules that serde cannot express.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |field, why| Err(ManifestError::Field { field, why });
        if self.format_version != 1 && self.format_version != 2 {
            return bad("format_version", "unsupported version");
        }
        let is_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if self.key_id.len() != 16 || !is_hex(&self.key_id) {
            return bad("key_id", "must be 16 lowercase hex characters");
        }
        let mut texts = vec![
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("target.version", &self.target.version),
        ];
        if let Some(source) = &self.source {
            texts.push(("source.version", &source.version));
        }
        for (field, text) in texts {
            if text.is_empty() || text.len() > MAX_TEXT || text.chars().any(char::is_control) {
                return bad(field, "must be 1 to 128 bytes without control characters");
            }
        }
        let sizes = [
            Some(self.target.size),
            self.source.as_ref().map(|s| s.size),
            Some(self.payload.size),
        ];
        if sizes.into_iter().flatten().any(|s| s > MAX_SIZE) {
            return bad("size", "too large");
        }
        if self.payload.encoding.is_delta() != self.source.is_some() {
            return bad("source", "must be set exactly when the payload is a delta");
        }
        if let Some(expires) = self.expires_at
            && expires <= self.created_at
        {
            return bad("expires_at", "must be after created_at");
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        Manifest {
            format_version: 1,
            key_id: "0123456789abcdef".into(),
            manufacturer: "Acme".into(),
            model: "X1".into(),
            target: ImageRef {
                version: "1.1.0".into(),
                sha256: Sha256([0x11; 32]),
                size: 4096,
            },
            source: Some(ImageRef {
                version: "1.0.0".into(),
                sha256: Sha256([0x22; 32]),
                size: 4000,
            }),
            payload: PayloadRef {
                encoding: PayloadEncoding::BsdiffSplitXz,
                sha256: Sha256([0xab; 32]),
                size: 321,
            },
            created_at: 1_767_225_600,
            expires_at: None,
            security_version: 7,
        }
    }

    #[test]
    fn canonical_bytes_are_stable() {
        let expected = concat!(
            r#"{"format_version":1,"key_id":"0123456789abcdef","manufacturer":"Acme","model":"X1","#,
            r#""target":{"version":"1.1.0","sha256":"1111111111111111111111111111111111111111111111111111111111111111","size":4096},"#,
            r#""source":{"version":"1.0.0","sha256":"2222222222222222222222222222222222222222222222222222222222222222","size":4000},"#,
            r#""payload":{"encoding":"bsdiff-split+xz","sha256":"abababababababababababababababababababababababababababababababab","size":321},"#,
            r#""created_at":1767225600,"expires_at":null,"security_version":7}"#
        );
        let bytes = sample().to_signed_bytes();
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        assert_eq!(Manifest::from_signed_bytes(1, &bytes).unwrap(), sample());
    }

    #[test]
    fn non_canonical_forms_are_rejected() {
        let text = String::from_utf8(sample().to_signed_bytes()).unwrap();
        let spaced = text.replace(",\"model\"", ", \"model\"");
        assert_eq!(
            Manifest::from_signed_bytes(1, spaced.as_bytes()),
            Err(ManifestError::NotCanonical)
        );
        let upper = text.replace("abab", "ABAB");
        assert_eq!(
            Manifest::from_signed_bytes(1, upper.as_bytes()),
            Err(ManifestError::NotCanonical)
        );
        let missing_null = text.replace(",\"expires_at\":null", "");
        assert_eq!(
            Manifest::from_signed_bytes(1, missing_null.as_bytes()),
            Err(ManifestError::NotCanonical)
        );
        let unknown = text.replace("}", ",\"x\":1}");
        assert!(matches!(
            Manifest::from_signed_bytes(1, unknown.as_bytes()),
            Err(ManifestError::Syntax(_))
        ));
    }

    #[test]
    fn field_rules_are_checked() {
        let mut m = sample();
        m.source = None;
        assert!(matches!(
            m.validate(),
            Err(ManifestError::Field {
                field: "source",
                ..
            })
        ));
        let mut m = sample();
        m.model = "a\nb".into();
        assert!(matches!(
            m.validate(),
            Err(ManifestError::Field { field: "model", .. })
        ));
        let mut m = sample();
        m.expires_at = Some(m.created_at);
        assert!(matches!(
            m.validate(),
            Err(ManifestError::Field {
                field: "expires_at",
                ..
            })
        ));
    }
}

//! Object keys: a portable subset that is safe as a file path and as an S3 key.

use super::BlobError;

/// A validated object key: `/`-separated segments of `[A-Za-z0-9._-]`, none starting
/// with `.`, no leading, trailing or doubled `/`, at most 512 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey(String);

const MAX_KEY_BYTES: usize = 512;

impl BlobKey {
    pub fn new(key: impl Into<String>) -> Result<BlobKey, BlobError> {
        let key = key.into();
        let reason = if key.is_empty() {
            Some("empty")
        } else if key.len() > MAX_KEY_BYTES {
            Some("longer than 512 bytes")
        } else if key
            .split('/')
            .any(|segment| segment.is_empty() || segment.starts_with('.'))
        {
            // Dot-segments would escape or alias paths; `.tmp/` is where uploads are staged.
            Some("empty path segment, or one that starts with `.`")
        } else if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        {
            Some("only A-Z a-z 0-9 . _ - / are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(BlobError::InvalidKey { key, reason }),
            None => Ok(BlobKey(key)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        for key in ["a", "firmware/ab12.bin", "pkg/v1.2.3/delta-from_1.0"] {
            assert_eq!(BlobKey::new(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn rejects_keys_that_escape_or_are_ambiguous() {
        for key in [
            "", "/abs", "a//b", "a/", "../x", "a/./b", ".tmp/x", ".hidden", "a b", "a\\b", "é",
        ] {
            assert!(BlobKey::new(key).is_err(), "{key:?} accepted");
        }
        assert!(BlobKey::new("x".repeat(513)).is_err());
    }
}

//! Size and sha256 of an upload, computed as it streams, with the put's limits enforced.

use sha2::{Digest, Sha256};

use super::{BlobError, PutOptions};

pub(super) struct UploadDigest {
    hasher: Sha256,
    size: u64,
    max_bytes: Option<u64>,
}

impl UploadDigest {
    pub fn new(options: &PutOptions) -> Self {
        UploadDigest {
            hasher: Sha256::new(),
            size: 0,
            max_bytes: options.max_bytes,
        }
    }

    /// Accounts for one chunk; fails as soon as the size limit is crossed.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        if let Some(limit) = self.max_bytes
            && self.size > limit
        {
            return Err(BlobError::TooLarge { limit });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// The final (size, hex sha256), checked against the expected digest if any.
    pub fn finish(self, options: &PutOptions) -> Result<(u64, String), BlobError> {
        let actual = hex::encode(self.hasher.finalize());
        if let Some(expected) = &options.expected_sha256
            && !expected.eq_ignore_ascii_case(&actual)
        {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        Ok((self.size, actual))
    }
}

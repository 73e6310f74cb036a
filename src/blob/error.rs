//! Blob store errors.

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no such object")]
    NotFound,
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("object exceeds the size limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("content sha256 {actual} does not match the expected {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("requested range is outside the object")]
    RangeNotSatisfiable,
    /// The input stream failed (for example a client aborted an upload).
    #[error("reading the upload failed: {0}")]
    Source(std::io::Error),
    #[error("blob storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("blob storage backend error: {0}")]
    Backend(String),
}

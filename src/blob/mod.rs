//! The blob store: firmware images and packages as objects, in a local folder or in S3.
//!
//! One type, [`BlobStore`], two backends. It is the only module that knows
//! aws-sdk-s3. Every write is atomic (an object is visible under its key whole or
//! not at all), streams in and out, and records the object's size and sha256.

mod error;
mod file_stream;
mod hashing;
mod key;
mod local;
mod s3;

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;

use crate::config::{BlobBackendKind, Config};

pub use error::BlobError;
pub use key::BlobKey;
pub use local::LocalBlobs;
pub use s3::S3Blobs;

/// What a head or a put tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: BlobKey,
    pub size: u64,
    /// Lower-case hex sha256 of the content; `None` only for an S3 object written by
    /// something other than Updraft (no metadata).
    pub sha256: Option<String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub key: BlobKey,
    pub size: u64,
}

/// Bounds and expectations checked while an upload streams, before it becomes visible.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Refuse the upload (leaving nothing behind) once it grows past this many bytes.
    pub max_bytes: Option<u64>,
    /// Refuse the upload when its sha256 differs (lower-case hex).
    pub expected_sha256: Option<String>,
}

/// Where a put lands: a fixed key, or `prefix` + the content's sha256 (known only at the end).
#[derive(Debug, Clone, Copy)]
pub enum PutTarget<'a> {
    Key(&'a BlobKey),
    ContentAddressed { prefix: &'a str },
}

impl PutTarget<'_> {
    fn resolve(&self, sha256_hex: &str) -> Result<BlobKey, BlobError> {
        match self {
            PutTarget::Key(key) => Ok((*key).clone()),
            PutTarget::ContentAddressed { prefix } => BlobKey::new(format!("{prefix}{sha256_hex}")),
        }
    }
}

/// A stream of an object's bytes.
pub type BlobStream = BoxStream<'static, Result<Bytes, BlobError>>;

/// An input byte stream for a put, for example an HTTP request body (which is not `Send`:
/// actix serves each connection on one thread, so puts are awaited where they start).
pub trait ByteSource: Stream<Item = Result<Bytes, std::io::Error>> + Unpin {}
impl<T> ByteSource for T where T: Stream<Item = Result<Bytes, std::io::Error>> + Unpin {}

#[derive(Debug, Clone)]
pub enum BlobStore {
    Local(LocalBlobs),
    S3(S3Blobs),
}

impl BlobStore {
    pub async fn from_config(config: &Config) -> Result<BlobStore, BlobError> {
        Ok(match config.blob_backend() {
            BlobBackendKind::Local => {
                BlobStore::Local(LocalBlobs::open(config.local_blob_dir()).await?)
            }
            BlobBackendKind::S3 => BlobStore::S3(S3Blobs::new(&config.blob.s3)?),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            BlobStore::Local(_) => "local",
            BlobStore::S3(_) => "s3",
        }
    }

    /// Streams `body` into the object `key`, replacing any previous one atomically.
    pub async fn put(
        &self,
        key: &BlobKey,
        body: impl ByteSource,
        options: &PutOptions,
    ) -> Result<BlobMeta, BlobError> {
        self.put_to(PutTarget::Key(key), body, options).await
    }

    /// Streams `body` into `prefix` + its own sha256, e.g. `firmware/<sha256>`. Storing the
    /// same bytes twice yields the same key (and the same object).
    pub async fn put_content_addressed(
        &self,
        prefix: &str,
        body: impl ByteSource,
        options: &PutOptions,
    ) -> Result<BlobMeta, BlobError> {
        self.put_to(PutTarget::ContentAddressed { prefix }, body, options)
            .await
    }

    async fn put_to(
        &self,
        target: PutTarget<'_>,
        body: impl ByteSource,
        options: &PutOptions,
    ) -> Result<BlobMeta, BlobError> {
        match self {
            BlobStore::Local(b) => b.put(target, body, options).await,
            BlobStore::S3(b) => b.put(target, body, options).await,
        }
    }

    /// Puts a small in-memory object.
    pub async fn put_bytes(&self, key: &BlobKey, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]);
        self.put(key, body, &PutOptions::default()).await
    }

    /// The whole object as a stream, with its metadata.
    pub async fn get(&self, key: &BlobKey) -> Result<(BlobMeta, BlobStream), BlobError> {
        match self {
            BlobStore::Local(b) => b.get(key).await,
            BlobStore::S3(b) => b.get(key).await,
        }
    }

    /// Bytes `range` of the object (end exclusive, clamped to the object's size).
    /// An empty or out-of-bounds range is `RangeNotSatisfiable`.
    pub async fn get_range(
        &self,
        key: &BlobKey,
        range: Range<u64>,
    ) -> Result<BlobStream, BlobError> {
        if range.start >= range.end {
            return Err(BlobError::RangeNotSatisfiable);
        }
        match self {
            BlobStore::Local(b) => b.get_range(key, range).await,
            BlobStore::S3(b) => b.get_range(key, range).await,
        }
    }

    /// Bytes `range` of the object for serving a download: like [`get_range`](Self::get_range),
    /// but a local object is read `chunk` bytes at a time with positional reads, one
    /// chunk ahead (see `file_stream.rs`); S3 streams its own response body.
    pub async fn stream_range(
        &self,
        key: &BlobKey,
        range: Range<u64>,
        chunk: usize,
    ) -> Result<BlobStream, BlobError> {
        if range.start >= range.end {
            return Err(BlobError::RangeNotSatisfiable);
        }
        match self {
            BlobStore::Local(b) => b.stream_range(key, range, chunk).await,
            BlobStore::S3(b) => b.get_range(key, range).await,
        }
    }

    /// A URL that lets its holder GET the object directly for `ttl`, without our
    /// credentials: an S3 presigned request. `None` for the local backend.
    pub async fn presigned_get(
        &self,
        key: &BlobKey,
        ttl: Duration,
    ) -> Result<Option<String>, BlobError> {
        match self {
            BlobStore::Local(_) => Ok(None),
            BlobStore::S3(b) => b.presigned_get(key, ttl).await.map(Some),
        }
    }

    pub async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        match self {
            BlobStore::Local(b) => b.head(key).await,
            BlobStore::S3(b) => b.head(key).await,
        }
    }

    /// Removes the object; removing a missing object is not an error.
    pub async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self {
            BlobStore::Local(b) => b.delete(key).await,
            BlobStore::S3(b) => b.delete(key).await,
        }
    }

    /// Every object whose key starts with `prefix`, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, BlobError> {
        match self {
            BlobStore::Local(b) => b.list(prefix).await,
            BlobStore::S3(b) => b.list(prefix).await,
        }
    }

    /// Reachability, for `/readyz`.
    pub async fn check(&self) -> Result<(), BlobError> {
        match self {
            BlobStore::Local(b) => b.check().await,
            BlobStore::S3(b) => b.check().await,
        }
    }
}

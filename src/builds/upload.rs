//! Intake of packages signed offline: a stream adapter that verifies a package while it
//! uploads, so that a refused package never reaches the blob store.
//!
//! It checks what can be checked without the images: header, manifest digest, signature
//! against the registered keys, manifest rules and expiry, then the payload's size and
//! sha256 as it streams. The first failure ends the upload with its precise
//! [`PackageError`], and the blob store's atomic put leaves nothing behind.

use std::cell::RefCell;
use std::io::Cursor;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use sha2::Digest;

use crate::package::format::{HEADER_LEN, Header};
use crate::package::signing::SIGNATURE_LEN;
use crate::package::{KeyRing, Manifest, PackageError, Policy, Sha256, read_manifest};
use crate::store::{NewPackage, PackageOrigin};

/// Blob-key prefix of packages: `packages/<sha256>`.
pub const PACKAGE_PREFIX: &str = "packages/";

/// The verifier's state, shared between the stream and the caller (who reads the outcome).
pub struct PackageCheck {
    keys: KeyRing,
    now: i64,
    head: Vec<u8>,
    head_len: Option<usize>,
    manifest: Option<Manifest>,
    payload_len: u64,
    hasher: sha2::Sha256,
    error: Option<PackageError>,
}

impl PackageCheck {
    pub fn new(keys: KeyRing, now: i64) -> Self {
        PackageCheck {
            keys,
            now,
            head: Vec::new(),
            head_len: None,
            manifest: None,
            payload_len: 0,
            hasher: sha2::Sha256::new(),
            error: None,
        }
    }

    /// Why the package was refused, if it was.
    pub fn take_error(&mut self) -> Option<PackageError> {
        self.error.take()
    }

    /// The verified manifest, once the whole package passed.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref().filter(|_| self.error.is_none())
    }

    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), PackageError> {
        if self.manifest.is_none() {
            if self.head_len.is_none() {
                let want = HEADER_LEN - self.head.len().min(HEADER_LEN);
                let take = want.min(chunk.len());
                self.head.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                if self.head.len() < HEADER_LEN {
                    return Ok(());
                }
                let bytes: &[u8; HEADER_LEN] = self.head[..HEADER_LEN].try_into().expect("header");
                let header = Header::parse(bytes)?;
                self.head_len = Some(HEADER_LEN + header.manifest_len as usize + SIGNATURE_LEN);
            }
            let need = self.head_len.expect("set above");
            let take = (need - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.head.len() < need {
                return Ok(());
            }
            let policy = Policy::new(&self.keys, self.now);
            self.manifest = Some(read_manifest(&mut Cursor::new(&self.head), &policy)?);
        }
        let manifest = self.manifest.as_ref().expect("set above");
        self.payload_len += chunk.len() as u64;
        if self.payload_len > manifest.payload.size {
            return Err(PackageError::TrailingData);
        }
        self.hasher.update(chunk);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), PackageError> {
        let Some(manifest) = &self.manifest else {
            // What is there is incomplete: the reader names the part that is missing.
            let policy = Policy::new(&self.keys, self.now);
            read_manifest(&mut Cursor::new(&self.head), &policy)?;
            return Err(PackageError::Truncated("manifest"));
        };
        if self.payload_len < manifest.payload.size {
            return Err(PackageError::Truncated("payload"));
        }
        let digest = Sha256(std::mem::take(&mut self.hasher).finalize().into());
        if digest != manifest.payload.sha256 {
            return Err(PackageError::TamperedPayload);
        }
        Ok(())
    }
}

/// Passes `inner` through while `check` verifies it; ends with an error at the first
/// failure (the reason is left in `check`).
pub struct CheckedStream<S> {
    inner: S,
    check: Rc<RefCell<PackageCheck>>,
    done: bool,
}

impl<S> CheckedStream<S> {
    pub fn new(inner: S, check: Rc<RefCell<PackageCheck>>) -> Self {
        CheckedStream {
            inner,
            check,
            done: false,
        }
    }

    fn refuse(&mut self, err: PackageError) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let message = err.to_string();
        self.check.borrow_mut().error = Some(err);
        self.done = true;
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            message,
        ))))
    }
}

impl<S> Stream for CheckedStream<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let fed = self.check.borrow_mut().feed(&chunk);
                match fed {
                    Ok(()) => Poll::Ready(Some(Ok(chunk))),
                    Err(err) => self.refuse(err),
                }
            }
            Poll::Ready(Some(Err(err))) => {
                self.done = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                let finished = self.check.borrow_mut().finish();
                match finished {
                    Ok(()) => {
                        self.done = true;
                        Poll::Ready(None)
                    }
                    Err(err) => self.refuse(err),
                }
            }
        }
    }
}

/// The record of a package from its trusted manifest.
pub fn new_package(
    manifest: &Manifest,
    origin: PackageOrigin,
    target_firmware_id: Option<i64>,
    source_firmware_id: Option<i64>,
    blob_key: String,
    size: u64,
    sha256: String,
) -> NewPackage {
    let (kind, encoding) = super::describe(manifest);
    NewPackage {
        kind,
        origin,
        target_firmware_id,
        source_firmware_id,
        manufacturer: manifest.manufacturer.clone(),
        model: manifest.model.clone(),
        target_version: manifest.target.version.clone(),
        target_sha256: manifest.target.sha256.to_string(),
        source_version: manifest.source.as_ref().map(|s| s.version.clone()),
        source_sha256: manifest.source.as_ref().map(|s| s.sha256.to_string()),
        encoding,
        manifest: String::from_utf8(manifest.to_canonical_bytes()).expect("JSON is UTF-8"),
        blob_key,
        size,
        sha256,
        key_id: manifest.key_id.clone(),
    }
}

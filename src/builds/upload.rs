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

use crate::package::format::Header;
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
            while self.head_len.is_none() {
                // One byte at a time until the header is whole: it is at most 56 bytes.
                let Some((&byte, rest)) = chunk.split_first() else {
                    return Ok(());
                };
                self.head.push(byte);
                chunk = rest;
                if let Some(header) = Header::parse(&self.head)? {
                    self.head_len = Some(header.envelope_len());
                }
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
        manifest: String::from_utf8(manifest.to_json()).expect("JSON is UTF-8"),
        blob_key,
        size,
        sha256,
        key_id: manifest.key_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::SecretKey;

    fn check(bytes: &[u8], piece: usize) -> Result<Manifest, PackageError> {
        let keys = KeyRing::new([SecretKey::from_seed([42; 32]).public()]);
        let mut check = PackageCheck::new(keys, 1_767_225_600);
        for chunk in bytes.chunks(piece) {
            check.feed(chunk)?;
        }
        check.finish()?;
        Ok(check.manifest().expect("checked").clone())
    }

    #[test]
    fn uploads_of_both_formats_are_checked_whatever_the_chunking() {
        let v1 = hex::decode(include_str!("../package/testdata/tiny_package_v1.hex").trim())
            .expect("hex");
        let v2 =
            hex::decode(include_str!("../package/testdata/tiny_package.hex").trim()).expect("hex");
        for piece in [1, 7, 13, 4096] {
            assert_eq!(check(&v1, piece).unwrap().format_version, 1);
            assert_eq!(check(&v2, piece).unwrap().format_version, 2);
            let mut bad = v2.clone();
            bad[30] ^= 1; // the model, after the key id
            assert!(matches!(
                check(&bad, piece),
                Err(PackageError::BadSignature)
            ));
            assert!(matches!(
                check(&v2[..30], piece),
                Err(PackageError::Truncated("manifest"))
            ));
        }
    }
}

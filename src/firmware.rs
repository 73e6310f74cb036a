//! Firmware intake: streams an image into the content-addressed blob store and records it.
//!
//! The image is never held in memory: it streams into `firmware/<sha256>` with the size
//! limit and the optional expected digest checked on the way, and becomes visible only
//! when complete. (manufacturer, model, version) is unique: the same bytes again are the
//! same firmware (idempotent), other bytes are a conflict. A refused or interrupted
//! upload leaves neither a row nor a blob behind.

use chrono::Utc;

use crate::blob::{BlobError, BlobKey, BlobStore, ByteSource, PutOptions};
use crate::store::{Firmware, NewFirmware, Store, StoreError};

/// Blob-key prefix of firmware images.
pub const FIRMWARE_PREFIX: &str = "firmware/";
/// Longest manufacturer, model or version (they go into signed manifests).
const MAX_TEXT: usize = 128;
const MAX_HARDWARE: usize = 1024;
const MAX_NOTES: usize = 64 * 1024;

/// What the uploader says about the image.
#[derive(Debug, Clone)]
pub struct FirmwareMeta {
    pub manufacturer: String,
    pub model: String,
    pub version: String,
    pub hardware: Option<String>,
    pub notes: Option<String>,
    /// Anti-rollback security version (0 by default).
    pub security_version: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check_text(field: &str, value: &str, max: usize, single_line: bool) -> Result<(), IntakeError> {
    let bad_char = |c: char| c.is_control() && (single_line || !matches!(c, '\n' | '\r' | '\t'));
    if value.is_empty() || value.len() > max || value.chars().any(bad_char) {
        return Err(IntakeError::Invalid(format!(
            "{field} must be 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

impl FirmwareMeta {
    pub fn validate(&self) -> Result<(), IntakeError> {
        check_text("manufacturer", &self.manufacturer, MAX_TEXT, true)?;
        check_text("model", &self.model, MAX_TEXT, true)?;
        check_text("version", &self.version, MAX_TEXT, true)?;
        if let Some(h) = &self.hardware {
            check_text("hardware", h, MAX_HARDWARE, true)?;
        }
        if let Some(n) = &self.notes {
            check_text("notes", n, MAX_NOTES, false)?;
        }
        Ok(())
    }
}

/// Parses an `x-checksum-sha256` value: 64 hex characters.
pub fn parse_sha256(text: &str) -> Result<String, IntakeError> {
    let text = text.trim().to_ascii_lowercase();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IntakeError::Invalid(
            "x-checksum-sha256 must be 64 hex characters".into(),
        ));
    }
    Ok(text)
}

/// Streams `body` in and records it. `Ok((firmware, true))` when it is new,
/// `Ok((existing, false))` when the same image was already stored under this identity.
pub async fn intake(
    store: &Store,
    blobs: &BlobStore,
    meta: FirmwareMeta,
    body: impl ByteSource,
    expected_sha256: Option<String>,
    max_bytes: u64,
) -> Result<(Firmware, bool), IntakeError> {
    meta.validate()?;
    let existing = store
        .firmware()
        .find(&meta.manufacturer, &meta.model, &meta.version)
        .await?;
    if let (Some(existing), Some(expected)) = (&existing, &expected_sha256)
        && &existing.sha256 != expected
    {
        return Err(conflict(existing));
    }
    let stored = blobs
        .put_content_addressed(
            FIRMWARE_PREFIX,
            body,
            &PutOptions {
                max_bytes: Some(max_bytes),
                expected_sha256,
            },
        )
        .await?;
    let sha256 = stored.sha256.clone().unwrap_or_default();
    if stored.size == 0 {
        forget_blob(store, blobs, &stored.key, &sha256).await;
        return Err(IntakeError::Invalid("the image is empty".into()));
    }
    if let Some(existing) = existing {
        return same_or_conflict(store, blobs, existing, &stored.key, &sha256).await;
    }
    let new = NewFirmware {
        manufacturer: meta.manufacturer.clone(),
        model: meta.model.clone(),
        version: meta.version.clone(),
        hardware: meta.hardware,
        notes: meta.notes,
        sha256: sha256.clone(),
        size: stored.size,
        blob_key: stored.key.as_str().to_owned(),
        security_version: meta.security_version,
    };
    match store.firmware().insert(new, Utc::now()).await {
        Ok(firmware) => Ok((firmware, true)),
        // Someone registered this identity while we streamed.
        Err(StoreError::Conflict(_)) => {
            let existing = store
                .firmware()
                .find(&meta.manufacturer, &meta.model, &meta.version)
                .await?
                .ok_or(StoreError::NotFound)?;
            same_or_conflict(store, blobs, existing, &stored.key, &sha256).await
        }
        Err(err) => {
            forget_blob(store, blobs, &stored.key, &sha256).await;
            Err(err.into())
        }
    }
}

fn conflict(existing: &Firmware) -> IntakeError {
    IntakeError::Conflict(format!(
        "{} {} version {} exists (firmware {}) with other content (sha256 {})",
        existing.manufacturer, existing.model, existing.version, existing.id, existing.sha256
    ))
}

async fn same_or_conflict(
    store: &Store,
    blobs: &BlobStore,
    existing: Firmware,
    key: &BlobKey,
    sha256: &str,
) -> Result<(Firmware, bool), IntakeError> {
    if existing.sha256 == sha256 {
        return Ok((existing, false));
    }
    forget_blob(store, blobs, key, sha256).await;
    Err(conflict(&existing))
}

/// Removes a just-stored image unless some firmware row uses the same bytes.
async fn forget_blob(store: &Store, blobs: &BlobStore, key: &BlobKey, sha256: &str) {
    match store.firmware().count_by_sha256(sha256).await {
        Ok(0) => {
            if let Err(err) = blobs.delete(key).await {
                tracing::warn!(blob.key = key.as_str(), error = %err, "cannot remove a refused image");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot tell whether an image is in use"),
    }
}

/// Deletes a firmware unless a package or build job refers to it; its blob goes too when
/// no other firmware has the same bytes.
pub async fn delete(store: &Store, blobs: &BlobStore, id: i64) -> Result<Firmware, StoreError> {
    let deleted = store.firmware().delete(id).await?;
    if !deleted.blob_still_used {
        match BlobKey::new(deleted.firmware.blob_key.clone()) {
            Ok(key) => {
                if let Err(err) = blobs.delete(&key).await {
                    tracing::warn!(blob.key = key.as_str(), error = %err, "cannot remove a deleted image");
                }
            }
            Err(err) => tracing::warn!(error = %err, "firmware row has an invalid blob key"),
        }
    }
    Ok(deleted.firmware)
}

//! The S3 backend (AWS or any S3-protocol server), through aws-sdk-s3.
//!
//! Small objects go up in one PutObject with their sha256 as user metadata. Larger
//! ones stream as a multipart upload to a temporary key (parts are invisible until
//! completed), then a server-side copy publishes them under the final key with the
//! sha256 that is only known at the end; a failure aborts the upload, so nothing
//! half-written is ever visible under a real key.

use std::ops::Range;

use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use super::hashing::UploadDigest;
use super::{
    BlobEntry, BlobError, BlobKey, BlobMeta, BlobStream, ByteSource, PutOptions, PutTarget,
};
use crate::config::S3Config;

/// User-metadata name under which the content sha256 is stored (`x-amz-meta-sha256`).
const SHA256_METADATA: &str = "sha256";
/// A single CopyObject handles at most 5 GiB.
const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl S3Blobs {
    pub fn new(config: &S3Config) -> Result<S3Blobs, BlobError> {
        let bucket = config
            .bucket
            .clone()
            .ok_or_else(|| BlobError::Backend("no S3 bucket configured".into()))?;
        // Static keys from our config, else the standard AWS variables.
        let access_key = config
            .access_key_id
            .clone()
            .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
        let secret_key = config
            .secret_access_key
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok());
        let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
            return Err(BlobError::Backend(
                "S3 credentials missing: set UPDRAFT_S3_ACCESS_KEY_ID and UPDRAFT_S3_SECRET_ACCESS_KEY"
                    .into(),
            ));
        };
        let credentials = Credentials::new(
            access_key,
            secret_key,
            std::env::var("AWS_SESSION_TOKEN").ok(),
            None,
            "updraft-config",
        );
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .http_client(http_client)
            .force_path_style(config.path_style)
            // The SDK's default trailing CRC checksums are not understood by every
            // S3-protocol server; we carry our own sha256 end to end instead.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Blobs {
            client: Client::from_conf(builder.build()),
            bucket,
            prefix: config.prefix.clone(),
            part_size: config.part_size_bytes,
        })
    }

    fn object_key(&self, key: &BlobKey) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    pub async fn put(
        &self,
        target: PutTarget<'_>,
        mut body: impl ByteSource,
        options: &PutOptions,
    ) -> Result<BlobMeta, BlobError> {
        let mut digest = UploadDigest::new(options);
        let mut buffer = BytesMut::with_capacity(self.part_size.min(1024 * 1024));
        // Read up to one part: if the stream ends first, a single PutObject does it.
        while buffer.len() < self.part_size {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(BlobError::Source)?;
                    digest.update(&chunk)?;
                    buffer.extend_from_slice(&chunk);
                }
                None => {
                    let (size, sha256) = digest.finish(options)?;
                    let key = &target.resolve(&sha256)?;
                    self.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(self.object_key(key))
                        .metadata(SHA256_METADATA, &sha256)
                        .body(ByteStream::from(buffer.freeze()))
                        .send()
                        .await
                        .map_err(backend)?;
                    return Ok(BlobMeta {
                        key: key.clone(),
                        size,
                        sha256: Some(sha256),
                    });
                }
            }
        }

        let staging = format!("{}.tmp/{}", self.prefix, uuid::Uuid::new_v4());
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&staging)
            .send()
            .await
            .map_err(backend)?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| BlobError::Backend("S3 returned no upload id".into()))?
            .to_owned();

        let result = self
            .stream_parts(&staging, &upload_id, buffer, &mut body, &mut digest)
            .await;
        let parts = match result {
            Ok(parts) => parts,
            Err(err) => {
                self.abort(&staging, &upload_id).await;
                return Err(err);
            }
        };
        let (size, sha256) = match digest.finish(options) {
            Ok(done) => done,
            Err(err) => {
                self.abort(&staging, &upload_id).await;
                return Err(err);
            }
        };
        if size > MAX_COPY_BYTES {
            self.abort(&staging, &upload_id).await;
            return Err(BlobError::TooLarge {
                limit: MAX_COPY_BYTES,
            });
        }
        let key = &match target.resolve(&sha256) {
            Ok(key) => key,
            Err(err) => {
                self.abort(&staging, &upload_id).await;
                return Err(err);
            }
        };
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&staging)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(backend)?;

        let published = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(format!("{}/{}", self.bucket, staging))
            .key(self.object_key(key))
            .metadata_directive(MetadataDirective::Replace)
            .metadata(SHA256_METADATA, &sha256)
            .send()
            .await
            .map_err(backend);
        let _ = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&staging)
            .send()
            .await;
        published?;
        Ok(BlobMeta {
            key: key.clone(),
            size,
            sha256: Some(sha256),
        })
    }

    /// Uploads `first` and then the rest of `body` as parts of `part_size` bytes.
    async fn stream_parts(
        &self,
        staging: &str,
        upload_id: &str,
        first: BytesMut,
        body: &mut impl ByteSource,
        digest: &mut UploadDigest,
    ) -> Result<Vec<CompletedPart>, BlobError> {
        let mut parts = Vec::new();
        let mut buffer = first;
        let mut finished = false;
        while !finished || !buffer.is_empty() {
            while !finished && buffer.len() < self.part_size {
                match body.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(BlobError::Source)?;
                        digest.update(&chunk)?;
                        buffer.extend_from_slice(&chunk);
                    }
                    None => finished = true,
                }
            }
            if buffer.is_empty() {
                break;
            }
            let take = buffer.len().min(self.part_size);
            let part: Bytes = buffer.split_to(take).freeze();
            let number = i32::try_from(parts.len() + 1)
                .map_err(|_| BlobError::Backend("too many parts".into()))?;
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(staging)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(backend)?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(uploaded.e_tag().map(str::to_owned))
                    .build(),
            );
        }
        Ok(parts)
    }

    async fn abort(&self, staging: &str, upload_id: &str) {
        if let Err(err) = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(staging)
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(s3.key = staging, error = %backend(err), "could not abort a multipart upload; a bucket lifecycle rule will have to reclaim it");
        }
    }

    pub async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(backend)?;
        Ok(BlobMeta {
            key: key.clone(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            sha256: out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned(),
        })
    }

    pub async fn get(&self, key: &BlobKey) -> Result<(BlobMeta, BlobStream), BlobError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(backend)?;
        let meta = BlobMeta {
            key: key.clone(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            sha256: out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned(),
        };
        Ok((meta, body_stream(out.body)))
    }

    pub async fn presigned_get(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
    ) -> Result<String, BlobError> {
        let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| BlobError::Backend(format!("presigning: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .presigned(presigning)
            .await
            .map_err(backend)?;
        Ok(request.uri().to_owned())
    }

    pub async fn get_range(
        &self,
        key: &BlobKey,
        range: Range<u64>,
    ) -> Result<BlobStream, BlobError> {
        // HTTP ranges are inclusive at both ends.
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(backend)?;
        Ok(body_stream(out.body))
    }

    pub async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, BlobError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{}", self.prefix, prefix))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(backend)?;
            for object in page.contents() {
                let Some(full) = object.key() else { continue };
                let Some(relative) = full.strip_prefix(&self.prefix) else {
                    continue;
                };
                // Staging objects of in-flight uploads are not objects of ours yet.
                if let Ok(key) = BlobKey::new(relative) {
                    found.push(BlobEntry {
                        key,
                        size: object.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    pub async fn check(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

fn body_stream(mut body: ByteStream) -> BlobStream {
    futures_util::stream::poll_fn(move |cx| {
        std::pin::Pin::new(&mut body)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(|e| BlobError::Backend(e.to_string()))))
    })
    .boxed()
}

/// Maps an SDK error to ours, keeping "not found" and "bad range" distinct.
fn backend<E>(err: SdkError<E, HttpResponse>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // HeadObject answers 404 with no error body, so the status is the only clue.
    match err.raw_response().map(|r| r.status().as_u16()) {
        Some(404) => return BlobError::NotFound,
        Some(416) => return BlobError::RangeNotSatisfiable,
        _ => {}
    }
    let status = err
        .raw_response()
        .map(|r| format!(" (HTTP {})", r.status().as_u16()))
        .unwrap_or_default();
    let detail = format!("{}{status}", aws_sdk_s3::error::DisplayErrorContext(&err));
    BlobError::Backend(detail)
}

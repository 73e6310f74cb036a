//! Device-facing downloads: minting signed links, checking them, streaming the package
//! with per-job byte accounting, S3 redirects and OMA Download descriptors.
//!
//! A link is `<public_url>/dl/<token>`; the token (see [`token`]) carries the job key,
//! the package id and the expiry under the server's HMAC key, so any replica that
//! shares the key serves it without a database read for the check. The HTTP edge
//! (`src/http/downloads.rs`) only maps headers and statuses around this module.
//!
//! This is the API the update-job code calls: [`Downloads::mint`] for the URL it puts
//! in `PkgURL` (or [`DownloadLink::descriptor_url`] for the OMA Download flow), and
//! `store.downloads().get(job_key)` for the bytes served and the install status.

pub mod descriptor;
pub mod key_file;
pub mod range;
pub mod token;

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures_util::Stream;
use secrecy::ExposeSecret;

use crate::blob::{BlobError, BlobKey, BlobStore, BlobStream};
use crate::config::{Config, DownloadsConfig};
use crate::store::{PackageRecord, Store, StoreError};

use self::descriptor::{BadStatusLine, Descriptor, InstallStatus};
use self::token::{Grant, GrantError, TokenError, TokenKey};

/// A minted link. The token is a credential: hand it to the device, never to a log.
#[derive(Debug, Clone)]
pub struct DownloadLink {
    pub job_key: String,
    pub token: String,
    /// The package itself (`PkgURL` in URL mode).
    pub url: String,
    /// The OMA Download descriptor pointing at `url` (`PkgURL` for DD-capable devices).
    pub descriptor_url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error("a link lives between 1 and {max} seconds")]
    BadTtl { max: u64 },
}

/// Why a download request is refused or fails.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Malformed, forged or altered: 403.
    #[error("this download link is not valid")]
    Forbidden,
    /// Genuine but expired: 410.
    #[error("this download link expired at {0}")]
    Expired(DateTime<Utc>),
    /// The token names a package that is no longer stored: 410 as well.
    #[error("package {0} is no longer available")]
    PackageGone(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    KeyFile(#[from] key_file::KeyFileError),
    #[error(transparent)]
    Key(#[from] token::KeyTooShort),
}

/// A checked token and the package it grants.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub grant: Grant,
    pub package: PackageRecord,
    pub blob_key: BlobKey,
}

impl Authorized {
    /// The strong entity tag of the package file: its sha256.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.package.sha256)
    }
}

/// The download service; cheap to clone.
#[derive(Clone)]
pub struct Downloads {
    inner: Arc<Inner>,
}

struct Inner {
    key: TokenKey,
    base_url: String,
    settings: DownloadsConfig,
    store: Store,
    blobs: BlobStore,
}

impl Downloads {
    /// Takes the configured token key, or the one generated into the data folder.
    /// `config.public_url()` must already be the address devices reach.
    pub fn new(config: &Config, store: Store, blobs: BlobStore) -> Result<Downloads, SetupError> {
        let secret = match &config.downloads.token_key {
            Some(key) => key.expose_secret().as_bytes().to_vec(),
            None => {
                if config.database_url.is_some() && store.backend_name() == "postgres" {
                    tracing::warn!(
                        "no downloads.token_key is configured: this replica signs download \
                         links with a key of its own data folder, which other replicas will \
                         refuse; give every replica the same UPDRAFT_DOWNLOAD_TOKEN_KEY"
                    );
                }
                key_file::load_or_generate(&config.data_dir)?
            }
        };
        Ok(Downloads {
            inner: Arc::new(Inner {
                key: TokenKey::new(&secret)?,
                base_url: config.public_url(),
                settings: config.downloads.clone(),
                store,
                blobs,
            }),
        })
    }

    pub fn settings(&self) -> &DownloadsConfig {
        &self.inner.settings
    }

    /// Signs a link to `package_id` for `job_key`, valid for `ttl` (the configured
    /// default when `None`). The caller has checked that the package exists.
    /// The longest lifetime a link may be minted with, in milliseconds.
    pub fn max_link_ttl_ms(&self) -> u64 {
        self.inner.settings.max_link_ttl_secs.saturating_mul(1000)
    }

    pub fn mint(
        &self,
        job_key: &str,
        package_id: i64,
        ttl: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Result<DownloadLink, MintError> {
        let settings = &self.inner.settings;
        let ttl = ttl.map_or(settings.link_ttl_secs, |d| d.as_secs());
        if ttl == 0 || ttl > settings.max_link_ttl_secs {
            return Err(MintError::BadTtl {
                max: settings.max_link_ttl_secs,
            });
        }
        let expires_at = now.timestamp() + ttl as i64;
        let grant = Grant {
            job_key: job_key.to_owned(),
            package_id,
            expires_at,
        };
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the OS has randomness");
        let token = token::issue(&self.inner.key, &grant, nonce)?;
        Ok(DownloadLink {
            job_key: grant.job_key,
            url: self.url(&token, ""),
            descriptor_url: self.url(&token, "/dd"),
            token,
            expires_at: Utc
                .timestamp_opt(expires_at, 0)
                .single()
                .expect("a bounded ttl stays in range"),
        })
    }

    fn url(&self, token: &str, suffix: &str) -> String {
        format!("{}/dl/{token}{suffix}", self.inner.base_url)
    }

    /// Checks the token (no database read), then loads the package it names.
    pub async fn authorize(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Authorized, DownloadError> {
        let grant = match token::verify(&self.inner.key, token, now.timestamp()) {
            Ok(grant) => grant,
            Err(TokenError::Expired { expires_at }) => {
                return Err(DownloadError::Expired(
                    Utc.timestamp_opt(expires_at, 0).single().unwrap_or(now),
                ));
            }
            Err(TokenError::Malformed | TokenError::BadSignature) => {
                return Err(DownloadError::Forbidden);
            }
        };
        self.load(grant).await
    }

    async fn load(&self, grant: Grant) -> Result<Authorized, DownloadError> {
        let package = self
            .inner
            .store
            .packages()
            .get(grant.package_id)
            .await?
            .ok_or(DownloadError::PackageGone(grant.package_id))?;
        let blob_key = BlobKey::new(package.blob_key.clone())?;
        Ok(Authorized {
            grant,
            package,
            blob_key,
        })
    }

    /// The package bytes `range` (end exclusive), counted to the job key: when the body
    /// is dropped (finished or cut off) its byte count is added in one write.
    pub async fn body(
        &self,
        auth: &Authorized,
        range: Range<u64>,
    ) -> Result<CountedBody, DownloadError> {
        let inner = self
            .inner
            .blobs
            .stream_range(&auth.blob_key, range, self.inner.settings.chunk_bytes)
            .await?;
        Ok(CountedBody {
            inner,
            sent: 0,
            job_key: auth.grant.job_key.clone(),
            package_id: auth.package.id,
            store: self.inner.store.clone(),
        })
    }

    /// With `downloads.redirect_to_s3`, a presigned S3 URL to send the device to.
    pub async fn redirect(&self, auth: &Authorized) -> Result<Option<String>, DownloadError> {
        if !self.inner.settings.redirect_to_s3 {
            return Ok(None);
        }
        let ttl = Duration::from_secs(self.inner.settings.presign_ttl_secs);
        Ok(self.inner.blobs.presigned_get(&auth.blob_key, ttl).await?)
    }

    /// The OMA Download descriptor of the package behind `token`.
    pub fn descriptor(&self, auth: &Authorized, token: &str) -> Vec<u8> {
        let package = &auth.package;
        let name = format!("{} {}", package.model, package.target_version);
        let description = match &package.source_version {
            Some(source) => format!("firmware {} from {source}", package.target_version),
            None => format!("firmware {}", package.target_version),
        };
        descriptor::render(&Descriptor {
            object_uri: &self.url(token, ""),
            install_notify_uri: &self.url(token, "/notify"),
            size: package.size,
            name: &name,
            vendor: &package.manufacturer,
            description: &description,
        })
    }

    /// Records a device's install notification against the token's job key. Only the
    /// signature is checked: a device reports after its download, possibly after the
    /// link expired, and the report stays worth keeping.
    pub async fn record_install(
        &self,
        token: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(Grant, InstallStatus), InstallError> {
        let grant =
            token::verify_signature(&self.inner.key, token).map_err(|_| InstallError::Forbidden)?;
        let status = descriptor::parse_status(body)?;
        self.inner
            .store
            .downloads()
            .record_install(
                &grant.job_key,
                grant.package_id,
                status.code,
                &status.message,
                now,
            )
            .await?;
        Ok((grant, status))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("this download link is not valid")]
    Forbidden,
    #[error(transparent)]
    BadStatus(#[from] BadStatusLine),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A package body that counts the bytes it hands out and accounts them once, on drop.
pub struct CountedBody {
    inner: BlobStream,
    sent: u64,
    job_key: String,
    package_id: i64,
    store: Store,
}

impl Stream for CountedBody {
    type Item = Result<Bytes, BlobError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &polled {
            self.sent += bytes.len() as u64;
        }
        polled
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if self.sent == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                job.key = %self.job_key,
                size_bytes = self.sent,
                "no runtime to account served bytes"
            );
            return;
        };
        let (store, job_key, package_id, sent) = (
            self.store.clone(),
            std::mem::take(&mut self.job_key),
            self.package_id,
            self.sent,
        );
        runtime.spawn(async move {
            if let Err(err) = store
                .downloads()
                .add_served(&job_key, package_id, sent, Utc::now())
                .await
            {
                tracing::warn!(job.key = %job_key, size_bytes = sent, error = %err, "accounting served bytes failed");
            }
        });
    }
}

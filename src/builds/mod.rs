//! The package build worker: claims jobs from the durable queue, builds and signs packages
//! on blocking threads, stores them, and publishes them atomically.
//!
//! A job is (target image, optional source image, format). A job without a source builds
//! the full-image package; a job with one builds the delta and keeps it only when it is
//! smaller than `builds.delta_max_ratio` of the full package. The package bytes go to the
//! blob store first (content-addressed, invisible to the API), then one store transaction
//! records the packages and marks the job succeeded while checking the lease is still held.
//! A crash before that commit leaves at most an unreferenced blob; the job's lease expires
//! and another worker (or this one after a restart) builds it again.

pub mod upload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use crate::blob::{BlobKey, BlobStore, PutOptions};
use crate::config::BuildsConfig;
use crate::keys::{self, KeyFolder, KeysError};
use crate::package::{
    self, BuildPolicy, Manifest, PayloadEncoding, Progress, Release, Sha256, Step,
    delta::DeltaError,
};
use crate::store::{
    BuildJob, Firmware, JobResult, NewPackage, PackageKind, PackageOrigin, Store, StoreError,
};

/// Formats a build may ask for: the full and delta encodings they stand for.
pub const FORMATS: &[&str] = &["xz", "zstd"];

/// The (full, delta) payload encodings of a format name.
pub fn format_encodings(format: &str) -> Option<(PayloadEncoding, PayloadEncoding)> {
    match format {
        "xz" => Some((PayloadEncoding::FullXz, PayloadEncoding::BsdiffSplitXz)),
        "zstd" => Some((PayloadEncoding::FullZstd, PayloadEncoding::BsdiffSplitZstd)),
        _ => None,
    }
}

/// How often progress is written to the job row (and the lease renewed).
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Why an attempt failed: worth retrying, or not.
#[derive(Debug)]
enum Failure {
    /// Retrying cannot help (missing firmware, no signing key, bad input).
    Permanent(String),
    /// Storage or database trouble, or a crash of the builder: try again later.
    Retry(String),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Failure::Retry(err.to_string())
    }
}

/// One process's build worker. Cheap to clone; clones share the concurrency limit.
#[derive(Debug, Clone)]
pub struct BuildWorker {
    store: Store,
    blobs: BlobStore,
    keys: KeyFolder,
    settings: BuildsConfig,
    owner: String,
    permits: Arc<Semaphore>,
}

impl BuildWorker {
    pub fn new(store: Store, blobs: BlobStore, keys: KeyFolder, settings: BuildsConfig) -> Self {
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        BuildWorker {
            store,
            blobs,
            keys,
            settings,
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            permits,
        }
    }

    /// The name this worker's leases carry.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.settings.lease_secs as i64)
    }

    /// Claims one due job and runs it to its end (success, retry or failure).
    /// `Ok(false)` when no job was due.
    pub async fn run_once(&self) -> anyhow::Result<bool> {
        let permit = self.permits.clone().acquire_owned().await?;
        let now = Utc::now();
        let Some(job) = self
            .store
            .packages()
            .claim(&self.owner, now, now + self.lease())
            .await?
        else {
            return Ok(false);
        };
        self.execute(job).await;
        drop(permit);
        Ok(true)
    }

    async fn execute(&self, job: BuildJob) {
        let started = Instant::now();
        let outcome = if job.attempts > self.settings.max_attempts {
            Err(Failure::Permanent(format!(
                "gave up after {} attempts (the last worker lost its lease)",
                job.attempts - 1
            )))
        } else {
            self.build(&job).await
        };
        let now = Utc::now();
        let packages = self.store.packages();
        let recorded = match outcome {
            Ok(result) => match packages.complete(job.id, &self.owner, result, now).await {
                Ok(done) => {
                    tracing::info!(
                        job.id = job.id,
                        full_package.id = done.full_package_id,
                        delta_package.id = done.delta_package_id,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "package build succeeded"
                    );
                    Ok(())
                }
                Err(StoreError::Conflict(why)) => {
                    tracing::warn!(job.id = job.id, reason = why, "build result discarded");
                    Ok(())
                }
                Err(err) => {
                    self.failed(&job, Failure::Retry(err.to_string()), now)
                        .await
                }
            },
            Err(failure) => self.failed(&job, failure, now).await,
        };
        if let Err(err) = recorded {
            tracing::error!(job.id = job.id, error = %err, "cannot record the build outcome");
        }
    }

    async fn failed(
        &self,
        job: &BuildJob,
        failure: Failure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (message, retry_at) = match failure {
            Failure::Permanent(message) => (message, None),
            Failure::Retry(message) => {
                let retry = (job.attempts < self.settings.max_attempts)
                    .then(|| now + backoff(&self.settings, job.attempts));
                (message, retry)
            }
        };
        tracing::warn!(
            job.id = job.id,
            job.attempt = job.attempts,
            error = message,
            retry = retry_at.is_some(),
            "package build failed"
        );
        self.store
            .packages()
            .attempt_failed(job.id, &self.owner, &message, retry_at, now)
            .await?;
        Ok(())
    }

    async fn build(&self, job: &BuildJob) -> Result<JobResult, Failure> {
        let firmware = self.store.firmware();
        let target = firmware.get(job.target_firmware_id).await?.ok_or_else(|| {
            Failure::Permanent(format!(
                "target firmware {} is gone",
                job.target_firmware_id
            ))
        })?;
        let source = match job.source_firmware_id {
            Some(id) => Some(
                firmware
                    .get(id)
                    .await?
                    .ok_or_else(|| Failure::Permanent(format!("source firmware {id} is gone")))?,
            ),
            None => None,
        };
        let (full_encoding, delta_encoding) = format_encodings(&job.format)
            .ok_or_else(|| Failure::Permanent(format!("unknown format {:?}", job.format)))?;
        let key = keys::active_signing_key(&self.store, &self.keys)
            .await
            .map_err(|e| match e {
                KeysError::NoActiveKey | KeysError::PrivateKeyMissing(_) => {
                    Failure::Permanent(e.to_string())
                }
                other => Failure::Retry(other.to_string()),
            })?;
        let new = self.read_image(&target).await?;
        let old = match &source {
            Some(source) => Some(self.read_image(source).await?),
            None => None,
        };
        let full_size = match &source {
            Some(_) => self
                .store
                .packages()
                .full_for_target(&target.sha256, full_encoding.name())
                .await?
                .map(|p| p.size),
            None => None,
        };
        let policy = BuildPolicy {
            full_encoding,
            delta_encoding,
            max_delta_ratio: self.settings.delta_max_ratio,
        };

        let progress = Arc::new(AtomicU8::new(0));
        let reporter = JobProgress::new(progress.clone(), source.is_some());
        let inputs = BuildInputs {
            manufacturer: target.manufacturer.clone(),
            model: target.model.clone(),
            target_version: target.version.clone(),
            source_version: source.as_ref().map(|s| s.version.clone()),
            security_version: target.security_version,
            created_at: Utc::now().timestamp(),
            new,
            old,
            full_size,
            policy,
            delta_budget: (self.settings.delta_budget_secs > 0)
                .then(|| Duration::from_secs(self.settings.delta_budget_secs)),
        };
        let mut handle = tokio::task::spawn_blocking(move || inputs.build(&key, reporter));
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let built = loop {
            tokio::select! {
                done = &mut handle => break done,
                _ = tick.tick() => {
                    let now = Utc::now();
                    let held = self.store.packages()
                        .heartbeat(job.id, &self.owner, progress.load(Ordering::Relaxed), now + self.lease(), now)
                        .await;
                    match held {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job.id = job.id, "lease lost while building"),
                        Err(err) => tracing::warn!(job.id = job.id, error = %err, "cannot record build progress"),
                    }
                }
            }
        };
        let built = built
            .map_err(|e| Failure::Retry(format!("the builder crashed: {e}")))?
            .map_err(|e| Failure::Permanent(format!("build failed: {e}")))?;

        let mut result = JobResult {
            full: None,
            delta: None,
            outcome: built.note,
        };
        if let Some(full) = built.full {
            result.full = Some(self.store_package(full, &target, None).await?);
        }
        if let Some(delta) = built.delta {
            result.delta = Some(self.store_package(delta, &target, source.as_ref()).await?);
        }
        Ok(result)
    }

    async fn read_image(&self, firmware: &Firmware) -> Result<Vec<u8>, Failure> {
        let key = BlobKey::new(firmware.blob_key.clone())
            .map_err(|e| Failure::Permanent(format!("firmware {}: {e}", firmware.id)))?;
        let (_, mut stream) = self
            .blobs
            .get(&key)
            .await
            .map_err(|e| Failure::Retry(format!("firmware {} image: {e}", firmware.id)))?;
        let mut image = Vec::with_capacity(firmware.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| Failure::Retry(format!("firmware {} image: {e}", firmware.id)))?;
            image.extend_from_slice(&chunk);
        }
        if Sha256::of(&image).to_string() != firmware.sha256 {
            return Err(Failure::Retry(format!(
                "firmware {} image does not match its sha256",
                firmware.id
            )));
        }
        Ok(image)
    }

    /// Puts the package bytes in the blob store (not yet visible: no row points at them).
    async fn store_package(
        &self,
        package: package::Package,
        target: &Firmware,
        source: Option<&Firmware>,
    ) -> Result<NewPackage, Failure> {
        let sha256 = Sha256::of(&package.bytes).to_string();
        let size = package.bytes.len() as u64;
        let body =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(package.bytes))]);
        let meta = self
            .blobs
            .put_content_addressed(
                upload::PACKAGE_PREFIX,
                body,
                &PutOptions {
                    max_bytes: None,
                    expected_sha256: Some(sha256.clone()),
                },
            )
            .await
            .map_err(|e| Failure::Retry(format!("cannot store the package: {e}")))?;
        Ok(upload::new_package(
            &package.manifest,
            PackageOrigin::Built,
            Some(target.id),
            source.map(|s| s.id),
            meta.key.as_str().to_owned(),
            size,
            sha256,
        ))
    }
}

/// Exponential backoff after `attempts` failed attempts, capped.
fn backoff(settings: &BuildsConfig, attempts: u32) -> chrono::Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let secs = settings
        .retry_base_secs
        .saturating_mul(1u64 << exponent)
        .min(settings.retry_max_secs);
    chrono::Duration::seconds(secs as i64)
}

/// Everything a blocking build needs, owned.
struct BuildInputs {
    manufacturer: String,
    model: String,
    target_version: String,
    source_version: Option<String>,
    /// The target firmware's anti-rollback version, signed into the manifest.
    security_version: u64,
    created_at: i64,
    new: Vec<u8>,
    old: Option<Vec<u8>>,
    /// Size of the target's full package, when one exists already.
    full_size: Option<u64>,
    policy: BuildPolicy,
    /// Wall-clock budget of the delta (diff and compression), if any.
    delta_budget: Option<Duration>,
}

struct Built {
    full: Option<package::Package>,
    delta: Option<package::Package>,
    note: Option<String>,
}

impl BuildInputs {
    fn build(
        self,
        key: &package::SecretKey,
        mut progress: JobProgress,
    ) -> Result<Built, package::BuildError> {
        let release = Release {
            manufacturer: &self.manufacturer,
            model: &self.model,
            target_version: &self.target_version,
            source_version: self.source_version.as_deref(),
            security_version: self.security_version,
            created_at: self.created_at,
            expires_at: None,
        };
        let Some(old) = &self.old else {
            let full = package::build_full(
                &release,
                &self.new,
                self.policy.full_encoding,
                key,
                &mut progress,
            )?;
            return Ok(Built {
                full: Some(full),
                delta: None,
                note: None,
            });
        };
        // The full package of this target is the full job's to publish; a delta job only
        // needs its size, and builds it when it is not known yet.
        let full_size = match self.full_size {
            Some(size) => {
                progress.delta_only = true;
                size
            }
            None => package::build_full(
                &release,
                &self.new,
                self.policy.full_encoding,
                key,
                &mut progress,
            )?
            .bytes
            .len() as u64,
        };
        progress.deadline = self.delta_budget.map(|b| Instant::now() + b);
        let delta = package::build_delta(
            &release,
            old,
            &self.new,
            self.policy.delta_encoding,
            key,
            &mut progress,
        );
        let delta = match delta {
            Ok(delta) => delta,
            // A delta that cannot be made in time must not hold up the campaign: the
            // target's full package serves the devices, and the job says why.
            Err(package::BuildError::Delta(DeltaError::Stopped | DeltaError::StepBudget(_))) => {
                let budget = self.delta_budget.map_or(0, |b| b.as_secs());
                return Ok(Built {
                    full: None,
                    delta: None,
                    note: Some(format!(
                        "delta not built: it exceeded the build budget of {budget} s \
                         (builds.delta_budget_secs); devices get the full package ({full_size} bytes)"
                    )),
                });
            }
            Err(other) => return Err(other),
        };
        let limit = full_size as f64 * self.policy.max_delta_ratio;
        if (delta.bytes.len() as f64) < limit {
            let note = format!(
                "delta kept: {} bytes, full package {} bytes",
                delta.bytes.len(),
                full_size
            );
            Ok(Built {
                full: None,
                delta: Some(delta),
                note: Some(note),
            })
        } else {
            Ok(Built {
                full: None,
                delta: None,
                note: Some(format!(
                    "delta not kept: {} bytes is not below {} of the full package ({} bytes)",
                    delta.bytes.len(),
                    self.policy.max_delta_ratio,
                    full_size
                )),
            })
        }
    }
}

/// Turns the builder's steps into one 0-99 percentage (100 is written on success).
struct JobProgress {
    shared: Arc<AtomicU8>,
    /// (start, width) of the current step's share.
    band: (f64, f64),
    total: u64,
    /// This build makes a delta (after the full image's compression, unless `delta_only`).
    delta: bool,
    matched: bool,
    delta_only: bool,
    /// Past this instant the builder is asked to stop (the delta's budget).
    deadline: Option<Instant>,
}

impl JobProgress {
    fn new(shared: Arc<AtomicU8>, delta: bool) -> Self {
        JobProgress {
            shared,
            band: (0.0, 0.0),
            total: 0,
            delta,
            matched: false,
            delta_only: false,
            deadline: None,
        }
    }

    fn set(&self, fraction: f64) {
        let value = (self.band.0 + self.band.1 * fraction.clamp(0.0, 1.0)).min(99.0) as u8;
        self.shared.fetch_max(value, Ordering::Relaxed);
    }
}

impl Progress for JobProgress {
    fn start(&mut self, step: Step, total: u64) {
        self.total = total;
        self.band = match step {
            // The full image's compression: all of a full job, the start of a delta job.
            Step::Compress if !self.delta => (0.0, 95.0),
            Step::Compress if !self.matched && !self.delta_only => (0.0, 20.0),
            Step::SuffixSort => (if self.delta_only { 0.0 } else { 20.0 }, 20.0),
            Step::Match => {
                self.matched = true;
                (40.0, 30.0)
            }
            Step::Compress => (70.0, 25.0),
            Step::Verify | Step::Apply => (95.0, 4.0),
        };
        self.set(0.0);
    }

    fn update(&mut self, done: u64) {
        if self.total > 0 {
            self.set(done as f64 / self.total as f64);
        }
    }

    fn should_stop(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// The worker loop: claims jobs while permits are free, until `stop` turns true; then
/// waits for the builds in flight.
pub async fn run(worker: BuildWorker, mut stop: tokio::sync::watch::Receiver<bool>) {
    let poll = Duration::from_millis(worker.settings.poll_interval_ms.max(10));
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = worker.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let now = Utc::now();
        let claimed = worker
            .store
            .packages()
            .claim(&worker.owner, now, now + worker.lease())
            .await;
        match claimed {
            Ok(Some(job)) => {
                let worker = worker.clone();
                running.spawn(async move {
                    worker.execute(job).await;
                    drop(permit);
                });
                continue;
            }
            Ok(None) => drop(permit),
            Err(err) => {
                drop(permit);
                tracing::error!(error = %err, "cannot claim a build job");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => break,
        }
    }
    while running.join_next().await.is_some() {}
}

/// The manifest fields of a package, for its record.
pub fn describe(manifest: &Manifest) -> (PackageKind, String) {
    let kind = if manifest.source.is_some() {
        PackageKind::Delta
    } else {
        PackageKind::Full
    };
    (kind, manifest.payload.encoding.name().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_and_is_capped() {
        let settings = BuildsConfig {
            retry_base_secs: 10,
            retry_max_secs: 100,
            ..BuildsConfig::default()
        };
        let secs: Vec<i64> = (1..=6)
            .map(|a| backoff(&settings, a).num_seconds())
            .collect();
        assert_eq!(secs, [10, 20, 40, 80, 100, 100]);
        assert_eq!(backoff(&settings, 400).num_seconds(), 100);
    }

    #[test]
    fn progress_only_rises_and_stays_below_done() {
        let shared = Arc::new(AtomicU8::new(0));
        let mut p = JobProgress::new(shared.clone(), true);
        p.start(Step::Compress, 100);
        p.update(100);
        let after_full = shared.load(Ordering::Relaxed);
        p.start(Step::SuffixSort, 10);
        p.start(Step::Match, 10);
        p.update(5);
        let mid = shared.load(Ordering::Relaxed);
        p.start(Step::Compress, 10);
        p.update(10);
        let end = shared.load(Ordering::Relaxed);
        assert!(
            after_full <= mid && mid < end && end < 100,
            "{after_full} {mid} {end}"
        );
    }
}

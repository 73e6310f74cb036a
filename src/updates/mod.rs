//! Update jobs at the edge: creating and cancelling them, the worker that moves them on time
//! (retries, report chases, deadlines), and the hook that feeds them the facts of every DM
//! message. The decisions are `crate::fumo`'s; this module loads, stores and applies them.

pub mod session;
pub mod worker;

use chrono::{DateTime, Utc};

use crate::config::{Config, UpdatesConfig};
use crate::dm_edge::notify::Notifier;
use crate::downloads::Downloads;
use crate::fumo::select::{Candidate, Choice, Reported, Target, choose};
use crate::fumo::{Job, JobState, Mode, PackageKind, Policy};
use crate::store::{
    Device, Firmware, NewUpdateJob, PackageFilter, Store, StoreError, Tx, UpdateJobRecord,
};

/// The package a device that reported `device` would get for `firmware` (its target, as
/// version `target_version`), among every package of the model: the same choice an update
/// job makes in the device's session, so that planning and previews agree with delivery.
pub async fn choose_package(
    store: &Store,
    firmware: &Firmware,
    target_version: &str,
    device: Reported<'_>,
) -> Result<Choice, StoreError> {
    let target = Target {
        manufacturer: firmware.manufacturer.clone(),
        model: firmware.model.clone(),
        version: target_version.to_owned(),
    };
    let packages = store
        .packages()
        .list(
            &PackageFilter {
                target_firmware_id: None,
                model: Some(firmware.model.clone()),
            },
            None,
            500,
        )
        .await?;
    let candidates: Vec<Candidate> = packages
        .into_iter()
        .map(|p| Candidate {
            id: p.id,
            kind: match p.kind {
                crate::store::PackageKind::Delta => PackageKind::Delta,
                crate::store::PackageKind::Full => PackageKind::Full,
            },
            manufacturer: p.manufacturer,
            model: p.model,
            target_version: p.target_version,
            source_version: p.source_version,
            size: p.size,
        })
        .collect();
    Ok(choose(&target, device, &candidates))
}

/// The key under which the download route accounts an update job's bytes.
pub fn download_job_key(job_id: i64) -> String {
    format!("update-{job_id}")
}

/// How the caller asked for the package to travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Url,
    Inline,
    Auto,
}

impl Delivery {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "url" => Self::Url,
            "inline" => Self::Inline,
            "auto" => Self::Auto,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Inline => "inline",
            Self::Auto => "auto",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no device with id {0}")]
    NoDevice(String),
    #[error("no firmware with id {0}")]
    NoFirmware(i64),
    #[error("the device has an active update job ({0}); cancel it or wait for its verdict")]
    Busy(i64),
    #[error("the deadline is in the past")]
    DeadlinePassed,
    #[error("the job's Exec went out: the device may be installing, so it runs to its verdict")]
    TooLateToCancel,
    #[error("the job already has its verdict ({0})")]
    Final(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a job is made, beyond its device and firmware.
#[derive(Debug, Clone)]
pub struct JobPlan {
    pub delivery: Delivery,
    pub deadline: DateTime<Utc>,
    /// Attempts, when not the service's setting (a campaign's retry policy).
    pub max_attempts: Option<u32>,
    /// The first retry's backoff, when not the service's setting.
    pub retry_base_ms: Option<i64>,
    pub campaign_id: Option<i64>,
}

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    pub device_id: String,
    pub target_firmware_id: i64,
    pub delivery: Delivery,
    pub deadline: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Updates {
    store: Store,
    notifier: Notifier,
    downloads: Downloads,
    config: UpdatesConfig,
}

impl Updates {
    pub fn new(store: Store, notifier: Notifier, downloads: Downloads, config: &Config) -> Updates {
        Updates {
            store,
            notifier,
            downloads,
            config: config.updates.clone(),
        }
    }

    pub fn policy(&self) -> Policy {
        Policy {
            report_timeout_ms: self.config.report_timeout_secs as i64 * 1000,
            retry_base_ms: self.config.retry_base_secs as i64 * 1000,
            retry_cap_ms: self.config.retry_cap_secs.max(self.config.retry_base_secs) as i64 * 1000,
        }
    }

    pub fn config(&self) -> &UpdatesConfig {
        &self.config
    }

    /// Creates a job and, when a transport reaches the device, queues its Package 0 in the
    /// same transaction (the job is then `notified`; otherwise it waits, `pending`, for the
    /// device's own next session).
    pub async fn create(
        &self,
        request: UpdateRequest,
        now: DateTime<Utc>,
    ) -> Result<UpdateJobRecord, UpdateError> {
        let device = self
            .store
            .devices()
            .get(&request.device_id)
            .await?
            .ok_or_else(|| UpdateError::NoDevice(request.device_id.clone()))?;
        let firmware = self
            .store
            .firmware()
            .get(request.target_firmware_id)
            .await?
            .ok_or(UpdateError::NoFirmware(request.target_firmware_id))?;
        let deadline = request.deadline.unwrap_or_else(|| {
            now + chrono::Duration::seconds(self.config.default_deadline_secs as i64)
        });
        if deadline <= now {
            return Err(UpdateError::DeadlinePassed);
        }
        if let Some(active) = self
            .store
            .update_jobs()
            .active_for_device(&device.id)
            .await?
        {
            return Err(UpdateError::Busy(active.id));
        }
        let tx = self.store.begin().await?;
        let plan = JobPlan {
            delivery: request.delivery,
            deadline,
            max_attempts: None,
            retry_base_ms: None,
            campaign_id: None,
        };
        let created = self
            .create_in(&tx, &device, &firmware, &plan, now)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => UpdateError::Busy(0),
                other => other.into(),
            })?;
        tx.commit().await?;
        tracing::info!(update.id = created.id, device.id = %device.id, firmware.id = firmware.id, "update job created");
        Ok(self
            .store
            .update_jobs()
            .get(created.id)
            .await?
            .unwrap_or(created))
    }

    /// Creates a job inside `tx` with its Package 0 (see [`Updates::create`]); `Conflict` when
    /// the device has an active job. The caller checked that the deadline is ahead.
    pub async fn create_in(
        &self,
        tx: &Tx,
        device: &Device,
        firmware: &Firmware,
        plan: &JobPlan,
        now: DateTime<Utc>,
    ) -> Result<UpdateJobRecord, StoreError> {
        let profile = self
            .config
            .profile(Some(&firmware.manufacturer), Some(&firmware.model));
        let two_step = profile.is_some_and(|p| p.two_step);
        let mode = match plan.delivery {
            Delivery::Inline => Mode::Inline,
            Delivery::Auto if profile.is_some_and(|p| !p.can_download) => Mode::Inline,
            _ if two_step => Mode::UrlTwoStep,
            _ => Mode::Url,
        };
        let job = Job {
            id: 0,
            state: JobState::Pending,
            attempt: 1,
            max_attempts: plan.max_attempts.unwrap_or(self.config.max_attempts).max(1),
            target_version: firmware.version.clone(),
            mode: Some(mode),
            stage: None,
            fumo_node: profile.and_then(|p| p.fumo_node.clone()),
            package: None,
            result_code: None,
            failure: None,
            confirmed_version: None,
            due_at_ms: None,
            deadline_ms: Some(plan.deadline.timestamp_millis()),
            chases: 0,
            exec_sent: false,
            retry_base_ms: plan.retry_base_ms,
        };
        let created = tx
            .update_jobs()
            .create(
                NewUpdateJob {
                    device_id: device.id.clone(),
                    target_firmware_id: firmware.id,
                    delivery: plan.delivery.as_str().to_owned(),
                    job,
                    campaign_id: plan.campaign_id,
                },
                now,
            )
            .await?;
        // Package 0 and the state that says so are one decision.
        let mut job = created.job.clone();
        if self.notifier.queue_in(tx, device, now).await?.is_some() {
            let step = job.notified();
            tx.update_jobs()
                .save(created.id, created.version, &job, &step.transitions, now)
                .await?;
            return Ok(UpdateJobRecord {
                job,
                version: created.version + 1,
                ..created
            });
        }
        Ok(created)
    }

    /// Cancels a job inside `tx` if its Exec has not gone out; `false` when it went out (the
    /// job runs on to its verdict) or the job already has one.
    pub async fn cancel_in(
        &self,
        tx: &Tx,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(record) = tx.update_jobs().get(id).await? else {
            return Ok(false);
        };
        if record.job.state.is_final() {
            return Ok(false);
        }
        let mut job = record.job.clone();
        let Some(step) = job.cancel() else {
            return Ok(false);
        };
        tx.update_jobs()
            .save(id, record.version, &job, &step.transitions, now)
            .await?;
        let stepped = UpdateJobRecord { job, ..record };
        self.apply_actions(tx, &stepped, &step.actions, now).await?;
        Ok(true)
    }

    /// Cancels a job whose Exec has not gone out.
    pub async fn cancel(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<UpdateJobRecord, UpdateError> {
        let record = self
            .store
            .update_jobs()
            .get(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if record.job.state.is_final() {
            return Err(UpdateError::Final(record.job.state.as_str()));
        }
        let mut job = record.job.clone();
        let step = job.cancel().ok_or(UpdateError::TooLateToCancel)?;
        let tx = self.store.begin().await?;
        tx.update_jobs()
            .save(id, record.version, &job, &step.transitions, now)
            .await?;
        let stepped = UpdateJobRecord { job, ..record };
        self.apply_actions(&tx, &stepped, &step.actions, now)
            .await?;
        tx.commit().await?;
        Ok(self
            .store
            .update_jobs()
            .get(id)
            .await?
            .ok_or(StoreError::NotFound)?)
    }
}

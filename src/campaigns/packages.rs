//! Packages before devices: a campaign queues the builds each cohort needs when it is created
//! (the target's full package, and a delta from the cohort's source image when that image was
//! uploaded), and its devices start only once the package the update job will choose exists.
//! A cohort whose delta cannot be built falls back to the full package, as the job would.

use chrono::{DateTime, Utc};

use crate::campaign::{Cohort, CohortReadiness, Target};
use crate::fumo::{Choice, PackageKind, Reported};
use crate::store::{CohortRecord, JobState, NewJob, Store, StoreError, Tx};

/// Where a cohort's package stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackageState {
    /// The package the cohort's devices would get exists.
    Ready,
    /// Not yet: builds are queued or running (or would be queued at creation).
    Building,
    /// None can be had.
    Missing,
}

/// The package a cohort gets (or why none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortPackage {
    pub state: PackageState,
    pub package_id: Option<i64>,
    pub kind: Option<PackageKind>,
    pub size: Option<u64>,
    /// Why it is building or missing, in words.
    pub note: Option<String>,
}

impl CohortPackage {
    pub fn missing(why: &str) -> CohortPackage {
        CohortPackage {
            state: PackageState::Missing,
            package_id: None,
            kind: None,
            size: None,
            note: Some(why.to_owned()),
        }
    }
}

/// The package a device of `cohort` would get for `target` now, as its update job chooses.
pub async fn current(
    store: &Store,
    target: &Target,
    cohort: &Cohort,
) -> Result<CohortPackage, StoreError> {
    let Some(firmware) = store.firmware().get(target.firmware_id).await? else {
        return Ok(CohortPackage::missing("the target firmware was deleted"));
    };
    let choice = crate::updates::choose_package(
        store,
        &firmware,
        &target.version,
        Reported {
            manufacturer: Some(&cohort.manufacturer)
                .filter(|m| !m.is_empty())
                .map(String::as_str),
            model: Some(cohort.model.as_str()),
            fw_version: &cohort.version,
        },
    )
    .await?;
    Ok(match choice {
        Choice::Package { id, kind, size } => CohortPackage {
            state: PackageState::Ready,
            package_id: Some(id),
            kind: Some(kind),
            size: Some(size),
            note: None,
        },
        Choice::NoPackage => {
            let source = store
                .firmware()
                .find(&target.manufacturer, &target.model, &cohort.version)
                .await?;
            CohortPackage {
                state: PackageState::Building,
                package_id: None,
                kind: None,
                size: None,
                note: Some(if source.is_some() {
                    "not built yet: a delta from the uploaded source image and the full package are built when the campaign is created".into()
                } else {
                    "not built yet: the full package is built when the campaign is created (no source image uploaded for a delta)".into()
                }),
            }
        }
        Choice::AlreadyOnTarget => CohortPackage::missing("already on the target version"),
        Choice::Incompatible(why) => CohortPackage::missing(&why),
    })
}

/// Queues the cohort's builds (idempotent: an existing build is reused) and records them.
pub async fn queue_builds(
    tx: &Tx,
    campaign_id: i64,
    target: &Target,
    cohort: &Cohort,
    format: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(firmware) = tx.firmware().get(target.firmware_id).await? else {
        return Ok(());
    };
    let (full, _) = tx
        .packages()
        .enqueue(
            NewJob {
                target_firmware_id: firmware.id,
                source_firmware_id: None,
                target_sha256: firmware.sha256.clone(),
                source_sha256: None,
                format: format.to_owned(),
            },
            now,
        )
        .await?;
    let source = tx
        .firmware()
        .find(&firmware.manufacturer, &firmware.model, &cohort.version)
        .await?
        .filter(|s| s.sha256 != firmware.sha256);
    let delta = match &source {
        Some(source) => Some(
            tx.packages()
                .enqueue(
                    NewJob {
                        target_firmware_id: firmware.id,
                        source_firmware_id: Some(source.id),
                        target_sha256: firmware.sha256.clone(),
                        source_sha256: Some(source.sha256.clone()),
                        format: format.to_owned(),
                    },
                    now,
                )
                .await?
                .0,
        ),
        None => None,
    };
    tx.members()
        .set_cohort_builds(
            campaign_id,
            cohort,
            source.map(|s| s.id),
            Some(full.id),
            delta.map(|d| d.id),
        )
        .await
}

/// Whether a cohort's devices can start: the package its jobs will choose exists and no build
/// that could give a better one (its delta) is still under way. Returns the package too.
pub async fn readiness(
    store: &Store,
    target: &Target,
    record: &CohortRecord,
) -> Result<(CohortReadiness, Option<i64>), StoreError> {
    let mut errors = Vec::new();
    for job_id in [record.delta_job_id, record.full_job_id]
        .into_iter()
        .flatten()
    {
        if let Some(job) = store.packages().job(job_id).await? {
            match job.state {
                JobState::Queued | JobState::Running => {
                    return Ok((CohortReadiness::Building, None));
                }
                JobState::Failed => {
                    errors.push(job.error.unwrap_or_else(|| "the build failed".into()))
                }
                JobState::Succeeded => {}
            }
        }
    }
    let package = current(store, target, &record.cohort).await?;
    if package.state == PackageState::Ready {
        return Ok((CohortReadiness::Ready, package.package_id));
    }
    let why = if errors.is_empty() {
        package.note.unwrap_or_else(|| "no package".into())
    } else {
        errors.join("; ")
    };
    Ok((CohortReadiness::Unavailable(why), None))
}

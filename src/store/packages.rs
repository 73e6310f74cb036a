//! Packages (built or uploaded) and the durable build queue that produces them.
//!
//! A build job is claimed with a lease: on PostgreSQL with `SELECT … FOR UPDATE SKIP
//! LOCKED` (concurrent workers skip each other's rows instead of waiting), on SQLite with
//! a compare-and-set `UPDATE` (SQLite has one writer, so the first update wins and the
//! others match no row). A worker that dies leaves its lease to expire, after which any
//! worker claims the job again. A job's packages and its `succeeded` state are written in
//! one transaction that also checks the lease is still held, so a job whose lease was
//! lost can never publish a second set of packages.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseBackend, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::StoreError;
use super::entity::{package, package_job};
use sea_orm::{ConnectionTrait, TransactionSession};

/// A full image or a delta from one source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackageKind {
    Full,
    Delta,
}

/// Built by this service's workers, or signed offline and uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackageOrigin {
    Built,
    Uploaded,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PackageRecord {
    pub id: i64,
    pub kind: PackageKind,
    pub origin: PackageOrigin,
    pub target_firmware_id: Option<i64>,
    pub source_firmware_id: Option<i64>,
    pub manufacturer: String,
    pub model: String,
    pub target_version: String,
    pub target_sha256: String,
    pub source_version: Option<String>,
    pub source_sha256: Option<String>,
    pub encoding: String,
    /// The signed manifest, as JSON.
    pub manifest: serde_json::Value,
    pub blob_key: String,
    pub size: u64,
    pub sha256: String,
    pub key_id: String,
    pub job_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

fn to_package(m: package::Model) -> PackageRecord {
    PackageRecord {
        id: m.id,
        kind: if m.kind == "delta" {
            PackageKind::Delta
        } else {
            PackageKind::Full
        },
        origin: if m.origin == "uploaded" {
            PackageOrigin::Uploaded
        } else {
            PackageOrigin::Built
        },
        target_firmware_id: m.target_firmware_id,
        source_firmware_id: m.source_firmware_id,
        manufacturer: m.manufacturer,
        model: m.model,
        target_version: m.target_version,
        target_sha256: m.target_sha256,
        source_version: m.source_version,
        source_sha256: m.source_sha256,
        encoding: m.encoding,
        manifest: serde_json::from_str(&m.manifest).unwrap_or(serde_json::Value::Null),
        blob_key: m.blob_key,
        size: m.size as u64,
        sha256: m.sha256,
        key_id: m.key_id,
        job_id: m.job_id,
        created_at: m.created_at,
    }
}

/// A package about to be recorded; its blob is already stored.
#[derive(Debug, Clone)]
pub struct NewPackage {
    pub kind: PackageKind,
    pub origin: PackageOrigin,
    pub target_firmware_id: Option<i64>,
    pub source_firmware_id: Option<i64>,
    pub manufacturer: String,
    pub model: String,
    pub target_version: String,
    pub target_sha256: String,
    pub source_version: Option<String>,
    pub source_sha256: Option<String>,
    pub encoding: String,
    /// The manifest's canonical JSON.
    pub manifest: String,
    pub blob_key: String,
    pub size: u64,
    pub sha256: String,
    pub key_id: String,
}

impl NewPackage {
    fn into_active(self, job_id: Option<i64>, now: DateTime<Utc>) -> package::ActiveModel {
        package::ActiveModel {
            kind: Set(match self.kind {
                PackageKind::Full => "full",
                PackageKind::Delta => "delta",
            }
            .to_owned()),
            origin: Set(match self.origin {
                PackageOrigin::Built => "built",
                PackageOrigin::Uploaded => "uploaded",
            }
            .to_owned()),
            target_firmware_id: Set(self.target_firmware_id),
            source_firmware_id: Set(self.source_firmware_id),
            manufacturer: Set(self.manufacturer),
            model: Set(self.model),
            target_version: Set(self.target_version),
            target_sha256: Set(self.target_sha256),
            source_version: Set(self.source_version),
            source_sha256: Set(self.source_sha256),
            encoding: Set(self.encoding),
            manifest: Set(self.manifest),
            blob_key: Set(self.blob_key),
            size: Set(self.size as i64),
            sha256: Set(self.sha256),
            key_id: Set(self.key_id),
            job_id: Set(job_id),
            created_at: Set(now),
            ..Default::default()
        }
    }
}

/// Filters of a package listing; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct PackageFilter {
    pub target_firmware_id: Option<i64>,
    pub model: Option<String>,
}

/// Where a build job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (first time, or for a retry after `next_attempt_at`).
    Queued,
    /// A worker holds its lease.
    Running,
    Succeeded,
    /// Gave up: the last error says why. Requesting the build again requeues it.
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> JobState {
        match s {
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => JobState::Queued,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildJob {
    pub id: i64,
    pub target_firmware_id: i64,
    pub source_firmware_id: Option<i64>,
    pub target_sha256: String,
    pub source_sha256: Option<String>,
    pub format: String,
    pub state: JobState,
    pub attempts: u32,
    pub progress: u8,
    pub error: Option<String>,
    pub outcome: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub full_package_id: Option<i64>,
    pub delta_package_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn to_job(m: package_job::Model) -> BuildJob {
    BuildJob {
        id: m.id,
        target_firmware_id: m.target_firmware_id,
        source_firmware_id: m.source_firmware_id,
        target_sha256: m.target_sha256,
        source_sha256: (!m.source_sha256.is_empty()).then_some(m.source_sha256),
        format: m.format,
        state: JobState::parse(&m.state),
        attempts: Ord::max(m.attempts, 0) as u32,
        progress: Ord::clamp(m.progress, 0, 100) as u8,
        error: m.error,
        outcome: m.outcome,
        lease_owner: m.lease_owner,
        lease_until: m.lease_until,
        next_attempt_at: m.next_attempt_at,
        full_package_id: m.full_package_id,
        delta_package_id: m.delta_package_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
        finished_at: m.finished_at,
    }
}

/// A build to queue: one (source, target, format) triple.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub target_firmware_id: i64,
    pub source_firmware_id: Option<i64>,
    pub target_sha256: String,
    pub source_sha256: Option<String>,
    pub format: String,
}

/// How a build ended, recorded with its packages.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub full: Option<NewPackage>,
    pub delta: Option<NewPackage>,
    /// A note for people, e.g. why a delta was not kept.
    pub outcome: Option<String>,
}

pub struct PackageStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> PackageStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        PackageStore { db }
    }

    /// Records an uploaded package; the same bytes again return the existing record
    /// (`false`: not created).
    pub async fn insert_uploaded(
        &self,
        new: NewPackage,
        now: DateTime<Utc>,
    ) -> Result<(PackageRecord, bool), StoreError> {
        let sha256 = new.sha256.clone();
        match new.into_active(None, now).insert(self.db).await {
            Ok(m) => Ok((to_package(m), true)),
            Err(err) => match StoreError::from(err) {
                StoreError::Conflict(_) => {
                    let existing = self.by_sha256(&sha256).await?.ok_or(StoreError::NotFound)?;
                    Ok((existing, false))
                }
                other => Err(other),
            },
        }
    }

    pub async fn get(&self, id: i64) -> Result<Option<PackageRecord>, StoreError> {
        Ok(package::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .map(to_package))
    }

    pub async fn by_sha256(&self, sha256: &str) -> Result<Option<PackageRecord>, StoreError> {
        Ok(package::Entity::find()
            .filter(package::Column::Sha256.eq(sha256))
            .one(self.db)
            .await?
            .map(to_package))
    }

    /// Packages in id order after the cursor `after`.
    pub async fn list(
        &self,
        filter: &PackageFilter,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<PackageRecord>, StoreError> {
        let mut query = package::Entity::find().order_by_asc(package::Column::Id);
        if let Some(id) = filter.target_firmware_id {
            query = query.filter(package::Column::TargetFirmwareId.eq(id));
        }
        if let Some(model) = &filter.model {
            query = query.filter(package::Column::Model.eq(model.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(package::Column::Id.gt(after));
        }
        Ok(query
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_package)
            .collect())
    }

    pub async fn count(&self) -> Result<u64, StoreError> {
        Ok(package::Entity::find().count(self.db).await?)
    }

    /// A full package of this target image in this encoding, if one was built or uploaded.
    pub async fn full_for_target(
        &self,
        target_sha256: &str,
        encoding: &str,
    ) -> Result<Option<PackageRecord>, StoreError> {
        Ok(package::Entity::find()
            .filter(package::Column::TargetSha256.eq(target_sha256))
            .filter(package::Column::Encoding.eq(encoding))
            .filter(package::Column::Kind.eq("full"))
            .order_by_asc(package::Column::Id)
            .one(self.db)
            .await?
            .map(to_package))
    }

    // ---- build jobs ----

    /// Queues a build, idempotently: the same (source, target, format) returns the job
    /// that exists (`false`: not created); a failed one is queued again.
    pub async fn enqueue(
        &self,
        new: NewJob,
        now: DateTime<Utc>,
    ) -> Result<(BuildJob, bool), StoreError> {
        let source_sha256 = new.source_sha256.clone().unwrap_or_default();
        // The insert runs in its own (nested) transaction: on PostgreSQL a failed statement
        // would abort a caller's unit of work, a rolled-back savepoint does not.
        let attempt = super::begin_write(self.db).await?;
        let inserted = package_job::ActiveModel {
            target_firmware_id: Set(new.target_firmware_id),
            source_firmware_id: Set(new.source_firmware_id),
            target_sha256: Set(new.target_sha256.clone()),
            source_sha256: Set(source_sha256.clone()),
            format: Set(new.format.clone()),
            state: Set(JobState::Queued.as_str().to_owned()),
            attempts: Set(0),
            progress: Set(0),
            error: Set(None),
            outcome: Set(None),
            lease_owner: Set(None),
            lease_until: Set(None),
            next_attempt_at: Set(now),
            full_package_id: Set(None),
            delta_package_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
            ..Default::default()
        }
        .insert(&attempt)
        .await;
        match inserted {
            Ok(m) => {
                attempt.commit().await?;
                return Ok((to_job(m), true));
            }
            Err(err) => {
                attempt.rollback().await?;
                match StoreError::from(err) {
                    StoreError::Conflict(_) => {}
                    other => return Err(other),
                }
            }
        }
        let existing = package_job::Entity::find()
            .filter(package_job::Column::SourceSha256.eq(source_sha256.as_str()))
            .filter(package_job::Column::TargetSha256.eq(new.target_sha256.as_str()))
            .filter(package_job::Column::Format.eq(new.format.as_str()))
            .one(self.db)
            .await?
            .ok_or(StoreError::NotFound)?;
        if existing.state == JobState::Failed.as_str() {
            package_job::Entity::update_many()
                .col_expr(
                    package_job::Column::State,
                    Expr::value(JobState::Queued.as_str()),
                )
                .col_expr(package_job::Column::Attempts, Expr::value(0))
                .col_expr(package_job::Column::Progress, Expr::value(0))
                .col_expr(package_job::Column::NextAttemptAt, Expr::value(now))
                .col_expr(package_job::Column::UpdatedAt, Expr::value(now))
                .col_expr(
                    package_job::Column::FinishedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(package_job::Column::Id.eq(existing.id))
                .filter(package_job::Column::State.eq(JobState::Failed.as_str()))
                .exec(self.db)
                .await?;
            let again = self.job(existing.id).await?.ok_or(StoreError::NotFound)?;
            return Ok((again, false));
        }
        Ok((to_job(existing), false))
    }

    pub async fn job(&self, id: i64) -> Result<Option<BuildJob>, StoreError> {
        Ok(package_job::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .map(to_job))
    }

    /// Jobs in id order after the cursor `after`, optionally in one state.
    pub async fn jobs(
        &self,
        state: Option<JobState>,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<BuildJob>, StoreError> {
        let mut query = package_job::Entity::find().order_by_asc(package_job::Column::Id);
        if let Some(state) = state {
            query = query.filter(package_job::Column::State.eq(state.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(package_job::Column::Id.gt(after));
        }
        Ok(query
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_job)
            .collect())
    }

    /// Claims the oldest due job for `owner` until `lease_until`: a queued job whose next
    /// attempt is due, or a running job whose lease expired (its worker is gone). The
    /// claim counts as an attempt.
    pub async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<BuildJob>, StoreError> {
        let due = Condition::any()
            .add(
                Condition::all()
                    .add(package_job::Column::State.eq(JobState::Queued.as_str()))
                    .add(package_job::Column::NextAttemptAt.lte(now)),
            )
            .add(
                Condition::all()
                    .add(package_job::Column::State.eq(JobState::Running.as_str()))
                    .add(package_job::Column::LeaseUntil.lt(now)),
            );
        let claim = |id: i64| {
            package_job::Entity::update_many()
                .col_expr(
                    package_job::Column::State,
                    Expr::value(JobState::Running.as_str()),
                )
                .col_expr(
                    package_job::Column::Attempts,
                    Expr::col(package_job::Column::Attempts).add(1),
                )
                .col_expr(package_job::Column::LeaseOwner, Expr::value(owner))
                .col_expr(package_job::Column::LeaseUntil, Expr::value(lease_until))
                .col_expr(package_job::Column::UpdatedAt, Expr::value(now))
                .filter(package_job::Column::Id.eq(id))
        };
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            let txn = super::begin_write(self.db).await?;
            let Some(candidate) = package_job::Entity::find()
                .filter(due)
                .order_by_asc(package_job::Column::Id)
                .limit(1)
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .one(&txn)
                .await?
            else {
                txn.commit().await?;
                return Ok(None);
            };
            claim(candidate.id).exec(&txn).await?;
            txn.commit().await?;
            return self.job(candidate.id).await;
        }
        // SQLite: read candidates, then compare-and-set on what was read. The engine's
        // single writer makes the first update win; the loser matches no row.
        let candidates = package_job::Entity::find()
            .filter(due)
            .order_by_asc(package_job::Column::Id)
            .limit(8)
            .all(self.db)
            .await?;
        for c in candidates {
            let mut update = claim(c.id)
                .filter(package_job::Column::State.eq(c.state.as_str()))
                .filter(package_job::Column::Attempts.eq(c.attempts));
            update = match c.lease_until {
                Some(until) => update.filter(package_job::Column::LeaseUntil.eq(until)),
                None => update.filter(package_job::Column::LeaseUntil.is_null()),
            };
            if update.exec(self.db).await?.rows_affected == 1 {
                return self.job(c.id).await;
            }
        }
        Ok(None)
    }

    /// Records progress and extends the lease; `false` when `owner` no longer holds it.
    pub async fn heartbeat(
        &self,
        id: i64,
        owner: &str,
        progress: u8,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .held(id, owner)
            .col_expr(
                package_job::Column::Progress,
                Expr::value(i32::from(progress)),
            )
            .col_expr(package_job::Column::LeaseUntil, Expr::value(lease_until))
            .col_expr(package_job::Column::UpdatedAt, Expr::value(now))
            .exec(self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    fn held(&self, id: i64, owner: &str) -> sea_orm::UpdateMany<package_job::Entity> {
        package_job::Entity::update_many()
            .filter(package_job::Column::Id.eq(id))
            .filter(package_job::Column::LeaseOwner.eq(owner))
            .filter(package_job::Column::State.eq(JobState::Running.as_str()))
    }

    /// Records a failed attempt: queued again at `retry_at`, or failed for good when
    /// `retry_at` is `None`. `false` when `owner` no longer holds the lease.
    pub async fn attempt_failed(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .held(id, owner)
            .col_expr(package_job::Column::Error, Expr::value(error.to_owned()))
            .col_expr(
                package_job::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                package_job::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(package_job::Column::UpdatedAt, Expr::value(now));
        update = match retry_at {
            Some(at) => update
                .col_expr(
                    package_job::Column::State,
                    Expr::value(JobState::Queued.as_str()),
                )
                .col_expr(package_job::Column::NextAttemptAt, Expr::value(at)),
            None => update
                .col_expr(
                    package_job::Column::State,
                    Expr::value(JobState::Failed.as_str()),
                )
                .col_expr(package_job::Column::FinishedAt, Expr::value(now)),
        };
        Ok(update.exec(self.db).await?.rows_affected == 1)
    }

    /// Publishes a job's packages and marks it succeeded, in one transaction, only while
    /// `owner` holds its lease. A lost lease is `Conflict` and nothing is written.
    pub async fn complete(
        &self,
        id: i64,
        owner: &str,
        result: JobResult,
        now: DateTime<Utc>,
    ) -> Result<BuildJob, StoreError> {
        let txn = super::begin_write(self.db).await?;
        // Take the row first (an UPDATE locks it on PostgreSQL and takes SQLite's write
        // lock), so the lease check and the inserts see one state.
        let held = self
            .held(id, owner)
            .col_expr(package_job::Column::UpdatedAt, Expr::value(now))
            .exec(&txn)
            .await?;
        if held.rows_affected != 1 {
            return Err(StoreError::Conflict(format!(
                "the lease on build job {id} was lost"
            )));
        }
        let mut ids = [None, None];
        for (slot, new) in ids.iter_mut().zip([result.full, result.delta]) {
            let Some(new) = new else { continue };
            let existing = package::Entity::find()
                .filter(package::Column::Sha256.eq(new.sha256.as_str()))
                .one(&txn)
                .await?;
            *slot = Some(match existing {
                Some(m) => m.id,
                None => new.into_active(Some(id), now).insert(&txn).await?.id,
            });
        }
        self.held(id, owner)
            .col_expr(
                package_job::Column::State,
                Expr::value(JobState::Succeeded.as_str()),
            )
            .col_expr(package_job::Column::Progress, Expr::value(100))
            .col_expr(
                package_job::Column::Error,
                Expr::value(Option::<String>::None),
            )
            .col_expr(package_job::Column::Outcome, Expr::value(result.outcome))
            .col_expr(package_job::Column::FullPackageId, Expr::value(ids[0]))
            .col_expr(package_job::Column::DeltaPackageId, Expr::value(ids[1]))
            .col_expr(
                package_job::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(package_job::Column::FinishedAt, Expr::value(now))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.job(id).await?.ok_or(StoreError::NotFound)
    }
}

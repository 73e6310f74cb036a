//! Update jobs: the sans-IO job (`fumo::Job`) stored as JSON beside the columns that index it
//! (device, state, when it is next due, its deadline), and its history of state changes.

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionSession, TransactionTrait,
};

use super::StoreError;
use super::entity::{update_job, update_job_history};
use crate::fumo::{Job, JobState, Transition};

/// A job to create; `job.id` is assigned by the database.
#[derive(Debug, Clone)]
pub struct NewUpdateJob {
    pub device_id: String,
    pub target_firmware_id: i64,
    /// As requested: `url`, `inline` or `auto`.
    pub delivery: String,
    pub job: Job,
    /// The campaign that started it, if any.
    pub campaign_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateJobRecord {
    pub id: i64,
    pub device_id: String,
    pub target_firmware_id: i64,
    pub delivery: String,
    pub job: Job,
    /// Optimistic-locking version for [`UpdateJobStore::save`].
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub campaign_id: Option<i64>,
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryLine {
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub note: String,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Database(sea_orm::DbErr::Json(what))
}

fn to_record(m: update_job::Model) -> Result<UpdateJobRecord, StoreError> {
    let mut job: Job = serde_json::from_str(&m.machine)
        .map_err(|e| corrupt(format!("update job {}: unreadable state: {e}", m.id)))?;
    if JobState::parse(&m.state) != Some(job.state) {
        return Err(corrupt(format!(
            "update job {}: state column {:?} disagrees with its machine",
            m.id, m.state
        )));
    }
    job.id = m.id;
    Ok(UpdateJobRecord {
        id: m.id,
        device_id: m.device_id,
        target_firmware_id: m.target_firmware_id,
        delivery: m.delivery,
        job,
        version: m.version,
        created_at: m.created_at,
        updated_at: m.updated_at,
        finished_at: m.finished_at,
        campaign_id: m.campaign_id,
    })
}

fn millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn machine_json(job: &Job) -> String {
    serde_json::to_string(job).expect("an update job serialises")
}

pub struct UpdateJobStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> UpdateJobStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        UpdateJobStore { db }
    }

    /// Creates a job; `Conflict` when the device already has an active one.
    pub async fn create(
        &self,
        new: NewUpdateJob,
        now: DateTime<Utc>,
    ) -> Result<UpdateJobRecord, StoreError> {
        let txn = super::begin_write(self.db).await?;
        let model = update_job::ActiveModel {
            device_id: Set(new.device_id),
            target_firmware_id: Set(new.target_firmware_id),
            delivery: Set(new.delivery),
            state: Set(new.job.state.as_str().to_owned()),
            machine: Set(machine_json(&new.job)),
            version: Set(1),
            due_at: Set(millis(new.job.due_at_ms)),
            deadline_at: Set(millis(new.job.deadline_ms)),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
            campaign_id: Set(new.campaign_id),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        update_job_history::ActiveModel {
            job_id: Set(model.id),
            at: Set(now),
            from_state: Set(new.job.state.as_str().to_owned()),
            to_state: Set(new.job.state.as_str().to_owned()),
            note: Set("created".to_owned()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        to_record(model)
    }

    pub async fn get(&self, id: i64) -> Result<Option<UpdateJobRecord>, StoreError> {
        update_job::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .map(to_record)
            .transpose()
    }

    /// The device's job that has no verdict yet, if any.
    pub async fn active_for_device(
        &self,
        device_id: &str,
    ) -> Result<Option<UpdateJobRecord>, StoreError> {
        update_job::Entity::find()
            .filter(update_job::Column::DeviceId.eq(device_id))
            .filter(update_job::Column::FinishedAt.is_null())
            .one(self.db)
            .await?
            .map(to_record)
            .transpose()
    }

    /// The device's jobs, newest first.
    pub async fn for_device(
        &self,
        device_id: &str,
        limit: u64,
    ) -> Result<Vec<UpdateJobRecord>, StoreError> {
        update_job::Entity::find()
            .filter(update_job::Column::DeviceId.eq(device_id))
            .order_by_desc(update_job::Column::Id)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// Active jobs whose next step or deadline is due at `now`, oldest due first.
    pub async fn due(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<UpdateJobRecord>, StoreError> {
        update_job::Entity::find()
            .filter(update_job::Column::FinishedAt.is_null())
            .filter(
                Condition::any()
                    .add(update_job::Column::DueAt.lte(now))
                    .add(update_job::Column::DeadlineAt.lte(now)),
            )
            .order_by_asc(update_job::Column::DueAt)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// Stores the job after a step, only if nobody else did since `version` (`Conflict`
    /// otherwise), with one history row per transition.
    pub async fn save(
        &self,
        id: i64,
        version: i32,
        job: &Job,
        transitions: &[Transition],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = super::begin_write(self.db).await?;
        // A final job has nothing due any more.
        let (due, deadline) = if job.state.is_final() {
            (None, None)
        } else {
            (millis(job.due_at_ms), millis(job.deadline_ms))
        };
        let mut update = update_job::Entity::update_many()
            .col_expr(
                update_job::Column::State,
                Expr::value(job.state.as_str().to_owned()),
            )
            .col_expr(update_job::Column::Machine, Expr::value(machine_json(job)))
            .col_expr(update_job::Column::Version, Expr::value(version + 1))
            .col_expr(update_job::Column::DueAt, Expr::value(due))
            .col_expr(update_job::Column::DeadlineAt, Expr::value(deadline))
            .col_expr(update_job::Column::UpdatedAt, Expr::value(now))
            .filter(update_job::Column::Id.eq(id))
            .filter(update_job::Column::Version.eq(version));
        if job.state.is_final() {
            update = update.col_expr(update_job::Column::FinishedAt, Expr::value(now));
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            return Err(StoreError::Conflict(format!(
                "update job {id} changed concurrently"
            )));
        }
        // A campaign's member follows its job in the same transaction.
        if let Some(last) = transitions.last()
            && transitions.first().map(|t| t.from) != Some(last.to)
        {
            super::MemberStore::new(&txn)
                .on_job_step(id, job.state, job.result_code, job.failure.as_deref(), now)
                .await?;
        }
        for t in transitions {
            update_job_history::ActiveModel {
                job_id: Set(id),
                at: Set(now),
                from_state: Set(t.from.as_str().to_owned()),
                to_state: Set(t.to.as_str().to_owned()),
                note: Set(t.note.clone()),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn history(&self, id: i64) -> Result<Vec<HistoryLine>, StoreError> {
        Ok(update_job_history::Entity::find()
            .filter(update_job_history::Column::JobId.eq(id))
            .order_by_asc(update_job_history::Column::Id)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| HistoryLine {
                at: m.at,
                from: m.from_state,
                to: m.to_state,
                note: m.note,
            })
            .collect())
    }
}

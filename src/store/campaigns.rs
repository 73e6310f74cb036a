//! Campaigns: the campaign row (its spec and the planner's state as JSON beside the columns
//! the scheduler claims it by), the claim of a due campaign for one scheduler tick, and the
//! append-only event log.
//!
//! A tick claims its campaign inside the tick's own transaction: on PostgreSQL with `SELECT …
//! FOR UPDATE SKIP LOCKED` (another replica skips it and ticks another campaign), on SQLite
//! with the write lock the transaction took first. Everything the tick decides commits with
//! it or not at all, so no lease can outlive a dead replica.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::StoreError;
use super::entity::{campaign, event};
use crate::campaign::{CampaignState, Machine, Spec};

#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRecord {
    pub id: i64,
    pub name: String,
    pub spec: Spec,
    pub machine: Machine,
    /// Optimistic-locking version for [`CampaignStore::save`].
    pub version: i32,
    pub next_due_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// Monotonic: a later event has a larger id.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// e.g. `campaign.created`, `campaign.wave_started`, `campaign.paused`.
    pub kind: String,
    pub campaign_id: Option<i64>,
    pub device_id: Option<String>,
    pub message: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

fn to_record(m: campaign::Model) -> Result<CampaignRecord, StoreError> {
    let spec: Spec = serde_json::from_str(&m.spec)
        .map_err(|e| StoreError::Corrupt(format!("campaign {}: unreadable spec: {e}", m.id)))?;
    let machine: Machine = serde_json::from_str(&m.machine)
        .map_err(|e| StoreError::Corrupt(format!("campaign {}: unreadable state: {e}", m.id)))?;
    if CampaignState::parse(&m.state) != Some(machine.state) {
        return Err(StoreError::Corrupt(format!(
            "campaign {}: state column {:?} disagrees with its machine",
            m.id, m.state
        )));
    }
    Ok(CampaignRecord {
        id: m.id,
        name: m.name,
        spec,
        machine,
        version: m.version,
        next_due_at: m.next_due_at,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        finished_at: m.finished_at,
    })
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("campaign state serialises")
}

fn millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

pub struct CampaignStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait> CampaignStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        CampaignStore { db }
    }

    /// Records a new campaign (its members are inserted by the caller, in the same unit of
    /// work).
    pub async fn insert(
        &self,
        spec: &Spec,
        machine: &Machine,
        created_by: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let m = campaign::ActiveModel {
            name: Set(spec.name.trim().to_owned()),
            state: Set(machine.state.as_str().to_owned()),
            spec: Set(json(spec)),
            machine: Set(json(machine)),
            version: Set(1),
            next_due_at: Set(None),
            created_by: Set(created_by.map(str::to_owned)),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        Ok(m.id)
    }

    pub async fn get(&self, id: i64) -> Result<Option<CampaignRecord>, StoreError> {
        campaign::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .map(to_record)
            .transpose()
    }

    /// Reads a campaign and, on PostgreSQL, locks its row for the rest of the caller's
    /// transaction (a scheduler tick holding it is waited for). Call it on a [`super::Tx`].
    pub async fn get_for_update(&self, id: i64) -> Result<Option<CampaignRecord>, StoreError> {
        let mut q = campaign::Entity::find_by_id(id);
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            q = q.lock(LockType::Update);
        }
        q.one(self.db).await?.map(to_record).transpose()
    }

    /// Campaigns newest first, optionally in one state, a page at a time (`before` an id).
    pub async fn list(
        &self,
        state: Option<CampaignState>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<CampaignRecord>, StoreError> {
        let mut q = campaign::Entity::find();
        if let Some(state) = state {
            q = q.filter(campaign::Column::State.eq(state.as_str()));
        }
        if let Some(before) = before {
            q = q.filter(campaign::Column::Id.lt(before));
        }
        q.order_by_desc(campaign::Column::Id)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// Stores the campaign's new state only if nobody did since `version` (`Conflict`
    /// otherwise), with when the scheduler should look at it next.
    pub async fn save(
        &self,
        id: i64,
        version: i32,
        machine: &Machine,
        spec: Option<&Spec>,
        next_due_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut update = campaign::Entity::update_many()
            .col_expr(campaign::Column::State, Expr::value(machine.state.as_str()))
            .col_expr(campaign::Column::Machine, Expr::value(json(machine)))
            .col_expr(campaign::Column::Version, Expr::value(version + 1))
            .col_expr(campaign::Column::NextDueAt, Expr::value(next_due_at))
            .col_expr(campaign::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                campaign::Column::FinishedAt,
                Expr::value(millis(machine.finished_at_ms)),
            )
            .filter(campaign::Column::Id.eq(id))
            .filter(campaign::Column::Version.eq(version));
        if let Some(spec) = spec {
            update = update.col_expr(campaign::Column::Spec, Expr::value(json(spec)));
        }
        if update.exec(self.db).await?.rows_affected == 0 {
            return Err(StoreError::Conflict(format!(
                "campaign {id} changed concurrently"
            )));
        }
        Ok(())
    }

    /// Claims the campaign most overdue for a tick, for the rest of the caller's
    /// transaction (see the module's note). Call it on a [`super::Tx`] only.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<CampaignRecord>, StoreError> {
        let mut q = campaign::Entity::find()
            .filter(campaign::Column::NextDueAt.lte(now))
            .filter(campaign::Column::State.is_in([
                CampaignState::Scheduled.as_str(),
                CampaignState::Running.as_str(),
            ]))
            .order_by_asc(campaign::Column::NextDueAt)
            .limit(1);
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        q.one(self.db).await?.map(to_record).transpose()
    }

    // ---- the event log ----

    pub async fn log(
        &self,
        kind: &str,
        campaign_id: Option<i64>,
        device_id: Option<&str>,
        message: &str,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let m = event::ActiveModel {
            at: Set(now),
            kind: Set(kind.to_owned()),
            campaign_id: Set(campaign_id),
            device_id: Set(device_id.map(str::to_owned)),
            message: Set(message.to_owned()),
            data: Set(data.to_string()),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        Ok(m.id)
    }

    /// A campaign's events after `after`, oldest first.
    pub async fn events(
        &self,
        campaign_id: i64,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut q = event::Entity::find().filter(event::Column::CampaignId.eq(campaign_id));
        if let Some(after) = after {
            q = q.filter(event::Column::Id.gt(after));
        }
        Ok(q.order_by_asc(event::Column::Id)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| EventRecord {
                id: m.id,
                at: m.at,
                kind: m.kind,
                campaign_id: m.campaign_id,
                device_id: m.device_id,
                message: m.message,
                data: serde_json::from_str(&m.data).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }
}

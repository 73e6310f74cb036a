//! DM sessions: the engine state any replica can resume, and the per-session log.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::StoreError;
use super::entity::dm_session;
use sea_orm::{ConnectionTrait, TransactionTrait};

/// A session row: the serialised engine state and its optimistic-locking version.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id: i64,
    pub state_json: String,
    pub version: i32,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended: bool,
}

/// What one answered message adds to the session's row.
#[derive(Debug, Clone)]
pub struct SessionUpdate {
    pub state_json: String,
    pub encoding: &'static str,
    /// What this message decided about authentication; `None` keeps the session's verdict.
    pub auth_outcome: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub end_reason: Option<String>,
}

/// One line of a device's session log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SessionLogLine {
    pub session_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub encoding: String,
    pub auth_outcome: String,
    pub messages: i32,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub end_reason: Option<String>,
}

fn stored(m: dm_session::Model) -> StoredSession {
    StoredSession {
        id: m.id,
        state_json: m.state,
        version: m.version,
        started_at: m.started_at,
        updated_at: m.updated_at,
        ended: m.ended_at.is_some(),
    }
}

pub struct SessionStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> SessionStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        SessionStore { db }
    }

    /// The newest session row `session_id` of a device, ended or not: where the loser of a
    /// race for one message finds the reply the winner stored.
    pub async fn latest(
        &self,
        device_id: &str,
        session_id: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(dm_session::Entity::find()
            .filter(dm_session::Column::DeviceId.eq(device_id))
            .filter(dm_session::Column::SessionId.eq(session_id))
            .order_by_desc(dm_session::Column::Id)
            .one(self.db)
            .await?
            .map(stored))
    }

    /// The open (not ended) session `session_id` of a device, if any.
    pub async fn open(
        &self,
        device_id: &str,
        session_id: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(dm_session::Entity::find()
            .filter(dm_session::Column::DeviceId.eq(device_id))
            .filter(dm_session::Column::SessionId.eq(session_id))
            .filter(dm_session::Column::EndedAt.is_null())
            .order_by_desc(dm_session::Column::Id)
            .one(self.db)
            .await?
            .map(stored))
    }

    /// Starts a session row for the first message.
    pub async fn start(
        &self,
        device_id: &str,
        session_id: &str,
        update: SessionUpdate,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let ended = update.end_reason.is_some();
        let model = dm_session::ActiveModel {
            device_id: Set(device_id.to_owned()),
            session_id: Set(session_id.to_owned()),
            state: Set(update.state_json),
            version: Set(1),
            encoding: Set(update.encoding.to_owned()),
            auth_outcome: Set(update.auth_outcome.unwrap_or_else(|| "pending".to_owned())),
            messages: Set(1),
            bytes_in: Set(update.bytes_in as i64),
            bytes_out: Set(update.bytes_out as i64),
            end_reason: Set(update.end_reason),
            started_at: Set(now),
            updated_at: Set(now),
            ended_at: Set(ended.then_some(now)),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        Ok(model.id)
    }

    /// Stores the state after a message, only if nobody else did since `version`
    /// (`Conflict` otherwise: two replicas raced on one session).
    pub async fn advance(
        &self,
        id: i64,
        version: i32,
        update: SessionUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ended = update.end_reason.is_some();
        let mut query = dm_session::Entity::update_many()
            .col_expr(dm_session::Column::State, Expr::value(update.state_json))
            .col_expr(dm_session::Column::Version, Expr::value(version + 1))
            .col_expr(
                dm_session::Column::Messages,
                Expr::col(dm_session::Column::Messages).add(1),
            )
            .col_expr(
                dm_session::Column::BytesIn,
                Expr::col(dm_session::Column::BytesIn).add(update.bytes_in as i64),
            )
            .col_expr(
                dm_session::Column::BytesOut,
                Expr::col(dm_session::Column::BytesOut).add(update.bytes_out as i64),
            )
            .col_expr(dm_session::Column::UpdatedAt, Expr::value(now))
            .filter(dm_session::Column::Id.eq(id))
            .filter(dm_session::Column::Version.eq(version));
        if let Some(outcome) = update.auth_outcome {
            query = query.col_expr(dm_session::Column::AuthOutcome, Expr::value(outcome));
        }
        if ended {
            query = query
                .col_expr(
                    dm_session::Column::EndReason,
                    Expr::value(update.end_reason),
                )
                .col_expr(dm_session::Column::EndedAt, Expr::value(now));
        }
        let result = query.exec(self.db).await?;
        if result.rows_affected == 0 {
            return Err(StoreError::Conflict(format!(
                "dm session {id} changed concurrently"
            )));
        }
        Ok(())
    }

    /// Closes one session with `reason` (if it is still open).
    pub async fn close(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        dm_session::Entity::update_many()
            .col_expr(dm_session::Column::EndedAt, Expr::value(now))
            .col_expr(
                dm_session::Column::EndReason,
                Expr::value(reason.to_owned()),
            )
            .filter(dm_session::Column::Id.eq(id))
            .filter(dm_session::Column::EndedAt.is_null())
            .exec(self.db)
            .await?;
        Ok(())
    }

    /// Closes sessions idle since before `cutoff`; returns how many.
    pub async fn expire_idle(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let result = dm_session::Entity::update_many()
            .col_expr(dm_session::Column::EndedAt, Expr::value(now))
            .col_expr(dm_session::Column::EndReason, Expr::value("idle_timeout"))
            .filter(dm_session::Column::EndedAt.is_null())
            .filter(dm_session::Column::UpdatedAt.lt(cutoff))
            .exec(self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Whether the device opened session `session_id` at or after `since`.
    pub async fn seen_since(
        &self,
        device_id: &str,
        session_id: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(dm_session::Entity::find()
            .filter(dm_session::Column::DeviceId.eq(device_id))
            .filter(dm_session::Column::SessionId.eq(session_id))
            .filter(dm_session::Column::StartedAt.gte(since))
            .one(self.db)
            .await?
            .is_some())
    }

    /// The device's sessions, newest first.
    pub async fn log(
        &self,
        device_id: &str,
        limit: u64,
    ) -> Result<Vec<SessionLogLine>, StoreError> {
        Ok(dm_session::Entity::find()
            .filter(dm_session::Column::DeviceId.eq(device_id))
            .order_by_desc(dm_session::Column::Id)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| SessionLogLine {
                session_id: m.session_id,
                started_at: m.started_at,
                ended_at: m.ended_at,
                encoding: m.encoding,
                auth_outcome: m.auth_outcome,
                messages: m.messages,
                bytes_in: m.bytes_in,
                bytes_out: m.bytes_out,
                end_reason: m.end_reason,
            })
            .collect())
    }
}

//! Package 0 notifications: pending pushes, claimed by one replica at a time, until the device connects.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::StoreError;
use super::entity::notification;
use sea_orm::{ConnectionTrait, TransactionTrait};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationRecord {
    pub id: i64,
    pub device_id: String,
    /// The 16-bit session id the device must use in its Alert 1200 session.
    pub session_id: u16,
    /// `pending`, `connected` (the device opened the session) or `expired`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn to_record(m: notification::Model) -> NotificationRecord {
    NotificationRecord {
        id: m.id,
        device_id: m.device_id,
        session_id: m.session_id as u16,
        state: m.state,
        attempts: m.attempts,
        next_attempt_at: m.next_attempt_at,
        last_error: m.last_error,
        created_at: m.created_at,
    }
}

pub struct NotificationStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> NotificationStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        NotificationStore { db }
    }

    pub async fn create(
        &self,
        device_id: &str,
        session_id: u16,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
    ) -> Result<NotificationRecord, StoreError> {
        let model = notification::ActiveModel {
            device_id: Set(device_id.to_owned()),
            session_id: Set(i32::from(session_id)),
            state: Set("pending".to_owned()),
            attempts: Set(0),
            // Born claimed by its creator, who makes the first attempt (see `claim_due`).
            next_attempt_at: Set(claimed_until),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        Ok(to_record(model))
    }

    /// Pending notifications due at `now`, each claimed for this caller by moving its next
    /// attempt to `lease_until` (a compare-and-set, so two replicas never both take one).
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let due = notification::Entity::find()
            .filter(notification::Column::State.eq("pending"))
            .filter(notification::Column::NextAttemptAt.lte(now))
            .order_by_asc(notification::Column::NextAttemptAt)
            .limit(limit)
            .all(self.db)
            .await?;
        let mut claimed = Vec::new();
        for m in due {
            let result = notification::Entity::update_many()
                .col_expr(
                    notification::Column::NextAttemptAt,
                    Expr::value(lease_until),
                )
                .filter(notification::Column::Id.eq(m.id))
                .filter(notification::Column::NextAttemptAt.eq(m.next_attempt_at))
                .filter(notification::Column::State.eq("pending"))
                .exec(self.db)
                .await?;
            if result.rows_affected == 1 {
                claimed.push(to_record(m));
            }
        }
        Ok(claimed)
    }

    /// Records one delivery attempt and when the next is due.
    pub async fn attempted(
        &self,
        id: i64,
        error: Option<String>,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        notification::Entity::update_many()
            .col_expr(
                notification::Column::Attempts,
                Expr::col(notification::Column::Attempts).add(1),
            )
            .col_expr(notification::Column::LastError, Expr::value(error))
            .col_expr(
                notification::Column::NextAttemptAt,
                Expr::value(next_attempt_at),
            )
            .col_expr(notification::Column::UpdatedAt, Expr::value(now))
            .filter(notification::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }

    pub async fn finish(&self, id: i64, state: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        notification::Entity::update_many()
            .col_expr(notification::Column::State, Expr::value(state.to_owned()))
            .col_expr(notification::Column::UpdatedAt, Expr::value(now))
            .filter(notification::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: i64) -> Result<Option<NotificationRecord>, StoreError> {
        Ok(notification::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .map(to_record))
    }
}

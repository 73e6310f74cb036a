//! The management-operation queue: commands waiting for a device's next session, and their outcome.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::StoreError;
use super::entity::dm_operation;
use crate::dm::session::{Operation, QueuedOperation};
use sea_orm::{ConnectionTrait, TransactionTrait};

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Waiting for the device's next session.
    Queued,
    /// The device answered with a success status (2xx).
    Succeeded,
    /// The device answered with a failure status, or delivery failed for good.
    Failed,
}

impl OperationState {
    fn as_str(self) -> &'static str {
        match self {
            OperationState::Queued => "queued",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> OperationState {
        match s {
            "succeeded" => OperationState::Succeeded,
            "failed" => OperationState::Failed,
            _ => OperationState::Queued,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    pub id: i64,
    pub device_id: String,
    pub operation: Operation,
    pub sequence_group: Option<String>,
    pub state: OperationState,
    pub status_code: Option<u16>,
    pub results: Option<serde_json::Value>,
    pub failure: Option<String>,
    pub session_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn to_record(m: dm_operation::Model) -> Result<OperationRecord, StoreError> {
    let operation = serde_json::from_str(&m.operation)
        .map_err(|e| StoreError::Database(sea_orm::DbErr::Json(e.to_string())))?;
    Ok(OperationRecord {
        id: m.id,
        device_id: m.device_id,
        operation,
        sequence_group: m.sequence_group,
        state: OperationState::parse(&m.state),
        status_code: m.status_code.map(|c| c as u16),
        results: m.results.and_then(|r| serde_json::from_str(&r).ok()),
        failure: m.failure,
        session_id: m.session_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

pub struct OperationStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> OperationStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        OperationStore { db }
    }

    pub async fn enqueue(
        &self,
        device_id: &str,
        operation: &Operation,
        sequence_group: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<OperationRecord, StoreError> {
        let json = serde_json::to_string(operation).expect("operations serialise");
        let model = dm_operation::ActiveModel {
            device_id: Set(device_id.to_owned()),
            operation: Set(json),
            sequence_group: Set(sequence_group),
            state: Set(OperationState::Queued.as_str().to_owned()),
            status_code: Set(None),
            results: Set(None),
            failure: Set(None),
            session_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        to_record(model)
    }

    /// The device's queued operations, oldest first, as the engine takes them.
    pub async fn queued_for(&self, device_id: &str) -> Result<Vec<QueuedOperation>, StoreError> {
        dm_operation::Entity::find()
            .filter(dm_operation::Column::DeviceId.eq(device_id))
            .filter(dm_operation::Column::State.eq(OperationState::Queued.as_str()))
            .order_by_asc(dm_operation::Column::Id)
            .limit(1000)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| {
                let record = to_record(m)?;
                Ok(QueuedOperation {
                    id: record.id.to_string(),
                    operation: record.operation,
                    sequence_group: record.sequence_group,
                })
            })
            .collect()
    }

    /// Records the device's status for an operation: 2xx succeeds, anything else fails.
    pub async fn record_status(
        &self,
        id: i64,
        status: u16,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let state = if (200..300).contains(&status) {
            OperationState::Succeeded
        } else {
            OperationState::Failed
        };
        dm_operation::Entity::update_many()
            .col_expr(dm_operation::Column::State, Expr::value(state.as_str()))
            .col_expr(
                dm_operation::Column::StatusCode,
                Expr::value(i32::from(status)),
            )
            .col_expr(
                dm_operation::Column::SessionId,
                Expr::value(session_id.to_owned()),
            )
            .col_expr(dm_operation::Column::UpdatedAt, Expr::value(now))
            .filter(dm_operation::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }

    pub async fn record_results(
        &self,
        id: i64,
        results: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dm_operation::Entity::update_many()
            .col_expr(
                dm_operation::Column::Results,
                Expr::value(results.to_string()),
            )
            .col_expr(dm_operation::Column::UpdatedAt, Expr::value(now))
            .filter(dm_operation::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }

    /// Delivery did not happen: stays queued for a later session, or fails for good.
    pub async fn record_not_delivered(
        &self,
        id: i64,
        reason: &str,
        retry_later: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let state = if retry_later {
            OperationState::Queued
        } else {
            OperationState::Failed
        };
        dm_operation::Entity::update_many()
            .col_expr(dm_operation::Column::State, Expr::value(state.as_str()))
            .col_expr(
                dm_operation::Column::Failure,
                Expr::value(reason.to_owned()),
            )
            .col_expr(dm_operation::Column::UpdatedAt, Expr::value(now))
            .filter(dm_operation::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: i64) -> Result<Option<OperationRecord>, StoreError> {
        dm_operation::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .map(to_record)
            .transpose()
    }

    /// The device's operations, newest first.
    pub async fn for_device(
        &self,
        device_id: &str,
        limit: u64,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        dm_operation::Entity::find()
            .filter(dm_operation::Column::DeviceId.eq(device_id))
            .order_by_desc(dm_operation::Column::Id)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }
}

//! The management-operation queue and lifecycle: commands waiting for a device's next session,
//! where each one is (queued → sent → done / failed, accepted, expired, cancelled), and the
//! outcome log an operation's owner reads.
//!
//! Every state change is a compare-and-set on the state the change starts from, and writes an
//! event row in the same transaction; an event's `owner` lets the owner of an operation (an
//! update job) learn its outcomes from the database, whichever replica recorded them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};

use super::StoreError;
use super::entity::{dm_operation, dm_operation_event};
use crate::dm::session::{Operation, QueuedOperation};

/// The most queued operations read for one device message: more than a reply can carry at
/// any realistic MaxMsgSize, and the rest follow in the session's next messages.
pub const QUEUE_WINDOW: u64 = 64;

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Waiting for the device's next session.
    Queued,
    /// In a session, awaiting the device's Status (or a Get's Results).
    Sent,
    /// An Exec answered 202: its outcome comes later in a Generic Alert with its Correlator.
    Accepted,
    /// The device reported success (2xx, or a successful Generic Alert result).
    Done,
    /// The device reported failure, or the command could not be delivered.
    Failed,
    /// Sent, but the session ended without its status. Never resent by itself: its owner (or
    /// an operator, with `requeue`) decides.
    Expired,
    /// Withdrawn before it was sent.
    Cancelled,
}

impl OperationState {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Queued => "queued",
            OperationState::Sent => "sent",
            OperationState::Accepted => "accepted",
            OperationState::Done => "done",
            OperationState::Failed => "failed",
            OperationState::Expired => "expired",
            OperationState::Cancelled => "cancelled",
        }
    }

    /// Reads a stored state; an unknown name is an error, never a default.
    pub fn parse(s: &str) -> Result<OperationState, StoreError> {
        Ok(match s {
            "queued" => OperationState::Queued,
            "sent" => OperationState::Sent,
            "accepted" => OperationState::Accepted,
            "done" => OperationState::Done,
            "failed" => OperationState::Failed,
            "expired" => OperationState::Expired,
            "cancelled" => OperationState::Cancelled,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown operation state {other:?}"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    pub id: i64,
    pub device_id: String,
    pub operation: Operation,
    pub sequence_group: Option<String>,
    pub owner: Option<String>,
    pub state: OperationState,
    pub status_code: Option<u16>,
    /// The result code of the Generic Alert that reported an accepted Exec.
    pub result_code: Option<u32>,
    pub results: Option<serde_json::Value>,
    pub failure: Option<String>,
    pub session_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One state an operation entered, as its owner reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationEvent {
    /// Increasing: an owner reads on from the last id it saw.
    pub id: i64,
    pub operation_id: i64,
    pub owner: Option<String>,
    pub state: OperationState,
    pub status_code: Option<u16>,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// An operation to queue.
#[derive(Debug, Clone)]
pub struct NewOperation<'a> {
    pub device_id: &'a str,
    pub operation: &'a Operation,
    pub sequence_group: Option<String>,
    /// Who learns its outcome, e.g. `update_job:42`.
    pub owner: Option<String>,
}

/// What a recorded device outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The operation moved to this state.
    Applied(OperationState),
    /// Nothing changed: the operation is in this state, which the outcome does not apply to.
    Ignored(OperationState),
}

/// Why an operator's action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The action does not apply to an operation in this state.
    WrongState(OperationState),
    /// Requeueing an Exec could run it twice on the device: it needs `force`.
    ExecNeedsForce,
}

fn to_record(m: dm_operation::Model) -> Result<OperationRecord, StoreError> {
    let operation = serde_json::from_str(&m.operation)
        .map_err(|e| StoreError::Corrupt(format!("operation {}: command JSON: {e}", m.id)))?;
    let results = m
        .results
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("operation {}: results JSON: {e}", m.id)))?;
    Ok(OperationRecord {
        id: m.id,
        state: OperationState::parse(&m.state)?,
        device_id: m.device_id,
        operation,
        sequence_group: m.sequence_group,
        owner: m.owner,
        status_code: m.status_code.map(|c| c as u16),
        result_code: m.result_code.map(|c| c as u32),
        results,
        failure: m.failure,
        session_id: m.session_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn to_event(m: dm_operation_event::Model) -> Result<OperationEvent, StoreError> {
    Ok(OperationEvent {
        id: m.id,
        operation_id: m.operation_id,
        owner: m.owner,
        state: OperationState::parse(&m.state)?,
        status_code: m.status_code.map(|c| c as u16),
        detail: m.detail,
        at: m.at,
    })
}

/// Column changes that go with a state change.
#[derive(Default)]
pub(super) struct Change {
    pub status_code: Option<u16>,
    pub result_code: Option<u32>,
    pub failure: Option<String>,
    pub results: Option<String>,
    pub session: Option<(i64, String)>,
    /// Requeue: clear the previous attempt's outcome.
    pub reset: bool,
}

pub struct OperationStore<'a, C = DatabaseConnection> {
    pub(super) db: &'a C,
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
        self.enqueue_new(
            NewOperation {
                device_id,
                operation,
                sequence_group,
                owner: None,
            },
            now,
        )
        .await
    }

    pub async fn enqueue_new(
        &self,
        new: NewOperation<'_>,
        now: DateTime<Utc>,
    ) -> Result<OperationRecord, StoreError> {
        let json = serde_json::to_string(new.operation).expect("operations serialise");
        let txn = super::begin_write(self.db).await?;
        let model = dm_operation::ActiveModel {
            device_id: Set(new.device_id.to_owned()),
            operation: Set(json),
            sequence_group: Set(new.sequence_group),
            owner: Set(new.owner.clone()),
            correlator: Set(new.operation.correlator().map(str::to_owned)),
            state: Set(OperationState::Queued.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        insert_event(
            &txn,
            model.id,
            new.owner,
            OperationState::Queued,
            None,
            None,
            now,
        )
        .await?;
        txn.commit().await?;
        to_record(model)
    }

    /// The device's queued operations, oldest first, at most [`QUEUE_WINDOW`] of them (an
    /// index on (device, state, id) serves this read).
    ///
    /// With `session_row`, the operations sent in that session and not answered yet come too:
    /// the engine skips those it has sent, and sends again one it put back because the device
    /// refused our credentials (see [`OperationStore::put_back`]).
    pub async fn queued_for(
        &self,
        device_id: &str,
        session_row: Option<i64>,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        let queued = dm_operation::Column::State.eq(OperationState::Queued.as_str());
        let wanted = match session_row {
            Some(row) => sea_orm::Condition::any().add(queued).add(
                sea_orm::Condition::all()
                    .add(dm_operation::Column::State.eq(OperationState::Sent.as_str()))
                    .add(dm_operation::Column::SessionRow.eq(row)),
            ),
            None => sea_orm::Condition::all().add(queued),
        };
        dm_operation::Entity::find()
            .filter(dm_operation::Column::DeviceId.eq(device_id))
            .filter(wanted)
            .order_by_asc(dm_operation::Column::Id)
            .limit(QUEUE_WINDOW)
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

    /// Withdraws a queued operation. Refused once it has been sent.
    pub async fn cancel(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<OperationRecord, Refusal>, StoreError> {
        let change = Change::default();
        match self
            .transition(
                id,
                &[OperationState::Queued],
                OperationState::Cancelled,
                change,
                now,
            )
            .await?
        {
            Outcome::Applied(_) => Ok(Ok(self.get(id).await?.ok_or(StoreError::NotFound)?)),
            Outcome::Ignored(state) => Ok(Err(Refusal::WrongState(state))),
        }
    }

    /// Queues an expired, failed or cancelled operation again (its previous outcome is
    /// cleared; the event log keeps it). An Exec needs `force`: it may have run already.
    /// A sent operation the device did not execute because it refused our credentials (401/407
    /// on the command under a refused SyncHdr): back to `queued`, so that the message being
    /// answered sends it again. Nothing of the attempt is kept.
    pub async fn put_back(
        &self,
        id: i64,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let change = Change {
            reset: true,
            failure: None,
            ..Change::default()
        };
        let outcome = self
            .transition(
                id,
                &[OperationState::Sent],
                OperationState::Queued,
                change,
                now,
            )
            .await?;
        if let Outcome::Ignored(state) = outcome {
            tracing::warn!(
                operation.id = id,
                dm.status = status,
                state = state.as_str(),
                "refused operation not put back: it is no longer sent"
            );
        }
        Ok(outcome)
    }

    pub async fn requeue(
        &self,
        id: i64,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<Result<OperationRecord, Refusal>, StoreError> {
        let record = self.get(id).await?.ok_or(StoreError::NotFound)?;
        let from = [
            OperationState::Expired,
            OperationState::Failed,
            OperationState::Cancelled,
        ];
        if !from.contains(&record.state) {
            return Ok(Err(Refusal::WrongState(record.state)));
        }
        if record.operation.is_exec() && !force {
            return Ok(Err(Refusal::ExecNeedsForce));
        }
        let change = Change {
            reset: true,
            ..Change::default()
        };
        match self
            .transition(id, &from, OperationState::Queued, change, now)
            .await?
        {
            Outcome::Applied(_) => Ok(Ok(self.get(id).await?.ok_or(StoreError::NotFound)?)),
            Outcome::Ignored(state) => Ok(Err(Refusal::WrongState(state))),
        }
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

    /// The state changes of `owner`'s operations after event `after` (0 for all), oldest
    /// first: how an owner learns outcomes, reading on from the last id it handled.
    /// Operations whose owner starts with `prefix` (an owner's own operations), oldest first.
    pub async fn owned_by(&self, prefix: &str) -> Result<Vec<OperationRecord>, StoreError> {
        dm_operation::Entity::find()
            .filter(dm_operation::Column::Owner.starts_with(prefix))
            .order_by_asc(dm_operation::Column::Id)
            .limit(200)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    pub async fn outcomes_for_owner(
        &self,
        owner: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<OperationEvent>, StoreError> {
        dm_operation_event::Entity::find()
            .filter(dm_operation_event::Column::Owner.eq(owner))
            .filter(dm_operation_event::Column::Id.gt(after))
            .order_by_asc(dm_operation_event::Column::Id)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_event)
            .collect()
    }

    /// Every state change of one operation, oldest first.
    pub async fn history(&self, id: i64) -> Result<Vec<OperationEvent>, StoreError> {
        dm_operation_event::Entity::find()
            .filter(dm_operation_event::Column::OperationId.eq(id))
            .order_by_asc(dm_operation_event::Column::Id)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_event)
            .collect()
    }

    /// Moves operation `id` from one of `from` to `to` (compare-and-set) and logs the event,
    /// in one transaction.
    pub(super) async fn transition(
        &self,
        id: i64,
        from: &[OperationState],
        to: OperationState,
        change: Change,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let txn = super::begin_write(self.db).await?;
        let Some(current) = dm_operation::Entity::find_by_id(id).one(&txn).await? else {
            return Err(StoreError::NotFound);
        };
        let state = OperationState::parse(&current.state)?;
        if !from.contains(&state) {
            return Ok(Outcome::Ignored(state));
        }
        let value = |v: Option<SimpleExpr>| v.unwrap_or_else(|| Expr::cust("NULL"));
        let mut update = dm_operation::Entity::update_many()
            .col_expr(dm_operation::Column::State, Expr::value(to.as_str()))
            .col_expr(dm_operation::Column::UpdatedAt, Expr::value(now))
            .filter(dm_operation::Column::Id.eq(id))
            .filter(dm_operation::Column::State.eq(state.as_str()));
        if change.reset {
            for col in [
                dm_operation::Column::StatusCode,
                dm_operation::Column::ResultCode,
                dm_operation::Column::Results,
                dm_operation::Column::Failure,
                dm_operation::Column::SessionId,
                dm_operation::Column::SessionRow,
            ] {
                update = update.col_expr(col, value(None));
            }
        }
        if let Some(code) = change.status_code {
            update = update.col_expr(
                dm_operation::Column::StatusCode,
                Expr::value(i32::from(code)),
            );
        }
        if let Some(code) = change.result_code {
            update = update.col_expr(dm_operation::Column::ResultCode, Expr::value(code as i32));
        }
        if let Some(failure) = &change.failure {
            update = update.col_expr(dm_operation::Column::Failure, Expr::value(failure.clone()));
        }
        if let Some(results) = change.results {
            update = update.col_expr(dm_operation::Column::Results, Expr::value(results));
        }
        if let Some((row, session_id)) = change.session {
            update = update
                .col_expr(dm_operation::Column::SessionRow, Expr::value(row))
                .col_expr(dm_operation::Column::SessionId, Expr::value(session_id));
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            return Ok(Outcome::Ignored(state));
        }
        let status = change
            .status_code
            .or(current.status_code.map(|c| c as u16))
            .filter(|_| !change.reset);
        insert_event(&txn, id, current.owner, to, status, change.failure, now).await?;
        txn.commit().await?;
        Ok(Outcome::Applied(to))
    }
}

async fn insert_event(
    db: &impl ConnectionTrait,
    operation_id: i64,
    owner: Option<String>,
    state: OperationState,
    status_code: Option<u16>,
    detail: Option<String>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    dm_operation_event::ActiveModel {
        operation_id: Set(operation_id),
        owner: Set(owner),
        state: Set(state.as_str().to_owned()),
        status_code: Set(status_code.map(i32::from)),
        detail: Set(detail),
        at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_and_an_unknown_one_is_an_error() {
        use OperationState::*;
        for s in [Queued, Sent, Accepted, Done, Failed, Expired, Cancelled] {
            assert_eq!(OperationState::parse(s.as_str()).unwrap(), s);
        }
        assert!(matches!(
            OperationState::parse("succeeded"),
            Err(StoreError::Corrupt(_))
        ));
    }
}

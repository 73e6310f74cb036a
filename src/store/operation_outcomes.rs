//! The device's side of the operation lifecycle: an operation sent, its Status, its Results
//! (inline, or a Large Object staged chunk by chunk), the Generic Alert that settles an
//! accepted Exec, failures, and the expiry of operations whose session ended without a status.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use super::StoreError;
use super::entity::{dm_operation, dm_result_chunk, dm_session};
use super::operations::{Change, OperationState, OperationStore, Outcome};

impl<C: ConnectionTrait + TransactionTrait> OperationStore<'_, C> {
    /// The operation went out in session row `session_row`. `Conflict` when it is no longer
    /// queued (cancelled meanwhile): the caller must not send the reply that carries it.
    pub async fn mark_sent(
        &self,
        id: i64,
        session_row: i64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let change = Change {
            session: Some((session_row, session_id.to_owned())),
            ..Change::default()
        };
        match self
            .transition(
                id,
                &[OperationState::Queued],
                OperationState::Sent,
                change,
                now,
            )
            .await?
        {
            Outcome::Applied(_) => Ok(()),
            Outcome::Ignored(state) => Err(StoreError::Conflict(format!(
                "operation {id} is {} and cannot be sent",
                state.as_str()
            ))),
        }
    }

    /// Records the device's Status for a sent operation. 2xx is `done`, except a Get, which
    /// is done once its Results are in, and an Exec answered 202, which is `accepted` until
    /// its Generic Alert; anything else is `failed`.
    pub async fn record_status(
        &self,
        id: i64,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let record = self.get(id).await?.ok_or(StoreError::NotFound)?;
        if record.state != OperationState::Sent || record.status_code.is_some() {
            return Ok(Outcome::Ignored(record.state));
        }
        let to = if !(200..300).contains(&status) {
            OperationState::Failed
        } else if status == 202 && record.operation.is_exec() {
            OperationState::Accepted
        } else if record.operation.is_get() && record.results.is_none() {
            // The Results follow (maybe as a Large Object over several messages).
            return self.set_status_code(id, status, now).await;
        } else {
            OperationState::Done
        };
        let change = Change {
            status_code: Some(status),
            ..Change::default()
        };
        self.transition(id, &[OperationState::Sent], to, change, now)
            .await
    }

    async fn set_status_code(
        &self,
        id: i64,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        dm_operation::Entity::update_many()
            .col_expr(
                dm_operation::Column::StatusCode,
                Expr::value(i32::from(status)),
            )
            .col_expr(dm_operation::Column::UpdatedAt, Expr::value(now))
            .filter(dm_operation::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(Outcome::Applied(OperationState::Sent))
    }

    /// Records a Get's Results (inline items, or a reference to a published object): the Get
    /// is done when its Status was a success.
    pub async fn record_results(
        &self,
        id: i64,
        results: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let record = self.get(id).await?.ok_or(StoreError::NotFound)?;
        if record.state != OperationState::Sent {
            return Ok(Outcome::Ignored(record.state));
        }
        let ok = record.status_code.is_some_and(|c| (200..300).contains(&c));
        if ok {
            let change = Change {
                results: Some(results.to_string()),
                ..Change::default()
            };
            return self
                .transition(
                    id,
                    &[OperationState::Sent],
                    OperationState::Done,
                    change,
                    now,
                )
                .await;
        }
        // Results before the Status: kept; the Status decides.
        dm_operation::Entity::update_many()
            .col_expr(
                dm_operation::Column::Results,
                Expr::value(results.to_string()),
            )
            .col_expr(dm_operation::Column::UpdatedAt, Expr::value(now))
            .filter(dm_operation::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(Outcome::Applied(OperationState::Sent))
    }

    /// The operation fails for `reason` (before or after it was sent).
    pub async fn fail(
        &self,
        id: i64,
        reason: &str,
        status: Option<u16>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let change = Change {
            failure: Some(reason.to_owned()),
            status_code: status,
            ..Change::default()
        };
        let from = [OperationState::Queued, OperationState::Sent];
        let outcome = self
            .transition(id, &from, OperationState::Failed, change, now)
            .await?;
        self.drop_staged(id).await?;
        Ok(outcome)
    }

    /// A sent operation whose status will not come (the device closed its package or aborted
    /// without one): `expired`.
    pub async fn expire(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let change = Change {
            failure: Some(reason.to_owned()),
            ..Change::default()
        };
        let outcome = self
            .transition(
                id,
                &[OperationState::Sent],
                OperationState::Expired,
                change,
                now,
            )
            .await?;
        self.drop_staged(id).await?;
        Ok(outcome)
    }

    /// Session row `session_row` ended: its operations still awaiting a status expire.
    /// Returns their ids.
    pub async fn expire_session(
        &self,
        session_row: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> = dm_operation::Entity::find()
            .select_only()
            .column(dm_operation::Column::Id)
            .filter(dm_operation::Column::SessionRow.eq(session_row))
            .filter(dm_operation::Column::State.eq(OperationState::Sent.as_str()))
            .into_tuple()
            .all(self.db)
            .await?;
        let mut expired = Vec::new();
        for id in ids {
            if let Outcome::Applied(_) = self.expire(id, reason, now).await? {
                expired.push(id);
            }
        }
        Ok(expired)
    }

    /// Sent operations whose session has ended by any path (the idle sweep closes sessions in
    /// bulk): they expire. Returns how many.
    pub async fn expire_orphaned(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let ended = Query::select()
            .column(dm_session::Column::Id)
            .from(dm_session::Entity)
            .and_where(dm_session::Column::EndedAt.is_not_null())
            .to_owned();
        let ids: Vec<i64> = dm_operation::Entity::find()
            .select_only()
            .column(dm_operation::Column::Id)
            .filter(dm_operation::Column::State.eq(OperationState::Sent.as_str()))
            .filter(dm_operation::Column::SessionRow.in_subquery(ended))
            .into_tuple()
            .all(self.db)
            .await?;
        let mut n = 0;
        for id in ids {
            let reason = "the session ended without a status";
            if let Outcome::Applied(_) = self.expire(id, reason, now).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// A Generic Alert with `correlator` reported the outcome of the device's accepted Execs:
    /// a result code of 2xx is `done`, anything else (or none) `failed`. Returns the
    /// operations it settled.
    pub async fn record_report(
        &self,
        device_id: &str,
        correlator: &str,
        result_code: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, OperationState)>, StoreError> {
        let ids: Vec<i64> = dm_operation::Entity::find()
            .select_only()
            .column(dm_operation::Column::Id)
            .filter(dm_operation::Column::DeviceId.eq(device_id))
            .filter(dm_operation::Column::Correlator.eq(correlator))
            .filter(dm_operation::Column::State.eq(OperationState::Accepted.as_str()))
            .into_tuple()
            .all(self.db)
            .await?;
        let (to, failure) = match result_code {
            Some(c) if (200..300).contains(&c) => (OperationState::Done, None),
            Some(c) => (
                OperationState::Failed,
                Some(format!("the device reported result code {c}")),
            ),
            None => (
                OperationState::Failed,
                Some("the device's report carried no result code".to_owned()),
            ),
        };
        let mut settled = Vec::new();
        for id in ids {
            let change = Change {
                result_code,
                failure: failure.clone(),
                ..Change::default()
            };
            if let Outcome::Applied(s) = self
                .transition(id, &[OperationState::Accepted], to, change, now)
                .await?
            {
                settled.push((id, s));
            }
        }
        Ok(settled)
    }

    // ---- a device's Large Object result, staged outside the session state --------------

    /// Stages chunk `seq` of operation `id`'s incoming object (a replayed chunk conflicts).
    pub async fn stage_chunk(&self, id: i64, seq: u32, bytes: &[u8]) -> Result<(), StoreError> {
        dm_result_chunk::ActiveModel {
            operation_id: Set(id),
            seq: Set(seq as i32),
            data: Set(bytes.to_vec()),
        }
        .insert(self.db)
        .await?;
        Ok(())
    }

    /// Up to `limit` staged chunks of operation `id` from `from_seq` on, in order.
    pub async fn staged_chunks(
        &self,
        id: i64,
        from_seq: u32,
        limit: u64,
    ) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        Ok(dm_result_chunk::Entity::find()
            .filter(dm_result_chunk::Column::OperationId.eq(id))
            .filter(dm_result_chunk::Column::Seq.gte(from_seq as i32))
            .order_by_asc(dm_result_chunk::Column::Seq)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| (m.seq as u32, m.data))
            .collect())
    }

    pub async fn drop_staged(&self, id: i64) -> Result<(), StoreError> {
        dm_result_chunk::Entity::delete_many()
            .filter(dm_result_chunk::Column::OperationId.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }
}

//! The update worker: every replica runs it; jobs due for a time-based step (a retry, a chase
//! of a missing report, a deadline) are stepped under their optimistic version, so two
//! replicas never both take one step, and the step's actions are written in its transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Updates;
use crate::fumo::{Action, Event};
use crate::store::{StoreError, Tx, UpdateJobRecord};

/// Jobs stepped per pass at most.
const BATCH: u64 = 200;

impl Updates {
    /// One pass: steps every due job; returns how many changed.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let policy = self.policy();
        let mut changed = 0;
        for record in self.store.update_jobs().due(now, BATCH).await? {
            let mut job = record.job.clone();
            let step = job.on(Event::Tick, now.timestamp_millis(), &policy);
            if step.transitions.is_empty() && step.actions.is_empty() && job == record.job {
                continue;
            }
            let tx = self.store.begin().await?;
            match tx
                .update_jobs()
                .save(record.id, record.version, &job, &step.transitions, now)
                .await
            {
                // Another replica stepped it first.
                Err(StoreError::Conflict(_)) => continue,
                other => other?,
            }
            let record = UpdateJobRecord { job, ..record };
            self.apply_actions(&tx, &record, &step.actions, now).await?;
            tx.commit().await?;
            changed += 1;
        }
        Ok(changed)
    }
}

impl Updates {
    /// Writes a step's actions in the step's transaction (`record` carries the stepped job).
    pub(crate) async fn apply_actions(
        &self,
        tx: &Tx,
        record: &UpdateJobRecord,
        actions: &[Action],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for action in actions {
            match action {
                Action::Notify => {
                    if let Some(device) = tx.devices().get(&record.device_id).await?
                        && self.notifier.queue_in(tx, &device, now).await?.is_none()
                    {
                        tracing::info!(update.id = record.id, device.id = %record.device_id, "no Package 0 transport: waiting for the device's own session");
                    }
                }
                other => {
                    self.queue(tx, record, other, now).await?;
                }
            }
        }
        Ok(())
    }
}

/// Runs [`Updates::tick`] every `tick_ms` until `stop` fires.
pub async fn run(updates: Updates, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(updates.config.tick_ms.max(50)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(err) = updates.tick(Utc::now()).await {
                    tracing::error!(error = %err, "update worker pass failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

//! The DM-session side of update jobs: queueing the reads and deliveries a job decides.

use chrono::{DateTime, Utc};

use crate::fumo::Action;
use crate::store::{StoreError, Tx, UpdateJobRecord};

/// Queues the DM operations of one action for the job's device.
pub(crate) async fn queue_action(
    _tx: &Tx,
    _record: &UpdateJobRecord,
    _action: &Action,
    _now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Ok(())
}

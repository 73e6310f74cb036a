//! The operator's actions on a campaign: start, pause, resume, cancel, retry the failed
//! devices, and edit exclusions and policies while paused. Each is one transaction that locks
//! the campaign row first, so it never races a scheduler tick.

use chrono::{DateTime, Utc};

use super::{CampaignError, Campaigns};
use crate::campaign::{Cohort, PauseReason, Policy};
use crate::store::{CampaignRecord, Tx};

/// An edit of a paused (or draft) campaign.
#[derive(Debug, Clone, Default)]
pub struct CampaignPatch {
    pub exclude_cohorts: Vec<CohortRef>,
    pub policy: Option<Policy>,
}

/// A cohort as an operator names it: the manufacturer may be left out.
#[derive(Debug, Clone)]
pub struct CohortRef {
    pub manufacturer: Option<String>,
    pub model: String,
    pub version: String,
}

impl CohortRef {
    fn matches(&self, c: &Cohort) -> bool {
        c.model == self.model
            && c.version == self.version
            && self
                .manufacturer
                .as_ref()
                .is_none_or(|m| *m == c.manufacturer)
    }
}

fn not_now(e: impl std::fmt::Display) -> CampaignError {
    CampaignError::NotNow(e.to_string())
}

impl Campaigns {
    async fn locked(&self, tx: &Tx, id: i64) -> Result<CampaignRecord, CampaignError> {
        tx.campaigns()
            .get_for_update(id)
            .await?
            .ok_or(CampaignError::NotFound(id))
    }

    async fn finish(
        &self,
        tx: Tx,
        record: &CampaignRecord,
        (kind, message, data): (&str, String, serde_json::Value),
        wake: bool,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let next_due = (wake && !record.machine.state.is_final()).then_some(now);
        tx.campaigns()
            .save(
                record.id,
                record.version,
                &record.machine,
                Some(&record.spec),
                next_due,
                now,
            )
            .await?;
        tx.campaigns()
            .log(kind, Some(record.id), None, &message, data, now)
            .await?;
        tx.commit().await?;
        tracing::info!(campaign.id = record.id, event = kind, "{message}");
        Ok(())
    }

    pub async fn start(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<(), CampaignError> {
        let tx = self.store.begin().await?;
        let mut r = self.locked(&tx, id).await?;
        r.machine.start().map_err(not_now)?;
        self.finish(
            tx,
            &r,
            (
                "campaign.scheduled",
                format!("started by {by}"),
                serde_json::json!({"by": by}),
            ),
            true,
            now,
        )
        .await
    }

    pub async fn pause(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<(), CampaignError> {
        let tx = self.store.begin().await?;
        let mut r = self.locked(&tx, id).await?;
        let reason = PauseReason::operator(by, now.timestamp_millis());
        r.machine.pause(reason.clone()).map_err(not_now)?;
        self.finish(
            tx,
            &r,
            (
                "campaign.paused",
                reason.message.clone(),
                serde_json::to_value(&reason).unwrap_or_default(),
            ),
            false,
            now,
        )
        .await
    }

    pub async fn resume(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<(), CampaignError> {
        let tx = self.store.begin().await?;
        let mut r = self.locked(&tx, id).await?;
        let tally = tx.members().tally(id).await?;
        r.machine.resume(&tally, &r.spec.policy).map_err(not_now)?;
        self.finish(
            tx,
            &r,
            (
                "campaign.resumed",
                format!("resumed by {by}"),
                serde_json::json!({"by": by}),
            ),
            true,
            now,
        )
        .await
    }

    /// Stops new starts at once, cancels the members not started and the jobs whose Exec has
    /// not gone out; jobs in flight run to their verdict and are recorded.
    pub async fn cancel(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<(), CampaignError> {
        let tx = self.store.begin().await?;
        let mut r = self.locked(&tx, id).await?;
        r.machine.cancel(now.timestamp_millis()).map_err(not_now)?;
        let planned = tx.members().cancel_planned(id).await?;
        let mut cancelled_jobs = 0;
        for job in tx.members().jobs_in_flight(id).await? {
            if self.updates.cancel_in(&tx, job, now).await? {
                cancelled_jobs += 1;
            }
        }
        tx.members().release(id).await?;
        self.finish(tx, &r, ("campaign.cancelled", format!("cancelled by {by}: {planned} devices not started, {cancelled_jobs} jobs not yet sent"), serde_json::json!({"by": by, "not_started": planned, "jobs_cancelled": cancelled_jobs})), false, now)
        .await
    }

    /// Plans the failed devices again (each gets a new update job when it starts).
    pub async fn retry_failed(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, CampaignError> {
        let tx = self.store.begin().await?;
        let mut r = self.locked(&tx, id).await?;
        r.machine.retry_failed().map_err(not_now)?;
        let n = tx.members().retry_failed(id).await?;
        self.finish(
            tx,
            &r,
            (
                "campaign.retrying",
                format!("{n} failed devices planned again by {by}"),
                serde_json::json!({"by": by, "devices": n}),
            ),
            true,
            now,
        )
        .await?;
        Ok(n)
    }

    /// Edits exclusions and policies of a paused or draft campaign.
    pub async fn patch(
        &self,
        id: i64,
        patch: &CampaignPatch,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let tx = self.store.begin().await?;
        let mut r = self.locked(&tx, id).await?;
        if !r.machine.editable() {
            return Err(CampaignError::NotNow(format!(
                "a {} campaign cannot be edited: pause it first",
                r.machine.state.as_str()
            )));
        }
        if let Some(policy) = patch.policy {
            r.spec.policy = policy;
            r.spec.validate()?;
        }
        let cohorts = tx.members().tally(id).await?.cohorts();
        let mut excluded = Vec::new();
        for want in &patch.exclude_cohorts {
            let matching: Vec<&Cohort> = cohorts.iter().filter(|c| want.matches(c)).collect();
            if matching.is_empty() {
                return Err(CampaignError::NotNow(format!(
                    "no cohort {} {} in this campaign",
                    want.model, want.version
                )));
            }
            for c in matching {
                let n = tx.members().exclude_cohort(id, c).await?;
                excluded.push(serde_json::json!({
                    "manufacturer": c.manufacturer, "model": c.model, "version": c.version, "devices": n
                }));
            }
        }
        self.finish(
            tx,
            &r,
            (
                "campaign.edited",
                format!(
                    "edited by {by}: {} cohorts excluded{}",
                    excluded.len(),
                    if patch.policy.is_some() {
                        ", policy changed"
                    } else {
                        ""
                    }
                ),
                serde_json::json!({"by": by, "excluded": excluded, "policy": patch.policy}),
            ),
            false,
            now,
        )
        .await
    }
}

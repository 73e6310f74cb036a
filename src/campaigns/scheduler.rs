//! The campaign scheduler: every replica runs it. A tick claims a due campaign inside its own
//! transaction (`SKIP LOCKED` on PostgreSQL, the write lock on SQLite), loads what the planner
//! needs through indexed, bounded reads (the counts, one batch of candidates, the last
//! minute's starts), runs the planner, and applies its decisions (update jobs with their
//! Package 0, member states, the campaign's state and next due time, events) in that same
//! transaction. Two replicas never start one device, and a replica that dies mid-tick leaves
//! nothing half done.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Campaigns, packages};
use crate::campaign::planner::{Happened, MINUTE};
use crate::campaign::window;
use crate::campaign::{CampaignState, Cohort, CohortReadiness, Input, MemberState, plan};
use crate::store::{CampaignRecord, StoreError, Tx, exclusion};
use crate::updates::{Delivery, JobPlan};

/// Campaigns one pass ticks at most (each in its own transaction).
const CAMPAIGNS_PER_PASS: usize = 16;

impl Campaigns {
    /// One pass of the scheduler: ticks every due campaign (up to a bound); returns how many.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut ticked = 0;
        while ticked < CAMPAIGNS_PER_PASS {
            let began = std::time::Instant::now();
            let tx = self.store.begin().await?;
            let Some(record) = tx.campaigns().claim_due(now).await? else {
                tx.rollback().await?;
                break;
            };
            let id = record.id;
            if let Err(err) = self.step(&tx, record, now).await {
                tracing::error!(campaign.id = id, error = %err, "campaign tick failed");
                tx.rollback().await?;
                // Look again later, not in this pass.
                let tx = self.store.begin().await?;
                if let Some(r) = tx.campaigns().get_for_update(id).await? {
                    let later =
                        now + chrono::Duration::milliseconds(self.config.tick_ms as i64 * 5);
                    tx.campaigns()
                        .save(r.id, r.version, &r.machine, None, Some(later), now)
                        .await?;
                }
                tx.commit().await?;
                ticked += 1;
                continue;
            }
            tx.commit().await?;
            tracing::debug!(
                campaign.id = id,
                duration_ms = began.elapsed().as_secs_f64() * 1000.0,
                "campaign tick"
            );
            ticked += 1;
        }
        Ok(ticked)
    }

    /// One tick of one campaign, inside `tx`.
    async fn step(
        &self,
        tx: &Tx,
        record: CampaignRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = record.id;
        let mut record = record;
        let members = tx.members();
        if record.spec.membership == crate::campaign::Membership::Dynamic {
            self.join_new_members(tx, &mut record, now).await?;
        }
        let record = record;
        let spec = &record.spec;
        let tally = members.tally(id).await?;
        let current = record.machine.current_wave;

        // Which cohorts may start: those whose package exists (remembered once found).
        let mut readiness: BTreeMap<Cohort, CohortReadiness> = BTreeMap::new();
        let waiting: Vec<Cohort> = tally
            .iter()
            .filter(|(w, _, s, _)| w.is_some_and(|w| w <= current) && *s == MemberState::Planned)
            .map(|(_, c, _, _)| c.clone())
            .collect();
        if !waiting.is_empty() && record.machine.state == CampaignState::Running
            || record.machine.state == CampaignState::Scheduled
        {
            for c in members.cohorts(id).await? {
                if !waiting.contains(&c.cohort) {
                    continue;
                }
                if c.package_id.is_some() {
                    readiness.insert(c.cohort.clone(), CohortReadiness::Ready);
                    continue;
                }
                let Some(target) = c
                    .target_firmware_id
                    .and_then(|t| spec.targets.iter().find(|x| x.firmware_id == t))
                else {
                    readiness.insert(
                        c.cohort.clone(),
                        CohortReadiness::Unavailable("no target".into()),
                    );
                    continue;
                };
                let (ready, package) = packages::readiness(&self.store, target, &c).await?;
                if let Some(package) = package {
                    members.set_cohort_package(id, &c.cohort, package).await?;
                }
                readiness.insert(c.cohort.clone(), ready);
            }
        }
        let ready: Vec<Cohort> = readiness
            .iter()
            .filter(|(_, r)| **r == CohortReadiness::Ready)
            .map(|(c, _)| c.clone())
            .collect();

        // Candidates: planned members of the open zones when windows apply.
        let zones = if spec.schedule.windows.is_empty() {
            None
        } else {
            let default = window::zone(None, spec.schedule.timezone.as_deref());
            let mut open: Vec<Option<String>> = chrono_tz::TZ_VARIANTS
                .iter()
                .filter(|tz| window::is_open(&spec.schedule.windows, **tz, now))
                .map(|tz| Some(tz.name().to_owned()))
                .collect();
            if window::is_open(&spec.schedule.windows, default, now) {
                open.push(None);
            }
            Some(open)
        };
        let candidates = if ready.is_empty() {
            Vec::new()
        } else {
            members
                .candidates(
                    id,
                    current,
                    &ready,
                    zones.as_deref(),
                    self.config.batch as u64,
                )
                .await?
        };
        // Members of unavailable cohorts are candidates too, so the planner can stop on them.
        let mut candidates = candidates;
        for (c, r) in &readiness {
            if matches!(r, CohortReadiness::Unavailable(_)) {
                candidates.extend(
                    members
                        .candidates(id, current, std::slice::from_ref(c), None, 1)
                        .await?,
                );
            }
        }
        let recent = members
            .recent_starts(id, now - chrono::Duration::milliseconds(MINUTE))
            .await?;
        let server_recent = members
            .starts_since(now - chrono::Duration::seconds(1))
            .await?;
        let server_budget =
            (self.config.max_starts_per_second as u64).saturating_sub(server_recent) as u32;
        // Starts are stamped after the counts were read, so that a verdict the counts saw is
        // never recorded later than the start that took its place.
        let now = now.max(Utc::now());
        let decision = plan(
            spec,
            &record.machine,
            &Input {
                now,
                tally: &tally,
                recent_starts: &recent,
                server_budget,
                readiness: &readiness,
                candidates: &candidates,
                poll: chrono::Duration::milliseconds(self.config.tick_ms as i64),
            },
        );

        // Starts: one update job each, with its Package 0, in this transaction.
        let deadline = now + chrono::Duration::seconds(spec.device_deadline_secs as i64);
        let job_plan = JobPlan {
            delivery: match spec.delivery {
                crate::campaign::Delivery::Url => Delivery::Url,
                crate::campaign::Delivery::Inline => Delivery::Inline,
                crate::campaign::Delivery::Auto => Delivery::Auto,
            },
            deadline,
            max_attempts: Some(spec.retries.max_attempts),
            retry_base_ms: Some(spec.retries.backoff_secs as i64 * 1000),
            campaign_id: Some(id),
        };
        let mut firmware_cache = BTreeMap::new();
        let mut started = 0u32;
        for c in &decision.start {
            let Some(device) = tx.devices().get(&c.device_id).await? else {
                members.exclude_planned(c, id, exclusion::DELETED).await?;
                continue;
            };
            if tx
                .update_jobs()
                .active_for_device(&device.id)
                .await?
                .is_some()
            {
                members.exclude_planned(c, id, exclusion::BUSY).await?;
                continue;
            }
            let Some(target) = spec.target_for(
                Some(&c.cohort.manufacturer)
                    .filter(|m| !m.is_empty())
                    .map(String::as_str),
                Some(&c.cohort.model),
            ) else {
                members.exclude_planned(c, id, exclusion::NO_TARGET).await?;
                continue;
            };
            if let std::collections::btree_map::Entry::Vacant(slot) =
                firmware_cache.entry(target.firmware_id)
            {
                slot.insert(tx.firmware().get(target.firmware_id).await?);
            }
            let Some(Some(firmware)) = firmware_cache.get(&target.firmware_id) else {
                members.exclude_planned(c, id, exclusion::NO_TARGET).await?;
                continue;
            };
            let job = self
                .updates
                .create_in(tx, &device, firmware, &job_plan, now)
                .await?;
            members
                .mark_started(c, id, job.id, job.job.state, now)
                .await?;
            started += 1;
        }

        let machine = &decision.machine;
        tx.campaigns()
            .save(id, record.version, machine, None, decision.next_due, now)
            .await?;
        for h in &decision.happened {
            let (kind, message, data) = describe(h);
            tx.campaigns()
                .log(kind, Some(id), None, &message, data, now)
                .await?;
        }
        if machine.state.is_final() {
            members.release(id).await?;
        }
        if started > 0 || !decision.happened.is_empty() {
            tracing::info!(
                campaign.id = id,
                started,
                state = machine.state.as_str(),
                wave = machine.current_wave,
                "campaign ticked"
            );
        }
        Ok(())
    }
}

impl Campaigns {
    /// Dynamic membership: devices that match the selector after the campaign was created
    /// (newly provisioned, or changed) join its current wave, a bounded batch per tick; a
    /// cohort seen for the first time gets its builds queued.
    async fn join_new_members(
        &self,
        tx: &Tx,
        record: &mut CampaignRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = record.id;
        let wave = record.machine.current_wave;
        let cursor = record
            .machine
            .membership_cursor
            .clone()
            .unwrap_or((record.created_at.timestamp_millis(), String::new()));
        let (joined, next) = tx
            .members()
            .join_since(
                id,
                &record.spec.selector,
                &record.spec.targets,
                wave,
                &cursor,
                self.config.batch as u64,
            )
            .await?;
        // A scan that reached the end moves the cursor to a minute ago: rows committed late
        // with an earlier time are still seen, and members are never added twice.
        let settled = (now - chrono::Duration::seconds(60)).timestamp_millis();
        record.machine.membership_cursor = Some(match next {
            Some(c) => c,
            None if settled > cursor.0 => (settled, String::new()),
            None => cursor,
        });
        if joined.is_empty() {
            return Ok(());
        }
        let known: Vec<crate::campaign::Cohort> = tx
            .members()
            .cohorts(id)
            .await?
            .into_iter()
            .map(|c| c.cohort)
            .collect();
        let mut added = 0u64;
        let mut fresh: Vec<crate::campaign::Cohort> = Vec::new();
        for (w, cohort, _) in &joined {
            if w.is_none() {
                continue;
            }
            added += 1;
            if !known.contains(cohort) && !fresh.contains(cohort) {
                fresh.push(cohort.clone());
            }
        }
        if let Some(w) = record.machine.waves.get_mut(wave as usize) {
            w.size += added;
        }
        for cohort in fresh {
            let target = record
                .spec
                .target_for(
                    Some(&cohort.manufacturer)
                        .filter(|m| !m.is_empty())
                        .map(String::as_str),
                    Some(&cohort.model),
                )
                .cloned();
            let tally = tx.members().tally(id).await?;
            tx.members()
                .insert_cohorts(
                    id,
                    &tally,
                    &[(cohort.clone(), target.as_ref().map(|t| t.firmware_id))],
                )
                .await?;
            if let Some(target) = target {
                packages::queue_builds(tx, id, &target, &cohort, &self.build_format, now).await?;
            }
        }
        tx.campaigns()
            .log(
                "campaign.members_joined",
                Some(id),
                None,
                &format!(
                    "{} devices joined, {added} of them into wave {wave}",
                    joined.len()
                ),
                serde_json::json!({"joined": joined.len(), "eligible": added, "wave": wave}),
                now,
            )
            .await?;
        Ok(())
    }
}

fn describe(h: &Happened) -> (&'static str, String, serde_json::Value) {
    match h {
        Happened::Started => (
            "campaign.started",
            "the campaign started".into(),
            serde_json::json!({}),
        ),
        Happened::WaveStarted(w) => (
            "campaign.wave_started",
            format!("wave {w} started"),
            serde_json::json!({"wave": w}),
        ),
        Happened::WaveFinished(w) => (
            "campaign.wave_finished",
            format!("every device of wave {w} has a verdict"),
            serde_json::json!({"wave": w}),
        ),
        Happened::Paused(r) => (
            "campaign.paused",
            r.message.clone(),
            serde_json::to_value(r).unwrap_or_default(),
        ),
        Happened::Succeeded => (
            "campaign.succeeded",
            "every wave passed".into(),
            serde_json::json!({}),
        ),
        Happened::Failed(r) => (
            "campaign.failed",
            r.message.clone(),
            serde_json::to_value(r).unwrap_or_default(),
        ),
    }
}

/// Runs [`Campaigns::tick`] every `tick_ms` until `stop` fires.
pub async fn run(campaigns: Campaigns, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval =
        tokio::time::interval(Duration::from_millis(campaigns.config.tick_ms.max(50)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(err) = campaigns.tick(Utc::now()).await {
                    tracing::error!(error = %err, "campaign scheduler pass failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

//! Campaigns at the edge: creating one (its spec resolved against the firmware records, its
//! members inserted from the selection, waves assigned, counts stored, builds queued for every
//! cohort, all in one transaction), the dry run, the operator's actions, and the scheduler
//! that runs the planner (`crate::campaign`) on every replica.

pub mod actions;
pub mod packages;
pub mod scheduler;

use chrono::{DateTime, Utc};

use crate::campaign::spec::wave_sizes;
use crate::campaign::{
    Cohort, Delivery, Machine, Membership, Policy, Retries, Schedule, Spec, SpecError, Target,
    WaveSize,
};
use crate::config::Config;
use crate::selector::Selector;
use crate::store::{SelectionGroup, Store, StoreError};
use crate::updates::Updates;

pub use packages::{CohortPackage, PackageState};

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{0}")]
    Invalid(#[from] SpecError),
    #[error("no firmware with id {0}")]
    NoFirmware(i64),
    #[error("no campaign with id {0}")]
    NotFound(i64),
    #[error("{0}")]
    NotNow(String),
    #[error("the selection spans {0} cohorts; a campaign may span {1}")]
    TooManyCohorts(u64, u32),
    #[error("another campaign claimed some of these devices at the same time; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an operator asks for, with firmware named by id (resolved into a [`Spec`]).
#[derive(Debug, Clone)]
pub struct CampaignRequest {
    pub name: String,
    pub target_firmware_ids: Vec<i64>,
    pub selector: Selector,
    pub waves: Vec<WaveSize>,
    pub policy: Policy,
    pub schedule: Schedule,
    pub retries: Option<Retries>,
    pub device_deadline_secs: Option<u64>,
    pub delivery: Delivery,
    pub membership: Membership,
    /// Start at once (`scheduled` until `schedule.start_at`), instead of as a draft.
    pub start: bool,
}

/// The dry run: what a campaign would do, written nowhere.
#[derive(Debug, Clone)]
pub struct Preview {
    pub selected: u64,
    pub eligible: u64,
    pub wave_sizes: Vec<u64>,
    pub cohorts: Vec<PreviewCohort>,
    /// Excluded devices by reason.
    pub excluded: Vec<(String, u64)>,
    /// Bytes the eligible devices would download (packages not built yet count 0, and are
    /// listed as missing).
    pub total_bytes: u64,
    /// Expected bytes per wave: waves are uniform samples of the eligible devices, so each
    /// gets its share of the total.
    pub wave_bytes: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct PreviewCohort {
    pub cohort: Cohort,
    pub devices: u64,
    pub target: Option<Target>,
    pub package: CohortPackage,
}

#[derive(Clone)]
pub struct Campaigns {
    store: Store,
    updates: Updates,
    config: crate::config::CampaignsConfig,
    build_format: String,
}

impl Campaigns {
    pub fn new(store: Store, updates: Updates, config: &Config) -> Campaigns {
        Campaigns {
            store,
            updates,
            config: config.campaigns.clone(),
            build_format: "xz".to_owned(),
        }
    }

    /// Resolves the request into a validated spec.
    pub async fn spec(&self, r: &CampaignRequest) -> Result<Spec, CampaignError> {
        let mut targets = Vec::new();
        for id in &r.target_firmware_ids {
            let fw = self
                .store
                .firmware()
                .get(*id)
                .await?
                .ok_or(CampaignError::NoFirmware(*id))?;
            targets.push(Target {
                firmware_id: fw.id,
                manufacturer: fw.manufacturer,
                model: fw.model,
                version: fw.version,
            });
        }
        let defaults = &self.updates.config();
        let spec = Spec {
            name: r.name.trim().to_owned(),
            targets,
            selector: r.selector.clone(),
            waves: r.waves.clone(),
            policy: r.policy,
            schedule: r.schedule.clone(),
            retries: r.retries.unwrap_or(Retries {
                max_attempts: defaults.max_attempts.max(1),
                backoff_secs: defaults.retry_base_secs,
            }),
            device_deadline_secs: r
                .device_deadline_secs
                .unwrap_or(defaults.default_deadline_secs),
            delivery: r.delivery,
            membership: r.membership,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The dry run.
    pub async fn preview(&self, spec: &Spec) -> Result<Preview, CampaignError> {
        let groups = self
            .store
            .members()
            .preview(&spec.selector, &spec.targets)
            .await?;
        let mut preview = Preview {
            selected: groups.iter().map(|g| g.devices).sum(),
            eligible: 0,
            wave_sizes: Vec::new(),
            cohorts: Vec::new(),
            excluded: Vec::new(),
            total_bytes: 0,
            wave_bytes: Vec::new(),
        };
        for g in &groups {
            match &g.exclusion {
                None => preview.eligible += g.devices,
                Some(why) => match preview.excluded.iter_mut().find(|(w, _)| w == why) {
                    Some((_, n)) => *n += g.devices,
                    None => preview.excluded.push((why.clone(), g.devices)),
                },
            }
        }
        let eligible: Vec<&SelectionGroup> =
            groups.iter().filter(|g| g.exclusion.is_none()).collect();
        if eligible.len() as u64 > self.config.max_cohorts as u64 {
            return Err(CampaignError::TooManyCohorts(
                eligible.len() as u64,
                self.config.max_cohorts,
            ));
        }
        for g in eligible {
            let target = g
                .target_firmware_id
                .and_then(|id| spec.targets.iter().find(|t| t.firmware_id == id))
                .cloned();
            let package = match &target {
                Some(t) => packages::current(&self.store, t, &g.cohort).await?,
                None => CohortPackage::missing("no target"),
            };
            preview.total_bytes += package.size.unwrap_or(0) * g.devices;
            preview.cohorts.push(PreviewCohort {
                cohort: g.cohort.clone(),
                devices: g.devices,
                target,
                package,
            });
        }
        preview.wave_sizes = wave_sizes(&spec.waves, preview.eligible);
        preview.wave_bytes = preview
            .wave_sizes
            .iter()
            .map(|&n| {
                if preview.eligible == 0 {
                    0
                } else {
                    ((preview.total_bytes as u128 * n as u128) / preview.eligible as u128) as u64
                }
            })
            .collect();
        Ok(preview)
    }

    /// Creates the campaign: members, waves, counts, cohorts and their builds in one
    /// transaction; a draft unless the request starts it.
    pub async fn create(
        &self,
        spec: Spec,
        start: bool,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, CampaignError> {
        let tx = self.store.begin().await?;
        let placeholder = Machine::new(&[]);
        let id = tx
            .campaigns()
            .insert(&spec, &placeholder, Some(created_by), now)
            .await?;
        let members = tx.members();
        let (selected, eligible) = members
            .insert_selection(id, &spec.selector, &spec.targets, |eligible| {
                wave_sizes(&spec.waves, eligible)
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => CampaignError::Contended,
                other => other.into(),
            })?;
        members.analyze().await?;
        let tally = members.recount(id).await?;
        let cohorts = tally.cohorts();
        if cohorts.len() as u64 > self.config.max_cohorts as u64 {
            return Err(CampaignError::TooManyCohorts(
                cohorts.len() as u64,
                self.config.max_cohorts,
            ));
        }
        members.store_counts(id, &tally).await?;
        let with_targets: Vec<(Cohort, Option<Target>)> = cohorts
            .into_iter()
            .map(|c| {
                let t = spec
                    .target_for(Some(&c.manufacturer), Some(&c.model))
                    .cloned();
                (c, t)
            })
            .collect();
        members
            .insert_cohorts(
                id,
                &tally,
                &with_targets
                    .iter()
                    .map(|(c, t)| (c.clone(), t.as_ref().map(|t| t.firmware_id)))
                    .collect::<Vec<_>>(),
            )
            .await?;
        // Packages before devices: every cohort's builds are queued now.
        for (cohort, target) in &with_targets {
            if let Some(target) = target {
                packages::queue_builds(&tx, id, target, cohort, &self.build_format, now).await?;
            }
        }
        // The waves as inserted (the count and the insert are two statements: devices that
        // changed in between land in the last wave).
        let sizes: Vec<u64> = (0..spec.waves.len() as u32)
            .map(|w| {
                tally
                    .iter()
                    .filter(|(wave, _, _, _)| *wave == Some(w))
                    .map(|(_, _, _, n)| n)
                    .sum()
            })
            .collect();
        let mut machine = Machine::new(&sizes);
        let mut next_due = None;
        if start {
            machine
                .start()
                .map_err(|e| CampaignError::NotNow(e.to_string()))?;
            next_due = Some(now);
        }
        tx.campaigns()
            .save(id, 1, &machine, None, next_due, now)
            .await?;
        let excluded = selected - eligible;
        tx.campaigns()
            .log(
                "campaign.created",
                Some(id),
                None,
                &format!(
                    "campaign {:?} created: {selected} devices selected, {eligible} in {} waves, {excluded} excluded",
                    spec.name,
                    sizes.len()
                ),
                serde_json::json!({"selected": selected, "eligible": eligible, "waves": sizes}),
                now,
            )
            .await?;
        tx.commit().await?;
        tracing::info!(campaign.id = id, selected, eligible, "campaign created");
        Ok(id)
    }
}

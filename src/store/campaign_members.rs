//! A campaign's members: one row per selected device with its wave, rank, cohort, exclusion
//! and update job; the scheduler's bounded reads (candidates, recent starts), a member's start
//! and its following of its job's steps, the cohorts and their builds, and the member list.
//! The selection itself is `campaign_selection.rs`; the counts and bulk moves are
//! `campaign_counts.rs`.
//!
//! Ranks are a uniform random shuffle drawn by the database when the members are inserted and
//! stored with them: waves take members in rank order, so each wave is a fair sample of the
//! selection, and a member's wave never changes.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};

use super::StoreError;
use super::entity::{campaign_cohort, campaign_member};
use crate::campaign::{Candidate, Cohort, MemberState, Tally};
use crate::fumo::JobState;

/// Why a selected device is not in the campaign's waves.
pub mod exclusion {
    /// No target firmware for its manufacturer and model.
    pub const NO_TARGET: &str = "no_target";
    /// It already runs its target version.
    pub const ALREADY_ON_TARGET: &str = "already_on_target";
    /// It is a member of another active campaign, or had an update job of its own.
    pub const BUSY: &str = "busy";
    /// An operator excluded it (or its cohort).
    pub const OPERATOR: &str = "operator";
    /// The device was deleted before it started.
    pub const DELETED: &str = "deleted";
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    pub campaign_id: i64,
    pub device_id: String,
    pub wave: Option<u32>,
    pub rank: i64,
    pub cohort: Cohort,
    pub timezone: Option<String>,
    pub target_firmware_id: Option<i64>,
    pub state: MemberState,
    pub exclusion: Option<String>,
    pub job_id: Option<i64>,
    pub result_code: Option<u32>,
    pub failure: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A cohort of a campaign, with its target and builds.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortRecord {
    pub cohort: Cohort,
    pub target_firmware_id: Option<i64>,
    pub source_firmware_id: Option<i64>,
    pub full_job_id: Option<i64>,
    pub delta_job_id: Option<i64>,
    /// The package its devices get, once it exists.
    pub package_id: Option<i64>,
    pub devices: u64,
}

/// What the selection would give, grouped: a dry run.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionGroup {
    pub cohort: Cohort,
    pub target_firmware_id: Option<i64>,
    /// `None`: eligible.
    pub exclusion: Option<String>,
    pub devices: u64,
}

/// Filters of a member list.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub state: Option<MemberState>,
    pub wave: Option<u32>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub result_code: Option<u32>,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

pub(super) fn state_of(s: &str) -> Result<MemberState, StoreError> {
    MemberState::parse(s).ok_or_else(|| corrupt(format!("campaign member state {s:?}")))
}

fn to_member(m: campaign_member::Model) -> Result<MemberRecord, StoreError> {
    Ok(MemberRecord {
        state: state_of(&m.state)?,
        campaign_id: m.campaign_id,
        device_id: m.device_id,
        wave: m.wave.map(|w| nonneg(w.into()) as u32),
        rank: m.rank,
        cohort: Cohort {
            manufacturer: m.manufacturer,
            model: m.model,
            version: m.version,
        },
        timezone: m.timezone,
        target_firmware_id: m.target_firmware_id,
        exclusion: m.exclusion,
        job_id: m.job_id,
        result_code: m.result_code.map(|c| nonneg(c.into()) as u32),
        failure: m.failure,
        started_at: m.started_at,
        finished_at: m.finished_at,
    })
}

pub(super) fn nonneg(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The row of one cohort of a campaign.
fn cohort_is(campaign_id: i64, cohort: &Cohort) -> Condition {
    use campaign_cohort::Column;
    Condition::all()
        .add(Column::CampaignId.eq(campaign_id))
        .add(Column::Manufacturer.eq(cohort.manufacturer.as_str()))
        .add(Column::Model.eq(cohort.model.as_str()))
        .add(Column::Version.eq(cohort.version.as_str()))
}

pub(super) fn wave_key(wave: Option<u32>) -> i32 {
    wave.map_or(-1, |w| w as i32)
}

pub struct MemberStore<'a, C = DatabaseConnection> {
    pub(super) db: &'a C,
}

impl<'a, C: ConnectionTrait> MemberStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        MemberStore { db }
    }

    pub(super) fn raw(&self, sql: String, values: sea_orm::sea_query::Values) -> Statement {
        Statement::from_sql_and_values(self.db.get_database_backend(), sql, values)
    }

    /// Records the cohorts of the eligible members (at creation).
    pub async fn insert_cohorts(
        &self,
        campaign_id: i64,
        tally: &Tally,
        targets: &[(Cohort, Option<i64>)],
    ) -> Result<(), StoreError> {
        for (cohort, target) in targets {
            let devices: u64 = tally
                .iter()
                .filter(|(w, c, _, _)| w.is_some() && *c == cohort)
                .map(|(_, _, _, n)| n)
                .sum();
            campaign_cohort::ActiveModel {
                campaign_id: Set(campaign_id),
                manufacturer: Set(cohort.manufacturer.clone()),
                model: Set(cohort.model.clone()),
                version: Set(cohort.version.clone()),
                target_firmware_id: Set(*target),
                source_firmware_id: Set(None),
                full_job_id: Set(None),
                delta_job_id: Set(None),
                package_id: Set(None),
                devices: Set(devices as i64),
            }
            .insert(self.db)
            .await?;
        }
        Ok(())
    }

    pub async fn set_cohort_builds(
        &self,
        campaign_id: i64,
        cohort: &Cohort,
        source_firmware_id: Option<i64>,
        full_job_id: Option<i64>,
        delta_job_id: Option<i64>,
    ) -> Result<(), StoreError> {
        campaign_cohort::Entity::update_many()
            .col_expr(
                campaign_cohort::Column::SourceFirmwareId,
                Expr::value(source_firmware_id),
            )
            .col_expr(campaign_cohort::Column::FullJobId, Expr::value(full_job_id))
            .col_expr(
                campaign_cohort::Column::DeltaJobId,
                Expr::value(delta_job_id),
            )
            .filter(cohort_is(campaign_id, cohort))
            .exec(self.db)
            .await?;
        Ok(())
    }

    /// Records that a cohort's package exists (its devices may start).
    pub async fn set_cohort_package(
        &self,
        campaign_id: i64,
        cohort: &Cohort,
        package_id: i64,
    ) -> Result<(), StoreError> {
        campaign_cohort::Entity::update_many()
            .col_expr(campaign_cohort::Column::PackageId, Expr::value(package_id))
            .filter(cohort_is(campaign_id, cohort))
            .exec(self.db)
            .await?;
        Ok(())
    }

    pub async fn cohorts(&self, campaign_id: i64) -> Result<Vec<CohortRecord>, StoreError> {
        Ok(campaign_cohort::Entity::find()
            .filter(campaign_cohort::Column::CampaignId.eq(campaign_id))
            .order_by_asc(campaign_cohort::Column::Manufacturer)
            .order_by_asc(campaign_cohort::Column::Model)
            .order_by_asc(campaign_cohort::Column::Version)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| CohortRecord {
                cohort: Cohort {
                    manufacturer: m.manufacturer,
                    model: m.model,
                    version: m.version,
                },
                target_firmware_id: m.target_firmware_id,
                source_firmware_id: m.source_firmware_id,
                full_job_id: m.full_job_id,
                delta_job_id: m.delta_job_id,
                package_id: m.package_id,
                devices: nonneg(m.devices),
            })
            .collect())
    }

    /// Planned members of waves up to `wave`, wave then rank order, of the `ready` cohorts
    /// and, when `zones` is given, of those time zones (`None` in it: devices without one).
    pub async fn candidates(
        &self,
        campaign_id: i64,
        wave: u32,
        ready: &[Cohort],
        zones: Option<&[Option<String>]>,
        limit: u64,
    ) -> Result<Vec<Candidate>, StoreError> {
        use campaign_member::Column;
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let mut cohorts = Condition::any();
        for c in ready {
            cohorts = cohorts.add(
                Condition::all()
                    .add(Column::Manufacturer.eq(c.manufacturer.as_str()))
                    .add(Column::Model.eq(c.model.as_str()))
                    .add(Column::Version.eq(c.version.as_str())),
            );
        }
        let mut q = campaign_member::Entity::find()
            .filter(Column::CampaignId.eq(campaign_id))
            .filter(Column::State.eq(MemberState::Planned.as_str()))
            .filter(Column::Wave.lte(wave as i32))
            .filter(cohorts);
        if let Some(zones) = zones {
            let named: Vec<String> = zones.iter().flatten().cloned().collect();
            let mut z = Condition::any().add(Column::Timezone.is_in(named));
            if zones.iter().any(Option::is_none) {
                z = z.add(Column::Timezone.is_null());
            }
            q = q.filter(z);
        }
        q.order_by_asc(Column::Wave)
            .order_by_asc(Column::Rank)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| {
                Ok(Candidate {
                    wave: nonneg(m.wave.unwrap_or(0).into()) as u32,
                    device_id: m.device_id,
                    cohort: Cohort {
                        manufacturer: m.manufacturer,
                        model: m.model,
                        version: m.version,
                    },
                    timezone: m.timezone,
                })
            })
            .collect()
    }

    /// This campaign's starts since `since`, oldest first.
    pub async fn recent_starts(
        &self,
        campaign_id: i64,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        Ok(campaign_member::Entity::find()
            .select_only()
            .column(campaign_member::Column::StartedAt)
            .filter(campaign_member::Column::CampaignId.eq(campaign_id))
            .filter(campaign_member::Column::StartedAt.gt(since))
            .order_by_asc(campaign_member::Column::StartedAt)
            .into_tuple::<Option<DateTime<Utc>>>()
            .all(self.db)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Starts since `since` across every campaign (the server-wide cap).
    pub async fn starts_since(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(campaign_member::Entity::find()
            .filter(campaign_member::Column::StartedAt.gt(since))
            .count(self.db)
            .await?)
    }

    pub async fn get(
        &self,
        campaign_id: i64,
        device_id: &str,
    ) -> Result<Option<MemberRecord>, StoreError> {
        campaign_member::Entity::find_by_id((campaign_id, device_id.to_owned()))
            .one(self.db)
            .await?
            .map(to_member)
            .transpose()
    }

    /// A planned member starts with its update job (`false`: it was not planned any more).
    pub async fn mark_started(
        &self,
        member: &Candidate,
        campaign_id: i64,
        job_id: i64,
        job_state: JobState,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use campaign_member::Column;
        let to = MemberState::Job(job_state);
        let moved = campaign_member::Entity::update_many()
            .col_expr(Column::State, Expr::value(to.as_str()))
            .col_expr(Column::JobId, Expr::value(job_id))
            .col_expr(Column::StartedAt, Expr::value(now))
            .col_expr(
                Column::FinishedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(Column::ResultCode, Expr::value(Option::<i32>::None))
            .col_expr(Column::Failure, Expr::value(Option::<String>::None))
            .filter(Column::CampaignId.eq(campaign_id))
            .filter(Column::DeviceId.eq(member.device_id.as_str()))
            .filter(Column::State.eq(MemberState::Planned.as_str()))
            .exec(self.db)
            .await?
            .rows_affected
            == 1;
        if moved {
            self.shift(
                campaign_id,
                Some(member.wave),
                &member.cohort,
                MemberState::Planned,
                to,
                1,
            )
            .await?;
        }
        Ok(moved)
    }

    /// A planned member that cannot start (busy with an update job of its own) is excluded,
    /// with the reason, and lets go of its device.
    pub async fn exclude_planned(
        &self,
        member: &Candidate,
        campaign_id: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        use campaign_member::Column;
        let moved = campaign_member::Entity::update_many()
            .col_expr(Column::State, Expr::value(MemberState::Excluded.as_str()))
            .col_expr(Column::Exclusion, Expr::value(why))
            .col_expr(Column::Active, Expr::value(false))
            .filter(Column::CampaignId.eq(campaign_id))
            .filter(Column::DeviceId.eq(member.device_id.as_str()))
            .filter(Column::State.eq(MemberState::Planned.as_str()))
            .exec(self.db)
            .await?
            .rows_affected;
        self.shift(
            campaign_id,
            Some(member.wave),
            &member.cohort,
            MemberState::Planned,
            MemberState::Excluded,
            moved,
        )
        .await
    }

    /// Follows an update job's step: the member of a campaign job takes the job's state (its
    /// count moves with it), its result code and failure. An excluded member keeps its state
    /// (it is out of the counts) but records the job's outcome.
    pub async fn on_job_step(
        &self,
        job_id: i64,
        to: JobState,
        result_code: Option<u32>,
        failure: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use campaign_member::Column;
        // Compare-and-set on the state read: an operator's bulk move (exclusion, cancel) in
        // between makes the update miss, and the member is read again.
        for _ in 0..8 {
            let Some(m) = campaign_member::Entity::find()
                .filter(Column::JobId.eq(job_id))
                .one(self.db)
                .await?
            else {
                return Ok(());
            };
            let member = to_member(m)?;
            let excluded = member.state == MemberState::Excluded;
            let new_state = if excluded {
                MemberState::Excluded
            } else {
                MemberState::Job(to)
            };
            let moved = campaign_member::Entity::update_many()
                .col_expr(Column::State, Expr::value(new_state.as_str()))
                .col_expr(
                    Column::ResultCode,
                    Expr::value(result_code.map(|c| c as i32)),
                )
                .col_expr(
                    Column::Failure,
                    Expr::value(failure.map(|f| f.chars().take(500).collect::<String>())),
                )
                .col_expr(
                    Column::FinishedAt,
                    Expr::value(to.is_final().then_some(now)),
                )
                .filter(Column::CampaignId.eq(member.campaign_id))
                .filter(Column::DeviceId.eq(member.device_id.as_str()))
                .filter(Column::State.eq(member.state.as_str()))
                .exec(self.db)
                .await?
                .rows_affected;
            if moved == 0 {
                continue;
            }
            if !excluded {
                self.shift(
                    member.campaign_id,
                    member.wave,
                    &member.cohort,
                    member.state,
                    new_state,
                    1,
                )
                .await?;
            }
            return Ok(());
        }
        Err(StoreError::Conflict(format!(
            "the campaign member of update job {job_id} kept changing"
        )))
    }

    /// The campaign is over: its members let go of their devices.
    pub async fn release(&self, campaign_id: i64) -> Result<(), StoreError> {
        campaign_member::Entity::update_many()
            .col_expr(campaign_member::Column::Active, Expr::value(false))
            .filter(campaign_member::Column::CampaignId.eq(campaign_id))
            .filter(campaign_member::Column::Active.eq(true))
            .exec(self.db)
            .await?;
        Ok(())
    }

    /// Excluded members by reason.
    pub async fn exclusions(&self, campaign_id: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = campaign_member::Entity::find()
            .select_only()
            .column(campaign_member::Column::Exclusion)
            .column_as(Expr::col(campaign_member::Column::DeviceId).count(), "n")
            .filter(campaign_member::Column::CampaignId.eq(campaign_id))
            .filter(campaign_member::Column::State.eq(MemberState::Excluded.as_str()))
            .group_by(campaign_member::Column::Exclusion)
            .into_tuple::<(Option<String>, i64)>()
            .all(self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(why, n)| {
                (
                    why.unwrap_or_else(|| exclusion::OPERATOR.to_owned()),
                    nonneg(n),
                )
            })
            .collect())
    }

    /// Update jobs of members started and without a verdict.
    pub async fn jobs_in_flight(&self, campaign_id: i64) -> Result<Vec<i64>, StoreError> {
        let states: Vec<&str> = MemberState::all()
            .filter(|s| s.in_progress())
            .map(MemberState::as_str)
            .collect();
        Ok(campaign_member::Entity::find()
            .select_only()
            .column(campaign_member::Column::JobId)
            .filter(campaign_member::Column::CampaignId.eq(campaign_id))
            .filter(campaign_member::Column::State.is_in(states))
            .into_tuple::<Option<i64>>()
            .all(self.db)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Members in device-id order, a page at a time.
    pub async fn list(
        &self,
        campaign_id: i64,
        filter: &MemberFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<MemberRecord>, StoreError> {
        use campaign_member::Column;
        let mut q = campaign_member::Entity::find().filter(Column::CampaignId.eq(campaign_id));
        if let Some(s) = filter.state {
            q = q.filter(Column::State.eq(s.as_str()));
        }
        if let Some(w) = filter.wave {
            q = q.filter(Column::Wave.eq(w as i32));
        }
        if let Some(m) = &filter.model {
            q = q.filter(Column::Model.eq(m.as_str()));
        }
        if let Some(v) = &filter.version {
            q = q.filter(Column::Version.eq(v.as_str()));
        }
        if let Some(c) = filter.result_code {
            q = q.filter(Column::ResultCode.eq(c as i32));
        }
        if let Some(after) = after {
            q = q.filter(Column::DeviceId.gt(after));
        }
        q.order_by_asc(Column::DeviceId)
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(to_member)
            .collect()
    }
}

use sea_orm::PaginatorTrait;

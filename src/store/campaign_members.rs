//! A campaign's members and their counts: the selection inserted straight from SQL (a million
//! devices never pass through the process), wave assignment by rank, the counts per (wave,
//! cohort, state) kept in step with every member change in the same transaction, the
//! scheduler's bounded reads (candidates, recent starts), and the operator's bulk moves.
//!
//! Ranks are a uniform random shuffle drawn by the database when the members are inserted and
//! stored with them: waves take members in rank order, so each wave is a fair sample of the
//! selection, and a member's wave never changes.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, CaseStatement, Expr, ExprTrait, Func, OnConflict, Query, SimpleExpr,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};

use super::StoreError;
use super::entity::{campaign_cohort, campaign_count, campaign_member, device};
use super::selection::selector_condition;
use crate::campaign::{Candidate, Cohort, MemberState, Tally, Target};
use crate::fumo::JobState;
use crate::selector::Selector;

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

fn state_of(s: &str) -> Result<MemberState, StoreError> {
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

fn nonneg(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn wave_key(wave: Option<u32>) -> i32 {
    wave.map_or(-1, |w| w as i32)
}

/// `LOWER(TRIM(devices.<col>))`: targets match models as update jobs do, ignoring case and
/// surrounding blanks.
fn folded(col: device::Column) -> SimpleExpr {
    Func::lower(Func::cust("trim").arg(Expr::col((device::Entity, col)))).into()
}

fn target_matches(t: &Target) -> Condition {
    Condition::all()
        .add(folded(device::Column::Model).eq(t.model.trim().to_lowercase()))
        .add(
            Condition::any()
                .add(Expr::col((device::Entity, device::Column::Manufacturer)).is_null())
                .add(folded(device::Column::Manufacturer).eq(t.manufacturer.trim().to_lowercase())),
        )
}

/// `SELECT id, man, model, ver, tz, target, excl FROM devices WHERE <selector>`: each selected
/// device with its cohort, its target firmware and why it is excluded (NULL: eligible).
fn selection(selector: &Selector, targets: &[Target]) -> sea_orm::sea_query::SelectStatement {
    let col = |c: device::Column| Expr::col((device::Entity, c));
    let mut target = CaseStatement::new();
    let mut any_target = Condition::any();
    let mut on_target = Condition::any();
    for t in targets {
        target = target.case(target_matches(t), Expr::val(t.firmware_id));
        any_target = any_target.add(target_matches(t));
        on_target = on_target
            .add(target_matches(t).add(col(device::Column::FwVersion).eq(t.version.as_str())));
    }
    let target = target.finally(Expr::val(Option::<i64>::None));
    let busy = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(campaign_member::Entity)
            .and_where(
                Expr::col((campaign_member::Entity, campaign_member::Column::DeviceId))
                    .equals((device::Entity, device::Column::Id)),
            )
            .and_where(
                Expr::col((campaign_member::Entity, campaign_member::Column::Active)).eq(true),
            )
            .to_owned(),
    );
    let exclusion = CaseStatement::new()
        .case(any_target.not(), Expr::val(exclusion::NO_TARGET))
        .case(on_target, Expr::val(exclusion::ALREADY_ON_TARGET))
        .case(busy, Expr::val(exclusion::BUSY))
        .finally(Expr::val(Option::<String>::None));
    let blank = |c: device::Column| Func::coalesce([Expr::col((device::Entity, c)), Expr::val("")]);
    Query::select()
        .expr_as(col(device::Column::Id), Alias::new("id"))
        .expr_as(blank(device::Column::Manufacturer), Alias::new("man"))
        .expr_as(blank(device::Column::Model), Alias::new("model"))
        .expr_as(blank(device::Column::FwVersion), Alias::new("ver"))
        .expr_as(col(device::Column::Timezone), Alias::new("tz"))
        .expr_as(target, Alias::new("target"))
        .expr_as(exclusion, Alias::new("excl"))
        .from(device::Entity)
        .cond_where(selector_condition(selector))
        .to_owned()
}

pub struct MemberStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait> MemberStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        MemberStore { db }
    }

    fn raw(&self, sql: String, values: sea_orm::sea_query::Values) -> Statement {
        Statement::from_sql_and_values(self.db.get_database_backend(), sql, values)
    }

    /// Inserts every device the selector selects as a member, excluded or eligible, each with
    /// its random rank among its kind; eligible members go straight into their wave by rank
    /// (`sizes` of the eligible devices counted first, the last wave taking any rest).
    /// Returns (selected, eligible inserted).
    pub async fn insert_selection(
        &self,
        campaign_id: i64,
        selector: &Selector,
        targets: &[Target],
        sizes: impl FnOnce(u64) -> Vec<u64>,
    ) -> Result<(u64, u64), StoreError> {
        let backend = self.db.get_database_backend();
        let inner = backend.build(&selection(selector, targets));
        let values = || inner.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
        let count_sql = format!(
            "SELECT COUNT(*) FROM ({}) s WHERE s.excl IS NULL",
            inner.sql
        );
        let eligible = match self.db.query_one_raw(self.raw(count_sql, values())).await? {
            Some(r) => nonneg(r.try_get_by_index::<i64>(0)?),
            None => 0,
        };
        let sizes = sizes(eligible);
        // The wave of a rank: the first sizes[0] ranks in wave 0, and so on.
        let mut wave = String::from("CASE");
        let mut upto = 0u64;
        for (i, size) in sizes.iter().enumerate() {
            upto += size;
            wave.push_str(&format!(" WHEN r.rn <= {upto} THEN {i}"));
        }
        wave.push_str(&format!(" ELSE {} END", sizes.len().saturating_sub(1)));
        let sql = format!(
            "INSERT INTO campaign_members (campaign_id, device_id, wave, rank, manufacturer, \
             model, version, timezone, target_firmware_id, state, exclusion, active) \
             SELECT {campaign_id}, r.id, \
             CASE WHEN r.excl IS NULL THEN {wave} ELSE CAST(NULL AS INTEGER) END, \
             r.rn, r.man, r.model, r.ver, r.tz, r.target, \
             CASE WHEN r.excl IS NULL THEN 'planned' ELSE 'excluded' END, r.excl, \
             (r.excl IS NULL) FROM (SELECT s.*, \
             ROW_NUMBER() OVER (PARTITION BY (s.excl IS NULL) ORDER BY RANDOM()) AS rn \
             FROM ({}) s) r",
            inner.sql
        );
        let selected = self
            .db
            .execute_raw(self.raw(sql, values()))
            .await?
            .rows_affected();
        let inserted = campaign_member::Entity::find()
            .filter(campaign_member::Column::CampaignId.eq(campaign_id))
            .filter(campaign_member::Column::Exclusion.is_null())
            .count(self.db)
            .await?;
        Ok((selected, inserted))
    }

    /// Dynamic membership: devices the selector selects that changed after `cursor` (their
    /// `updated_at`, then id) and are not members yet join, eligible ones in `wave`; at most
    /// `limit` per call. Returns who joined and how far the scan went (`None`: it reached the
    /// end, so the caller may move the cursor up to about now).
    pub async fn join_since(
        &self,
        campaign_id: i64,
        selector: &Selector,
        targets: &[Target],
        wave: u32,
        cursor: &(i64, String),
        limit: u64,
    ) -> Result<
        (
            Vec<(Option<u32>, Cohort, MemberState)>,
            Option<(i64, String)>,
        ),
        StoreError,
    > {
        let col = |c: device::Column| Expr::col((device::Entity, c));
        let since = DateTime::from_timestamp_millis(cursor.0).unwrap_or_default();
        let mut q = selection(selector, targets);
        q.expr_as(col(device::Column::UpdatedAt), Alias::new("upd"))
            .cond_where(
                Condition::any()
                    .add(col(device::Column::UpdatedAt).gt(since))
                    .add(
                        Condition::all()
                            .add(col(device::Column::UpdatedAt).eq(since))
                            .add(col(device::Column::Id).gt(cursor.1.as_str())),
                    ),
            )
            .cond_where(
                Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from(campaign_member::Entity)
                        .and_where(
                            Expr::col((campaign_member::Entity, campaign_member::Column::DeviceId))
                                .equals((device::Entity, device::Column::Id)),
                        )
                        .and_where(
                            Expr::col((
                                campaign_member::Entity,
                                campaign_member::Column::CampaignId,
                            ))
                            .eq(campaign_id),
                        )
                        .to_owned(),
                )
                .not(),
            )
            .order_by(
                (device::Entity, device::Column::UpdatedAt),
                sea_orm::Order::Asc,
            )
            .order_by((device::Entity, device::Column::Id), sea_orm::Order::Asc)
            .limit(limit);
        let rows = self.db.query_all(&q).await?;
        let full = rows.len() as u64 == limit;
        let mut joined = Vec::new();
        let mut last = None;
        for (i, r) in rows.into_iter().enumerate() {
            let id: String = r.try_get("", "id")?;
            let cohort = Cohort {
                manufacturer: r.try_get("", "man")?,
                model: r.try_get("", "model")?,
                version: r.try_get("", "ver")?,
            };
            let excl: Option<String> = r.try_get("", "excl")?;
            let upd: DateTime<Utc> = r.try_get("", "upd")?;
            let (wave, state) = match excl {
                None => (Some(wave), MemberState::Planned),
                Some(_) => (None, MemberState::Excluded),
            };
            let row = campaign_member::ActiveModel {
                campaign_id: Set(campaign_id),
                device_id: Set(id.clone()),
                wave: Set(wave.map(|w| w as i32)),
                // After every member ranked at creation, in the order they joined.
                rank: Set(upd.timestamp_millis().saturating_mul(1000) + i as i64),
                manufacturer: Set(cohort.manufacturer.clone()),
                model: Set(cohort.model.clone()),
                version: Set(cohort.version.clone()),
                timezone: Set(r.try_get("", "tz")?),
                target_firmware_id: Set(r.try_get("", "target")?),
                state: Set(state.as_str().to_owned()),
                exclusion: Set(excl.clone()),
                active: Set(excl.is_none()),
                job_id: Set(None),
                result_code: Set(None),
                failure: Set(None),
                started_at: Set(None),
                finished_at: Set(None),
            };
            // A device claimed by another campaign in the meantime is skipped (the unique
            // index), never an error that would abort the tick.
            let inserted = campaign_member::Entity::insert(row)
                .on_conflict(OnConflict::new().do_nothing().to_owned())
                .exec_without_returning(self.db)
                .await?;
            if inserted == 1 {
                self.bump(campaign_id, wave, &cohort, state, 1).await?;
                joined.push((wave, cohort, state));
            }
            last = Some((upd.timestamp_millis(), id));
        }
        Ok((joined, if full { last } else { None }))
    }

    /// Refreshes the planner statistics of the members table after a bulk insert: without
    /// them, PostgreSQL takes a freshly filled campaign for an empty one and picks a scan of
    /// its plan index over the primary key for every per-member update.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        self.db
            .execute_unprepared("ANALYZE campaign_members")
            .await?;
        Ok(())
    }

    /// The selection grouped by cohort, target and exclusion, writing nothing.
    pub async fn preview(
        &self,
        selector: &Selector,
        targets: &[Target],
    ) -> Result<Vec<SelectionGroup>, StoreError> {
        let inner = self
            .db
            .get_database_backend()
            .build(&selection(selector, targets));
        let sql = format!(
            "SELECT s.man, s.model, s.ver, s.target, s.excl, COUNT(*) AS n FROM ({}) s \
             GROUP BY s.man, s.model, s.ver, s.target, s.excl \
             ORDER BY s.man, s.model, s.ver",
            inner.sql
        );
        let rows = self
            .db
            .query_all_raw(self.raw(sql, inner.values.unwrap_or(sea_orm::Values(Vec::new()))))
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(SelectionGroup {
                    cohort: Cohort {
                        manufacturer: r.try_get_by_index(0)?,
                        model: r.try_get_by_index(1)?,
                        version: r.try_get_by_index(2)?,
                    },
                    target_firmware_id: r.try_get_by_index(3)?,
                    exclusion: r.try_get_by_index(4)?,
                    devices: nonneg(r.try_get_by_index::<i64>(5)?),
                })
            })
            .collect()
    }

    /// Counts the members afresh (at creation; and to check the incremental counts).
    pub async fn recount(&self, campaign_id: i64) -> Result<Tally, StoreError> {
        let rows = campaign_member::Entity::find()
            .select_only()
            .column(campaign_member::Column::Wave)
            .column(campaign_member::Column::Manufacturer)
            .column(campaign_member::Column::Model)
            .column(campaign_member::Column::Version)
            .column(campaign_member::Column::State)
            .column_as(Expr::col(campaign_member::Column::DeviceId).count(), "n")
            .filter(campaign_member::Column::CampaignId.eq(campaign_id))
            .group_by(campaign_member::Column::Wave)
            .group_by(campaign_member::Column::Manufacturer)
            .group_by(campaign_member::Column::Model)
            .group_by(campaign_member::Column::Version)
            .group_by(campaign_member::Column::State)
            .into_tuple::<(Option<i32>, String, String, String, String, i64)>()
            .all(self.db)
            .await?;
        let mut tally = Tally::default();
        for (wave, manufacturer, model, version, state, n) in rows {
            tally.add(
                wave.map(|w| nonneg(w.into()) as u32),
                Cohort {
                    manufacturer,
                    model,
                    version,
                },
                state_of(&state)?,
                nonneg(n),
            );
        }
        Ok(tally)
    }

    /// Replaces the stored counts with `tally` (at creation).
    pub async fn store_counts(&self, campaign_id: i64, tally: &Tally) -> Result<(), StoreError> {
        campaign_count::Entity::delete_many()
            .filter(campaign_count::Column::CampaignId.eq(campaign_id))
            .exec(self.db)
            .await?;
        for (wave, cohort, state, n) in tally.iter() {
            self.bump(campaign_id, wave, cohort, state, n as i64)
                .await?;
        }
        Ok(())
    }

    /// The stored counts.
    pub async fn tally(&self, campaign_id: i64) -> Result<Tally, StoreError> {
        let mut tally = Tally::default();
        for m in campaign_count::Entity::find()
            .filter(campaign_count::Column::CampaignId.eq(campaign_id))
            .all(self.db)
            .await?
        {
            tally.add(
                (m.wave >= 0).then_some(m.wave as u32),
                Cohort {
                    manufacturer: m.manufacturer,
                    model: m.model,
                    version: m.version,
                },
                state_of(&m.state)?,
                nonneg(m.n),
            );
        }
        Ok(tally)
    }

    /// Adds `delta` to one count (creating it at 0).
    async fn bump(
        &self,
        campaign_id: i64,
        wave: Option<u32>,
        cohort: &Cohort,
        state: MemberState,
        delta: i64,
    ) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        use campaign_count::{Column, Entity};
        let row = campaign_count::ActiveModel {
            campaign_id: Set(campaign_id),
            wave: Set(wave_key(wave)),
            manufacturer: Set(cohort.manufacturer.clone()),
            model: Set(cohort.model.clone()),
            version: Set(cohort.version.clone()),
            state: Set(state.as_str().to_owned()),
            n: Set(delta),
        };
        let on_conflict = OnConflict::columns([
            Column::CampaignId,
            Column::Wave,
            Column::Manufacturer,
            Column::Model,
            Column::Version,
            Column::State,
        ])
        .value(Column::N, Expr::col((Entity, Column::N)).add(delta))
        .to_owned();
        Entity::insert(row)
            .on_conflict(on_conflict)
            .exec_without_returning(self.db)
            .await?;
        Ok(())
    }

    async fn shift(
        &self,
        campaign_id: i64,
        wave: Option<u32>,
        cohort: &Cohort,
        from: MemberState,
        to: MemberState,
        n: u64,
    ) -> Result<(), StoreError> {
        if from == to || n == 0 {
            return Ok(());
        }
        self.bump(campaign_id, wave, cohort, from, -(n as i64))
            .await?;
        self.bump(campaign_id, wave, cohort, to, n as i64).await
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
            .filter(campaign_cohort::Column::CampaignId.eq(campaign_id))
            .filter(campaign_cohort::Column::Manufacturer.eq(cohort.manufacturer.as_str()))
            .filter(campaign_cohort::Column::Model.eq(cohort.model.as_str()))
            .filter(campaign_cohort::Column::Version.eq(cohort.version.as_str()))
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
            .filter(campaign_cohort::Column::CampaignId.eq(campaign_id))
            .filter(campaign_cohort::Column::Manufacturer.eq(cohort.manufacturer.as_str()))
            .filter(campaign_cohort::Column::Model.eq(cohort.model.as_str()))
            .filter(campaign_cohort::Column::Version.eq(cohort.version.as_str()))
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

    /// The time zones of a campaign's members (with `None` for members without one).
    pub async fn zones(&self, campaign_id: i64) -> Result<Vec<Option<String>>, StoreError> {
        Ok(campaign_member::Entity::find()
            .select_only()
            .column(campaign_member::Column::Timezone)
            .distinct()
            .filter(campaign_member::Column::CampaignId.eq(campaign_id))
            .filter(campaign_member::Column::Exclusion.is_null())
            .into_tuple::<Option<String>>()
            .all(self.db)
            .await?)
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

    /// Moves every member matching `which` from its state to `to` (counts included), one
    /// (wave, cohort, state) at a time as the stored counts list them, each update counted by
    /// the rows it moved; passes repeat while members that match are left (a job's step may
    /// have moved one between the counts read and the update). Returns how many moved.
    async fn move_all(
        &self,
        campaign_id: i64,
        which: impl Fn(Option<u32>, &Cohort, MemberState) -> bool,
        to: MemberState,
        exclusion: Option<&str>,
    ) -> Result<u64, StoreError> {
        use campaign_member::Column;
        let mut moved = 0;
        for _ in 0..8 {
            let tally = self.tally(campaign_id).await?;
            let todo: Vec<(Option<u32>, Cohort, MemberState)> = tally
                .iter()
                .filter(|(w, c, s, _)| *s != to && which(*w, c, *s))
                .map(|(w, c, s, _)| (w, c.clone(), s))
                .collect();
            if todo.is_empty() {
                return Ok(moved);
            }
            for (wave, cohort, state) in todo {
                let mut update = campaign_member::Entity::update_many()
                    .col_expr(Column::State, Expr::value(to.as_str()))
                    .filter(Column::CampaignId.eq(campaign_id))
                    .filter(Column::Manufacturer.eq(cohort.manufacturer.as_str()))
                    .filter(Column::Model.eq(cohort.model.as_str()))
                    .filter(Column::Version.eq(cohort.version.as_str()))
                    .filter(Column::State.eq(state.as_str()));
                update = match wave {
                    Some(w) => update.filter(Column::Wave.eq(w as i32)),
                    None => update.filter(Column::Wave.is_null()),
                };
                if let Some(why) = exclusion {
                    update = update
                        .col_expr(Column::Exclusion, Expr::value(why))
                        .col_expr(Column::Active, Expr::value(false));
                }
                if to == MemberState::Planned {
                    update = update
                        .col_expr(Column::Exclusion, Expr::value(Option::<String>::None))
                        .col_expr(Column::Active, Expr::value(true));
                }
                let rows = update.exec(self.db).await?.rows_affected;
                self.shift(campaign_id, wave, &cohort, state, to, rows)
                    .await?;
                moved += rows;
            }
        }
        Err(StoreError::Conflict(format!(
            "campaign {campaign_id}: its members kept changing during a bulk move"
        )))
    }

    /// An operator excludes a cohort: its members leave the campaign (and every ratio), the
    /// ones not started are never started; devices in flight finish and are recorded.
    pub async fn exclude_cohort(
        &self,
        campaign_id: i64,
        cohort: &Cohort,
    ) -> Result<u64, StoreError> {
        self.move_all(
            campaign_id,
            |w, c, s| w.is_some() && c == cohort && s != MemberState::Excluded,
            MemberState::Excluded,
            Some(exclusion::OPERATOR),
        )
        .await
    }

    /// Cancel: members not started are cancelled.
    pub async fn cancel_planned(&self, campaign_id: i64) -> Result<u64, StoreError> {
        self.move_all(
            campaign_id,
            |_, _, s| s == MemberState::Planned,
            MemberState::Job(JobState::Cancelled),
            None,
        )
        .await
    }

    /// Retry: members whose job failed are planned again (a new job when they start).
    pub async fn retry_failed(&self, campaign_id: i64) -> Result<u64, StoreError> {
        self.move_all(
            campaign_id,
            |w, _, s| w.is_some() && s.failed(),
            MemberState::Planned,
            None,
        )
        .await
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

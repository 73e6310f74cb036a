//! A campaign's selection in SQL: every selected device with its cohort, its target firmware
//! and why it is excluded, inserted as members straight from the database (a million devices
//! never pass through the process) with random ranks and their waves, counted for a dry run,
//! or scanned for devices that match a dynamic campaign later.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, CaseStatement, Expr, ExprTrait, Func, OnConflict, Query, SimpleExpr,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use super::StoreError;
use super::campaign_members::{MemberStore, SelectionGroup, exclusion, nonneg};
use super::entity::{campaign_member, device};
use super::selection::selector_condition;
use crate::campaign::{Cohort, MemberState, Target};
use crate::selector::Selector;

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

impl<C: ConnectionTrait> MemberStore<'_, C> {
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
}

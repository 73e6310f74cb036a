//! A campaign's counts per (wave, cohort, state): read for planning, rebuilt at creation, moved
//! with every member change in the same transaction, and the operator's bulk moves (exclude a
//! cohort, cancel, retry the failed) that change many members and their counts at once.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::StoreError;
use super::campaign_members::{MemberStore, exclusion, nonneg, state_of, wave_key};
use super::entity::{campaign_count, campaign_member};
use crate::campaign::{Cohort, MemberState, Tally};
use crate::fumo::JobState;

impl<C: ConnectionTrait> MemberStore<'_, C> {
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
    pub(super) async fn bump(
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

    pub(super) async fn shift(
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
}

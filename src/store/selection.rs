//! A [`Selector`] as SQL over the `devices` table, for this store's queries and for other
//! store modules' own statements (a campaign's `INSERT … SELECT` of its members); and the
//! selected devices a page at a time, or counted.
//!
//! The condition means what [`Selector::matches`] means: exact comparisons, a NULL inventory
//! column matches no value, tags through one `EXISTS` per tag (all must hold), groups
//! through one `EXISTS … IN` (any), device ids against the id or the DevId.

use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::StoreError;
use super::devices::{Device, DeviceStore};
use super::entity::{device, device_group, device_tag};
use crate::selector::Selector;

/// The selector as a condition on rows of `devices`. Every column is qualified with the
/// table name, so the condition can sit in a statement that joins other tables (as long as
/// `devices` is not aliased). An empty selector is an empty (always true) condition.
pub(crate) fn selector_condition(selector: &Selector) -> Condition {
    let col = |c: device::Column| Expr::col((device::Entity, c));
    let mut cond = Condition::all();
    for (column, values) in [
        (device::Column::Manufacturer, &selector.manufacturers),
        (device::Column::Model, &selector.models),
        (device::Column::FwVersion, &selector.versions),
        (device::Column::HwVersion, &selector.hardware),
    ] {
        if !values.is_empty() {
            cond = cond.add(col(column).is_in(values.iter().cloned()));
        }
    }
    for (key, value) in &selector.tags {
        let tag = |c: device_tag::Column| Expr::col((device_tag::Entity, c));
        cond = cond.add(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(device_tag::Entity)
                .and_where(
                    tag(device_tag::Column::DeviceId).equals((device::Entity, device::Column::Id)),
                )
                .and_where(tag(device_tag::Column::Key).eq(key.as_str()))
                .and_where(tag(device_tag::Column::Value).eq(value.as_str()))
                .to_owned(),
        ));
    }
    if !selector.groups.is_empty() {
        let group = |c: device_group::Column| Expr::col((device_group::Entity, c));
        cond = cond.add(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(device_group::Entity)
                .and_where(
                    group(device_group::Column::DeviceId)
                        .equals((device::Entity, device::Column::Id)),
                )
                .and_where(group(device_group::Column::Name).is_in(selector.groups.iter().cloned()))
                .to_owned(),
        ));
    }
    if !selector.device_ids.is_empty() {
        cond = cond.add(
            Condition::any()
                .add(col(device::Column::Id).is_in(selector.device_ids.iter().cloned()))
                .add(col(device::Column::DevId).is_in(selector.device_ids.iter().cloned())),
        );
    }
    cond
}

/// `SELECT devices.id FROM devices WHERE <selector>`, for `IN (…)` and `INSERT … SELECT`.
pub(crate) fn selected_ids(selector: &Selector) -> SelectStatement {
    Query::select()
        .column((device::Entity, device::Column::Id))
        .from(device::Entity)
        .cond_where(selector_condition(selector))
        .to_owned()
}

impl<'a, C: ConnectionTrait + TransactionTrait> DeviceStore<'a, C> {
    /// The devices the selector selects, ordered by DevId, starting after the DevId `after`
    /// (keyset pagination: stable while devices come and go), with their labels (one query
    /// per label table for the whole page).
    pub async fn select(
        &self,
        selector: &Selector,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Device>, StoreError> {
        let mut query = device::Entity::find()
            .filter(selector_condition(selector))
            .order_by_asc(device::Column::DevId);
        if let Some(after) = after {
            query = query.filter(device::Column::DevId.gt(after));
        }
        let rows = query.limit(limit).all(self.db).await?;
        super::device_labels::with_labels(self.db, rows).await
    }

    /// How many devices the selector selects.
    pub async fn count(&self, selector: &Selector) -> Result<u64, StoreError> {
        Ok(device::Entity::find()
            .filter(selector_condition(selector))
            .count(self.db)
            .await?)
    }
}

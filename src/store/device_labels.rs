//! Device labels in the database: tags, static groups and the time zone. Loading them for a
//! page of devices (one query per label table, never one per device), replacing them on one
//! device, and adding or removing tags on every device a selector selects.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionSession, TransactionTrait,
};

use super::StoreError;
use super::devices::{Device, DeviceStore, to_device};
use super::entity::{device, device_group, device_tag};
use super::selection::{selected_ids, selector_condition};
use crate::selector::{MAX_TAGS, Selector};

/// Ids per `IN (…)` list: far below every backend's bound-parameter limit.
const IN_CHUNK: usize = 1000;

/// The rows as devices, with the tags and groups of all of them read in one query per table
/// (per thousand devices).
pub(super) async fn with_labels<C: ConnectionTrait>(
    db: &C,
    rows: Vec<device::Model>,
) -> Result<Vec<Device>, StoreError> {
    let mut tags: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    let ids: Vec<&str> = rows.iter().map(|m| m.id.as_str()).collect();
    for chunk in ids.chunks(IN_CHUNK) {
        for t in device_tag::Entity::find()
            .filter(device_tag::Column::DeviceId.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            tags.entry(t.device_id).or_default().insert(t.key, t.value);
        }
        for g in device_group::Entity::find()
            .filter(device_group::Column::DeviceId.is_in(chunk.iter().copied()))
            .order_by_asc(device_group::Column::Name)
            .all(db)
            .await?
        {
            groups.entry(g.device_id).or_default().push(g.name);
        }
    }
    rows.iter()
        .map(|m| {
            to_device(
                m,
                tags.remove(&m.id).unwrap_or_default(),
                groups.remove(&m.id).unwrap_or_default(),
            )
        })
        .collect()
}

/// Rows of `device_tags` for one device.
pub(super) fn tag_rows(
    device_id: &str,
    tags: &BTreeMap<String, String>,
) -> impl Iterator<Item = device_tag::ActiveModel> {
    tags.iter()
        .map(move |(key, value)| device_tag::ActiveModel {
            device_id: Set(device_id.to_owned()),
            key: Set(key.clone()),
            value: Set(value.clone()),
        })
}

/// Rows of `device_groups` for one device.
pub(super) fn group_rows(
    device_id: &str,
    groups: &[String],
) -> impl Iterator<Item = device_group::ActiveModel> {
    groups.iter().map(move |name| device_group::ActiveModel {
        device_id: Set(device_id.to_owned()),
        name: Set(name.clone()),
    })
}

/// What a bulk tag change did, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkTagOutcome {
    /// `changed` of the `matched` devices had a tag added, changed or removed.
    Applied { matched: u64, changed: u64 },
    /// The selector selects more devices than one change may touch; nothing was written.
    TooManyDevices { matched: u64, limit: u64 },
    /// That many devices would carry more than [`MAX_TAGS`] tags; nothing was written.
    TooManyTags { devices: u64 },
}

impl<'a, C: ConnectionTrait + TransactionTrait> DeviceStore<'a, C> {
    /// Replaces, in one transaction, the labels given: `None` leaves one as it is, the time
    /// zone `Some(None)` clears it. `NotFound` for an unknown device.
    pub async fn set_labels(
        &self,
        id: &str,
        tags: Option<&BTreeMap<String, String>>,
        groups: Option<&[String]>,
        timezone: Option<Option<&str>>,
        now: DateTime<Utc>,
    ) -> Result<Device, StoreError> {
        let txn = super::begin_write(self.db).await?;
        let mut update = device::Entity::update_many()
            .filter(device::Column::Id.eq(id))
            .col_expr(device::Column::UpdatedAt, Expr::value(now));
        if let Some(zone) = timezone {
            update = update.col_expr(
                device::Column::Timezone,
                Expr::value(zone.map(str::to_owned)),
            );
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(tags) = tags {
            device_tag::Entity::delete_many()
                .filter(device_tag::Column::DeviceId.eq(id))
                .exec(&txn)
                .await?;
            device_tag::Entity::insert_many(tag_rows(id, tags))
                .exec_without_returning(&txn)
                .await?;
        }
        if let Some(groups) = groups {
            device_group::Entity::delete_many()
                .filter(device_group::Column::DeviceId.eq(id))
                .exec(&txn)
                .await?;
            device_group::Entity::insert_many(group_rows(id, groups))
                .exec_without_returning(&txn)
                .await?;
        }
        let device = DeviceStore::new(&txn)
            .get(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        txn.commit().await?;
        Ok(device)
    }

    /// Adds (or changes the value of) the tags `add` and removes the keys `remove` on every
    /// device the selector selects, in one transaction of a few statements whatever the number
    /// of devices (`INSERT … SELECT`, `DELETE … IN (SELECT …)`). Refuses, writing nothing,
    /// when more than `max_devices` are selected or a device would carry more than
    /// [`MAX_TAGS`] tags. The devices that changed get a new `updated_at`.
    pub async fn bulk_tags(
        &self,
        selector: &Selector,
        add: &BTreeMap<String, String>,
        remove: &[String],
        max_devices: u64,
        now: DateTime<Utc>,
    ) -> Result<BulkTagOutcome, StoreError> {
        let txn = super::begin_write(self.db).await?;
        let matched = DeviceStore::new(&txn).count(selector).await?;
        if matched > max_devices {
            return Ok(BulkTagOutcome::TooManyDevices {
                matched,
                limit: max_devices,
            });
        }
        let tag = |c: device_tag::Column| Expr::col((device_tag::Entity, c));
        let this_device =
            || tag(device_tag::Column::DeviceId).equals((device::Entity, device::Column::Id));
        // A device changes when it lacks one of the tags to add (or has another value), or
        // has one of the keys to remove. Counted by the UPDATE that stamps them, before the
        // tag writes that would hide the difference.
        let mut differs = Condition::any();
        for (key, value) in add {
            differs = differs.add(
                Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from(device_tag::Entity)
                        .and_where(this_device())
                        .and_where(tag(device_tag::Column::Key).eq(key.as_str()))
                        .and_where(tag(device_tag::Column::Value).eq(value.as_str()))
                        .to_owned(),
                )
                .not(),
            );
        }
        if !remove.is_empty() {
            differs = differs.add(Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(device_tag::Entity)
                    .and_where(this_device())
                    .and_where(tag(device_tag::Column::Key).is_in(remove.iter().cloned()))
                    .to_owned(),
            ));
        }
        let changed = device::Entity::update_many()
            .col_expr(device::Column::UpdatedAt, Expr::value(now))
            .filter(selector_condition(selector))
            .filter(differs)
            .exec(&txn)
            .await?
            .rows_affected;

        if !remove.is_empty() {
            device_tag::Entity::delete_many()
                .filter(device_tag::Column::Key.is_in(remove.iter().cloned()))
                .filter(device_tag::Column::DeviceId.in_subquery(selected_ids(selector)))
                .exec(&txn)
                .await?;
        }
        for (key, value) in add {
            let rows = Query::select()
                .column((device::Entity, device::Column::Id))
                .expr_as(Expr::val(key.as_str()), Alias::new("key"))
                .expr_as(Expr::val(value.as_str()), Alias::new("value"))
                .from(device::Entity)
                .cond_where(selector_condition(selector))
                // SQLite reads `INSERT … SELECT … ON CONFLICT` only when the SELECT has a
                // WHERE clause; an empty selector has none of its own.
                .and_where(Expr::val(1).eq(1))
                .to_owned();
            let insert = Query::insert()
                .into_table(device_tag::Entity)
                .columns([
                    device_tag::Column::DeviceId,
                    device_tag::Column::Key,
                    device_tag::Column::Value,
                ])
                .select_from(rows)
                .map_err(|e| StoreError::Database(sea_orm::DbErr::Custom(e.to_string())))?
                .on_conflict(
                    OnConflict::columns([device_tag::Column::DeviceId, device_tag::Column::Key])
                        .update_column(device_tag::Column::Value)
                        .to_owned(),
                )
                .to_owned();
            txn.execute(&insert).await?;
        }
        if !add.is_empty() {
            let crowded = Query::select()
                .column(device_tag::Column::DeviceId)
                .from(device_tag::Entity)
                .and_where(
                    Expr::col(device_tag::Column::DeviceId).in_subquery(selected_ids(selector)),
                )
                .group_by_col(device_tag::Column::DeviceId)
                .and_having(
                    Expr::col(device_tag::Column::Key)
                        .count()
                        .gt(MAX_TAGS as i64),
                )
                .to_owned();
            let count = Query::select()
                .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
                .from_subquery(crowded, Alias::new("crowded"))
                .to_owned();
            let devices: i64 = match txn.query_one(&count).await? {
                Some(row) => row.try_get("", "n")?,
                None => 0,
            };
            if devices > 0 {
                return Ok(BulkTagOutcome::TooManyTags {
                    devices: devices as u64,
                });
            }
        }
        txn.commit().await?;
        Ok(BulkTagOutcome::Applied { matched, changed })
    }
}

//! Devices written in bulk: provisioning's rows (device, tags, groups) as multi-row INSERTs,
//! and one import batch as one transaction that is written whole or not at all.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, Iterable, QueryFilter, QuerySelect,
    Set, TransactionSession, TransactionTrait,
};

use super::StoreError;
use super::device_labels::{group_rows, tag_rows};
use super::devices::{DeviceStore, NewDevice, auth_type_name};
use super::entity::{device, device_group, device_tag};

/// Bound parameters per INSERT statement: under SQLite's default limit (32766) and
/// PostgreSQL's (65535), whatever the row width.
const PARAMS_PER_STATEMENT: usize = 30_000;

/// What became of one import batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every device of the batch was written.
    Imported(u64),
    /// These DevIds of the batch are already provisioned; nothing was written.
    Taken(Vec<String>),
}

fn device_row(new: &NewDevice, id: String, now: DateTime<Utc>) -> device::ActiveModel {
    device::ActiveModel {
        id: Set(id),
        dev_id: Set(new.dev_id.clone()),
        msisdn: Set(new.msisdn.clone()),
        client_auth_type: Set(auth_type_name(new.client_auth_type).into()),
        client_name: Set(new.client_name.clone()),
        client_secret_hash: Set(new.client_secret_hash.clone()),
        client_nonce: Set(new.client_nonce.clone()),
        server_auth_type: Set(auth_type_name(new.server_auth_type).into()),
        server_name: Set(new.server_name.clone()),
        server_secret_hash: Set(new.server_secret_hash.clone()),
        server_secret_sealed: Set(new.server_secret_sealed.clone()),
        server_nonce: Set(new.server_nonce.clone()),
        push_url: Set(new.push_url.clone()),
        large_objects: Set(None),
        max_obj_size: Set(None),
        max_msg_size: Set(None),
        manufacturer: Set(new.inventory.manufacturer.clone()),
        model: Set(new.inventory.model.clone()),
        fw_version: Set(new.inventory.fw_version.clone()),
        sw_version: Set(None),
        hw_version: Set(new.inventory.hw_version.clone()),
        lang: Set(None),
        dm_version: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_seen_at: Set(None),
        message_seq: Set(0),
        ignores_resp_uri: Set(new.ignores_resp_uri),
        timezone: Set(new.timezone.clone()),
    }
}

/// Inserts the devices with their tags and groups, a few multi-row statements per table;
/// returns their new ids in order. Run it inside a transaction: it is not atomic by itself.
pub(super) async fn insert_devices<C: ConnectionTrait>(
    db: &C,
    devices: &[NewDevice],
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = devices
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let per = |columns: usize| (PARAMS_PER_STATEMENT / columns).max(1);
    let rows: Vec<device::ActiveModel> = devices
        .iter()
        .zip(&ids)
        .map(|(new, id)| device_row(new, id.clone(), now))
        .collect();
    let columns = device::Column::iter().count();
    for chunk in rows.chunks(per(columns)) {
        device::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    let tags: Vec<device_tag::ActiveModel> = devices
        .iter()
        .zip(&ids)
        .flat_map(|(new, id)| tag_rows(id, &new.tags))
        .collect();
    for chunk in tags.chunks(per(3)) {
        device_tag::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    let groups: Vec<device_group::ActiveModel> = devices
        .iter()
        .zip(&ids)
        .flat_map(|(new, id)| group_rows(id, &new.groups))
        .collect();
    for chunk in groups.chunks(per(2)) {
        device_group::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    Ok(ids)
}

/// The DevIds among `dev_ids` that are already provisioned, sorted.
async fn taken<C: ConnectionTrait>(db: &C, dev_ids: &[&str]) -> Result<Vec<String>, StoreError> {
    let mut found = BTreeSet::new();
    for chunk in dev_ids.chunks(1000) {
        let rows: Vec<String> = device::Entity::find()
            .select_only()
            .column(device::Column::DevId)
            .filter(device::Column::DevId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found.into_iter().collect())
}

impl<'a, C: ConnectionTrait + TransactionTrait> DeviceStore<'a, C> {
    /// The DevIds among these that are already provisioned, sorted.
    pub async fn taken_dev_ids(&self, dev_ids: &[&str]) -> Result<Vec<String>, StoreError> {
        taken(self.db, dev_ids).await
    }

    /// Provisions a batch of devices (DevIds distinct among themselves) in one transaction:
    /// all of them, or none when any DevId is already taken (then the taken ones are named).
    ///
    /// No lookup comes first: the unique index decides, and only a refused batch pays for
    /// finding which DevIds were taken. (A lookup per batch also runs under a plan that
    /// PostgreSQL may have cached while the table was empty: a scan of the whole table per
    /// batch once it has grown.)
    pub async fn import_batch(
        &self,
        devices: &[NewDevice],
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        let txn = super::begin_write(self.db).await?;
        match insert_devices(&txn, devices, now).await {
            Ok(_) => {
                txn.commit().await?;
                Ok(BatchOutcome::Imported(devices.len() as u64))
            }
            Err(StoreError::Conflict(what)) => {
                // The transaction is spoilt (PostgreSQL): roll back, then look from outside.
                txn.rollback().await?;
                let dev_ids: Vec<&str> = devices.iter().map(|d| d.dev_id.as_str()).collect();
                let already = taken(self.db, &dev_ids).await?;
                if already.is_empty() {
                    return Err(StoreError::Conflict(what));
                }
                Ok(BatchOutcome::Taken(already))
            }
            Err(other) => Err(other),
        }
    }

    /// Refreshes the planner's statistics of the device tables after a bulk change, so that
    /// selections over them are planned for their new size (PostgreSQL; SQLite's planner
    /// needs none to use the indexes).
    pub async fn analyze(&self) -> Result<(), StoreError> {
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            self.db
                .execute_unprepared("ANALYZE devices, device_tags, device_groups")
                .await?;
        }
        Ok(())
    }
}

//! Devices in the database: provisioning, credentials and nonces, inventory and the tree snapshot.
//! Labels (tags, groups, time zone) are in `device_labels.rs`, selection in `selection.rs`,
//! bulk import in `device_import.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};

use super::StoreError;
use super::entity::{device, device_node};
use crate::dm::auth::AuthType;
use crate::selector::DeviceFacts;
use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};

/// What provisioning stores. Secrets arrive already in their stored form.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub dev_id: String,
    pub msisdn: Option<String>,
    pub client_auth_type: AuthType,
    pub client_name: String,
    /// `B64(MD5(name:secret))` of the device's own credentials.
    pub client_secret_hash: String,
    /// The CLCRED nonce the device starts from, base64 (`""` = the empty nonce), as a
    /// bootstrap set it; `None` = unknown (the device's first credential is challenged).
    pub client_nonce: Option<String>,
    pub server_auth_type: AuthType,
    pub server_name: String,
    pub server_secret_hash: String,
    /// The server secret sealed with the service's secrets key; only for `basic`.
    pub server_secret_sealed: Option<String>,
    /// The SRVCRED nonce the device holds, base64 (`""` = the empty nonce); `None` = unknown
    /// (our first credentials use the resynchronisation default and the device re-seeds it).
    pub server_nonce: Option<String>,
    /// Where Package 0 goes when pushed directly (simulators, lab devices).
    pub push_url: Option<String>,
    /// The device's DM client does not follow RespURI, so later messages of a session
    /// arrive without the session token (see `Device::ignores_resp_uri`).
    pub ignores_resp_uri: bool,
    /// What the factory recorded; the device's own DevInfo/DevDetail overwrite it.
    pub inventory: DeclaredInventory,
    pub tags: BTreeMap<String, String>,
    pub groups: Vec<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
}

/// The inventory provisioning may declare before the device reports its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredInventory {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub fw_version: Option<String>,
    pub hw_version: Option<String>,
}

/// What DevInfo and DevDetail told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Inventory {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub fw_version: Option<String>,
    pub sw_version: Option<String>,
    pub hw_version: Option<String>,
    pub lang: Option<String>,
    pub dm_version: Option<String>,
    pub large_objects: Option<bool>,
    pub max_obj_size: Option<u64>,
    pub max_msg_size: Option<u64>,
}

/// A device as the service sees it, secrets excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub dev_id: String,
    pub msisdn: Option<String>,
    pub client_auth_type: AuthType,
    pub client_name: String,
    pub server_auth_type: AuthType,
    pub server_name: String,
    pub push_url: Option<String>,
    /// Set at provisioning for DM clients known not to follow RespURI: their later messages
    /// are accepted without the per-session token (HMAC devices still authenticate each one).
    pub ignores_resp_uri: bool,
    /// Bumped by every DM message the device's sessions take; the optimistic lock that makes
    /// one message one atomic step across replicas.
    pub message_seq: i64,
    pub inventory: Inventory,
    /// Key=value labels, by key.
    pub tags: BTreeMap<String, String>,
    /// Static groups, by name.
    pub groups: Vec<String>,
    /// IANA time zone name (`Europe/Paris`): where the device's local time is reckoned.
    pub timezone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl Device {
    /// What a [`crate::selector::Selector`] looks at.
    pub fn facts(&self) -> DeviceFacts<'_> {
        DeviceFacts {
            id: &self.id,
            dev_id: &self.dev_id,
            manufacturer: self.inventory.manufacturer.as_deref(),
            model: self.inventory.model.as_deref(),
            fw_version: self.inventory.fw_version.as_deref(),
            hw_version: self.inventory.hw_version.as_deref(),
            tags: &self.tags,
            groups: &self.groups,
        }
    }
}

/// The credential material the DM engine needs; never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSecrets {
    pub client_secret_hash: String,
    pub client_nonce: Option<String>,
    pub server_secret_hash: String,
    pub server_secret_sealed: Option<String>,
    pub server_nonce: Option<String>,
}

pub fn auth_type_name(t: AuthType) -> &'static str {
    match t {
        AuthType::Basic => "basic",
        AuthType::Md5 => "md5",
        AuthType::Hmac => "hmac",
    }
}

pub fn parse_auth_type(s: &str) -> Option<AuthType> {
    match s {
        "basic" => Some(AuthType::Basic),
        "md5" => Some(AuthType::Md5),
        "hmac" => Some(AuthType::Hmac),
        _ => None,
    }
}

/// The row as a device, its labels as given (see `device_labels::with_labels`).
pub(super) fn to_device(
    m: &device::Model,
    tags: BTreeMap<String, String>,
    groups: Vec<String>,
) -> Result<Device, StoreError> {
    let auth = |s: &str| {
        parse_auth_type(s).ok_or_else(|| {
            StoreError::Database(sea_orm::DbErr::Type(format!("unknown auth type {s}")))
        })
    };
    Ok(Device {
        id: m.id.clone(),
        dev_id: m.dev_id.clone(),
        msisdn: m.msisdn.clone(),
        client_auth_type: auth(&m.client_auth_type)?,
        client_name: m.client_name.clone(),
        server_auth_type: auth(&m.server_auth_type)?,
        server_name: m.server_name.clone(),
        push_url: m.push_url.clone(),
        ignores_resp_uri: m.ignores_resp_uri,
        message_seq: m.message_seq,
        inventory: Inventory {
            manufacturer: m.manufacturer.clone(),
            model: m.model.clone(),
            fw_version: m.fw_version.clone(),
            sw_version: m.sw_version.clone(),
            hw_version: m.hw_version.clone(),
            lang: m.lang.clone(),
            dm_version: m.dm_version.clone(),
            large_objects: m.large_objects,
            max_obj_size: m.max_obj_size.map(|v| v.max(0) as u64),
            max_msg_size: m.max_msg_size.map(|v| v.max(0) as u64),
        },
        tags,
        groups,
        timezone: m.timezone.clone(),
        created_at: m.created_at,
        updated_at: m.updated_at,
        last_seen_at: m.last_seen_at,
    })
}

fn to_secrets(m: &device::Model) -> DeviceSecrets {
    DeviceSecrets {
        client_secret_hash: m.client_secret_hash.clone(),
        client_nonce: m.client_nonce.clone(),
        server_secret_hash: m.server_secret_hash.clone(),
        server_secret_sealed: m.server_secret_sealed.clone(),
        server_nonce: m.server_nonce.clone(),
    }
}

/// One leaf of a device's tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    pub uri: String,
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

pub struct DeviceStore<'a, C = DatabaseConnection> {
    pub(super) db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> DeviceStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        DeviceStore { db }
    }

    /// Provisions a device with its labels, in one transaction; `Conflict` when the DevId is
    /// taken.
    pub async fn create(&self, new: NewDevice, now: DateTime<Utc>) -> Result<Device, StoreError> {
        let txn = super::begin_write(self.db).await?;
        let id = super::device_import::insert_devices(&txn, std::slice::from_ref(&new), now)
            .await?
            .remove(0);
        let device = DeviceStore::new(&txn)
            .get(&id)
            .await?
            .ok_or(StoreError::NotFound)?;
        txn.commit().await?;
        Ok(device)
    }

    /// One device with its labels.
    pub async fn get(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let Some(m) = device::Entity::find_by_id(id.to_owned())
            .one(self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(super::device_labels::with_labels(self.db, vec![m])
            .await?
            .pop())
    }

    /// By the OMA DM DevId (the SyncHdr Source of its messages), with its secrets.
    pub async fn by_dev_id(
        &self,
        dev_id: &str,
    ) -> Result<Option<(Device, DeviceSecrets)>, StoreError> {
        let Some(m) = device::Entity::find()
            .filter(device::Column::DevId.eq(dev_id))
            .one(self.db)
            .await?
        else {
            return Ok(None);
        };
        let secrets = to_secrets(&m);
        let device = super::device_labels::with_labels(self.db, vec![m])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        Ok(Some((device, secrets)))
    }

    pub async fn secrets(&self, id: &str) -> Result<Option<DeviceSecrets>, StoreError> {
        Ok(device::Entity::find_by_id(id.to_owned())
            .one(self.db)
            .await?
            .map(|m| to_secrets(&m)))
    }

    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let result = device::Entity::delete_by_id(id.to_owned())
            .exec(self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn set_client_nonce(&self, id: &str, nonce_b64: &str) -> Result<(), StoreError> {
        self.update_column(id, device::Column::ClientNonce, nonce_b64.to_owned())
            .await
    }

    pub async fn set_server_nonce(&self, id: &str, nonce_b64: &str) -> Result<(), StoreError> {
        self.update_column(id, device::Column::ServerNonce, nonce_b64.to_owned())
            .await
    }

    async fn update_column(
        &self,
        id: &str,
        column: device::Column,
        value: String,
    ) -> Result<(), StoreError> {
        device::Entity::update_many()
            .col_expr(column, Expr::value(value))
            .filter(device::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(())
    }

    /// Takes the device's next DM message step: bumps its message sequence from `seen` (what
    /// the caller read before running the engine) and its last-seen time. `false` when another
    /// replica took a step since `seen`: the caller lost the race and must write nothing.
    /// Run it first in the message's transaction: it is the write that serialises the device.
    pub async fn take_message_step(
        &self,
        id: &str,
        seen: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = device::Entity::update_many()
            .col_expr(device::Column::MessageSeq, Expr::value(seen + 1))
            .col_expr(device::Column::LastSeenAt, Expr::value(now))
            .filter(device::Column::Id.eq(id))
            .filter(device::Column::MessageSeq.eq(seen))
            .exec(self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn set_limits(
        &self,
        id: &str,
        max_msg_size: Option<u64>,
        max_obj_size: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut update = device::Entity::update_many().filter(device::Column::Id.eq(id));
        if let Some(v) = max_msg_size {
            update = update.col_expr(device::Column::MaxMsgSize, Expr::value(v as i64));
        }
        if let Some(v) = max_obj_size {
            update = update.col_expr(device::Column::MaxObjSize, Expr::value(v as i64));
        }
        if max_msg_size.is_some() || max_obj_size.is_some() {
            update.exec(self.db).await?;
        }
        Ok(())
    }

    /// Records one tree value and, for the DevInfo/DevDetail leaves we index, the inventory column.
    pub async fn record_node(
        &self,
        id: &str,
        uri: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        device_node::Entity::insert(device_node::ActiveModel {
            device_id: Set(id.to_owned()),
            uri: Set(uri.to_owned()),
            value: Set(value.to_owned()),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([device_node::Column::DeviceId, device_node::Column::Uri])
                .update_columns([device_node::Column::Value, device_node::Column::UpdatedAt])
                .to_owned(),
        )
        .exec(self.db)
        .await?;

        let column = match uri {
            "./DevInfo/Man" => Some(device::Column::Manufacturer),
            "./DevInfo/Mod" => Some(device::Column::Model),
            "./DevInfo/Lang" => Some(device::Column::Lang),
            "./DevInfo/DmV" => Some(device::Column::DmVersion),
            "./DevDetail/FwV" => Some(device::Column::FwVersion),
            "./DevDetail/SwV" => Some(device::Column::SwVersion),
            "./DevDetail/HwV" => Some(device::Column::HwVersion),
            _ => None,
        };
        let mut update = device::Entity::update_many()
            .filter(device::Column::Id.eq(id))
            .col_expr(device::Column::UpdatedAt, Expr::value(now));
        if let Some(column) = column {
            update = update.col_expr(column, Expr::value(value.to_owned()));
        } else if uri == "./DevDetail/LrgObj" {
            let supported = value.trim().eq_ignore_ascii_case("true");
            update = update.col_expr(device::Column::LargeObjects, Expr::value(supported));
        } else if uri == "./DevDetail/Ext/MaxObjSize" || uri == "./DevDetail/MaxObjSize" {
            if let Ok(size) = value.trim().parse::<i64>() {
                update = update.col_expr(device::Column::MaxObjSize, Expr::value(size));
            }
        } else {
            return Ok(());
        }
        update.exec(self.db).await?;
        Ok(())
    }

    /// The device's tree snapshot, ordered by URI.
    pub async fn tree(&self, id: &str) -> Result<Vec<TreeNode>, StoreError> {
        Ok(device_node::Entity::find()
            .filter(device_node::Column::DeviceId.eq(id))
            .order_by_asc(device_node::Column::Uri)
            .all(self.db)
            .await?
            .into_iter()
            .map(|m| TreeNode {
                uri: m.uri,
                value: m.value,
                updated_at: m.updated_at,
            })
            .collect())
    }
}

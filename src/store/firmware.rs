//! Firmware images: metadata rows beside their content-addressed blobs.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::StoreError;
use super::entity::{firmware, package, package_job};
use sea_orm::{ConnectionTrait, TransactionSession};

/// A stored firmware image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Firmware {
    pub id: i64,
    /// DevInfo `Man`.
    pub manufacturer: String,
    /// DevInfo `Mod`.
    pub model: String,
    pub version: String,
    /// Free-form hardware constraint, e.g. `rev >= C`.
    pub hardware: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
    /// Lower-case hex sha256 of the image.
    pub sha256: String,
    pub size: u64,
    /// Blob store key of the image (`firmware/<sha256>`).
    pub blob_key: String,
    /// Anti-rollback: a device refuses a package whose security version is below the one it
    /// runs. Signed into every package built for this firmware.
    pub security_version: u64,
    pub created_at: DateTime<Utc>,
}

impl From<firmware::Model> for Firmware {
    fn from(m: firmware::Model) -> Self {
        Firmware {
            id: m.id,
            manufacturer: m.manufacturer,
            model: m.model,
            version: m.version,
            hardware: m.hardware,
            notes: m.notes,
            sha256: m.sha256,
            size: m.size as u64,
            blob_key: m.blob_key,
            security_version: u64::try_from(m.security_version).unwrap_or(0),
            created_at: m.created_at,
        }
    }
}

/// What an upload adds.
#[derive(Debug, Clone)]
pub struct NewFirmware {
    pub manufacturer: String,
    pub model: String,
    pub version: String,
    pub hardware: Option<String>,
    pub notes: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub blob_key: String,
    pub security_version: u64,
}

/// Filters of a listing; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct FirmwareFilter {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
}

pub struct FirmwareStore<'a, C = DatabaseConnection> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait + TransactionTrait> FirmwareStore<'a, C> {
    pub(super) fn new(db: &'a C) -> Self {
        FirmwareStore { db }
    }

    /// Adds a firmware row; `Conflict` when (manufacturer, model, version) is taken.
    pub async fn insert(
        &self,
        new: NewFirmware,
        now: DateTime<Utc>,
    ) -> Result<Firmware, StoreError> {
        let model = firmware::ActiveModel {
            manufacturer: Set(new.manufacturer),
            model: Set(new.model),
            version: Set(new.version),
            hardware: Set(new.hardware),
            notes: Set(new.notes),
            sha256: Set(new.sha256),
            size: Set(new.size as i64),
            blob_key: Set(new.blob_key),
            security_version: Set(new.security_version as i64),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        Ok(model.into())
    }

    pub async fn get(&self, id: i64) -> Result<Option<Firmware>, StoreError> {
        Ok(firmware::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .map(Into::into))
    }

    pub async fn find(
        &self,
        manufacturer: &str,
        model: &str,
        version: &str,
    ) -> Result<Option<Firmware>, StoreError> {
        Ok(firmware::Entity::find()
            .filter(firmware::Column::Manufacturer.eq(manufacturer))
            .filter(firmware::Column::Model.eq(model))
            .filter(firmware::Column::Version.eq(version))
            .one(self.db)
            .await?
            .map(Into::into))
    }

    /// The first firmware whose image has this digest, if any.
    pub async fn find_by_sha256(&self, sha256: &str) -> Result<Option<Firmware>, StoreError> {
        Ok(firmware::Entity::find()
            .filter(firmware::Column::Sha256.eq(sha256))
            .order_by_asc(firmware::Column::Id)
            .one(self.db)
            .await?
            .map(Into::into))
    }

    /// Firmware in id order, after the cursor `after`.
    pub async fn list(
        &self,
        filter: &FirmwareFilter,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<Firmware>, StoreError> {
        let mut query = firmware::Entity::find().order_by_asc(firmware::Column::Id);
        if let Some(m) = &filter.manufacturer {
            query = query.filter(firmware::Column::Manufacturer.eq(m.as_str()));
        }
        if let Some(m) = &filter.model {
            query = query.filter(firmware::Column::Model.eq(m.as_str()));
        }
        if let Some(v) = &filter.version {
            query = query.filter(firmware::Column::Version.eq(v.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(firmware::Column::Id.gt(after));
        }
        Ok(query
            .limit(limit)
            .all(self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Deletes the row unless a package or a build job refers to it (`Conflict`), and
    /// tells whether another row still uses the same image (so its blob must stay).
    pub async fn delete(&self, id: i64) -> Result<DeletedFirmware, StoreError> {
        let txn = super::begin_write(self.db).await?;
        let row = firmware::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let packages = package::Entity::find()
            .filter(
                package::Column::TargetFirmwareId
                    .eq(id)
                    .or(package::Column::SourceFirmwareId.eq(id)),
            )
            .count(&txn)
            .await?;
        let jobs = package_job::Entity::find()
            .filter(
                package_job::Column::TargetFirmwareId
                    .eq(id)
                    .or(package_job::Column::SourceFirmwareId.eq(id)),
            )
            .count(&txn)
            .await?;
        if packages > 0 || jobs > 0 {
            return Err(StoreError::InUse(format!(
                "firmware {id} is used by {packages} package(s) and {jobs} build job(s)"
            )));
        }
        firmware::Entity::delete_by_id(id).exec(&txn).await?;
        let same_image = firmware::Entity::find()
            .filter(firmware::Column::Sha256.eq(row.sha256.as_str()))
            .count(&txn)
            .await?;
        txn.commit().await?;
        Ok(DeletedFirmware {
            firmware: row.into(),
            blob_still_used: same_image > 0,
        })
    }

    /// How many firmware rows use this image.
    pub async fn count_by_sha256(&self, sha256: &str) -> Result<u64, StoreError> {
        Ok(firmware::Entity::find()
            .filter(firmware::Column::Sha256.eq(sha256))
            .count(self.db)
            .await?)
    }
}

/// The outcome of a delete.
#[derive(Debug, Clone)]
pub struct DeletedFirmware {
    pub firmware: Firmware,
    pub blob_still_used: bool,
}

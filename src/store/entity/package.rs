//! Entity of the `packages` table: signed packages (built here or uploaded) and their blobs.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "packages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub origin: String,
    pub target_firmware_id: Option<i64>,
    pub source_firmware_id: Option<i64>,
    pub manufacturer: String,
    pub model: String,
    pub target_version: String,
    pub target_sha256: String,
    pub source_version: Option<String>,
    pub source_sha256: Option<String>,
    pub encoding: String,
    pub manifest: String,
    pub blob_key: String,
    pub size: i64,
    pub sha256: String,
    pub key_id: String,
    pub job_id: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Entity of the `firmware` table: uploaded full images and their metadata.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "firmware")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub manufacturer: String,
    pub model: String,
    pub version: String,
    pub hardware: Option<String>,
    pub notes: Option<String>,
    pub sha256: String,
    pub size: i64,
    pub blob_key: String,
    pub created_at: DateTimeUtc,
    pub security_version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

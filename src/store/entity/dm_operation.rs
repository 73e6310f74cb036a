//! Entity of the `dm_operations` table: management commands queued for a device.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dm_operations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub device_id: String,
    pub operation: String,
    pub sequence_group: Option<String>,
    pub state: String,
    pub status_code: Option<i32>,
    pub results: Option<String>,
    pub failure: Option<String>,
    pub session_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub owner: Option<String>,
    pub session_row: Option<i64>,
    pub result_code: Option<i32>,
    pub correlator: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

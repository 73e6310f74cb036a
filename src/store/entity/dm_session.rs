//! Entity of the `dm_sessions` table: a DM session's engine state and its log line.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dm_sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub device_id: String,
    pub session_id: String,
    pub state: String,
    pub version: i32,
    pub encoding: String,
    pub auth_outcome: String,
    pub messages: i32,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub end_reason: Option<String>,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

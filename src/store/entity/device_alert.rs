//! Entity of the `device_alerts` table: every Generic Alert (1226) and other alert a device sent.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub device_id: String,
    pub received_at: DateTimeUtc,
    pub session_id: Option<String>,
    pub code: i32,
    pub alert_type: Option<String>,
    pub source: Option<String>,
    pub correlator: Option<String>,
    pub format: Option<String>,
    pub mark: Option<String>,
    pub data: Option<String>,
    pub result_code: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

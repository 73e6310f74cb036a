//! Entity of the `campaign_members` table: one selected device of a campaign.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaign_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub device_id: String,
    pub wave: Option<i32>,
    pub rank: i64,
    pub manufacturer: String,
    pub model: String,
    pub version: String,
    pub timezone: Option<String>,
    pub target_firmware_id: Option<i64>,
    pub state: String,
    pub exclusion: Option<String>,
    pub active: bool,
    pub job_id: Option<i64>,
    pub result_code: Option<i32>,
    pub failure: Option<String>,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Entity of the `campaign_cohorts` table: a campaign's (manufacturer, model, source version)
//! cohorts with their target and the builds queued for them.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaign_cohorts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub manufacturer: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub model: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: String,
    pub target_firmware_id: Option<i64>,
    pub source_firmware_id: Option<i64>,
    pub full_job_id: Option<i64>,
    pub delta_job_id: Option<i64>,
    pub package_id: Option<i64>,
    pub devices: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

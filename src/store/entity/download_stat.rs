//! Entity of the `download_stats` table: bytes served and install status per download job key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "download_stats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_key: String,
    pub package_id: i64,
    pub bytes_served: i64,
    pub responses: i64,
    pub first_served_at: Option<DateTimeUtc>,
    pub last_served_at: Option<DateTimeUtc>,
    pub install_status: Option<i32>,
    pub install_message: Option<String>,
    pub install_reported_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

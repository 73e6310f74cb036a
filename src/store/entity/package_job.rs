//! Entity of the `package_jobs` table: the durable queue of package builds.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "package_jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub target_firmware_id: i64,
    pub source_firmware_id: Option<i64>,
    pub target_sha256: String,
    pub source_sha256: String,
    pub format: String,
    pub state: String,
    pub attempts: i32,
    pub progress: i32,
    pub error: Option<String>,
    pub outcome: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub next_attempt_at: DateTimeUtc,
    pub full_package_id: Option<i64>,
    pub delta_package_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

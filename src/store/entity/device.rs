//! Entity of the `devices` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub dev_id: String,
    pub msisdn: Option<String>,
    pub client_auth_type: String,
    pub client_name: String,
    pub client_secret_hash: String,
    pub client_nonce: Option<String>,
    pub server_auth_type: String,
    pub server_name: String,
    pub server_secret_hash: String,
    pub server_secret_sealed: Option<String>,
    pub server_nonce: Option<String>,
    pub push_url: Option<String>,
    pub large_objects: Option<bool>,
    pub max_obj_size: Option<i64>,
    pub max_msg_size: Option<i64>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub fw_version: Option<String>,
    pub sw_version: Option<String>,
    pub hw_version: Option<String>,
    pub lang: Option<String>,
    pub dm_version: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_seen_at: Option<DateTimeUtc>,
    pub message_seq: i64,
    pub ignores_resp_uri: bool,
    /// IANA time zone name (`Europe/Paris`).
    pub timezone: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

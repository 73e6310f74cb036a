//! sea-orm entities, one file per table; they mirror `migrations/` and never create schema.

pub mod api_token;
pub mod device;
pub mod device_alert;
pub mod device_group;
pub mod device_node;
pub mod device_tag;
pub mod dm_operation;
pub mod dm_operation_event;
pub mod dm_result_chunk;
pub mod dm_session;
pub mod download_stat;
pub mod firmware;
pub mod notification;
pub mod package;
pub mod package_job;
pub mod signing_key;
pub mod update_job;
pub mod update_job_history;

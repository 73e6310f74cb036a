//! Database migrations of the Updraft store, the only source of its schema, for SQLite and PostgreSQL.
//!
//! Rules (see `README.md` beside this crate): a migration that has shipped is never
//! edited, only followed by a new one; every migration runs on both databases, so it
//! uses the schema builder rather than raw SQL unless a dialect branch is spelt out.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_api_tokens;
mod m20261125_000002_devices;
mod m20261126_000003_firmware_packages;
mod m20261201_000007_dm_message_atomicity;
mod m20261201_000009_operation_lifecycle;
mod m20261201_000010_update_jobs;
mod m20261201_000011_firmware_security_version;
mod m20261201_000018_downloads;
mod m20261208_000019_device_labels;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_api_tokens::Migration),
            Box::new(m20261125_000002_devices::Migration),
            Box::new(m20261126_000003_firmware_packages::Migration),
            Box::new(m20261201_000007_dm_message_atomicity::Migration),
            Box::new(m20261201_000009_operation_lifecycle::Migration),
            Box::new(m20261201_000010_update_jobs::Migration),
            Box::new(m20261201_000011_firmware_security_version::Migration),
            Box::new(m20261201_000018_downloads::Migration),
            Box::new(m20261208_000019_device_labels::Migration),
        ]
    }
}

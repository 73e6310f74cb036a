//! The database: the only module that knows sea-orm. SQLite (embedded default) or PostgreSQL.
//!
//! Callers get typed repositories (`store.tokens()`, …) that speak domain types;
//! entities and queries stay in here.

mod alerts;
mod devices;
mod dm_sessions;
mod downloads;
mod entity;
mod error;
mod firmware;
mod notifications;
mod operations;
mod packages;
mod signing_keys;
mod tokens;

use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    TransactionTrait,
};
use secrecy::ExposeSecret;
use updraft_migrations::{Migrator, MigratorTrait};

use crate::config::Config;

pub use alerts::{AlertStore, StoredAlert};
pub use devices::{
    Device, DeviceSecrets, DeviceStore, Inventory, NewDevice, TreeNode, auth_type_name,
    parse_auth_type,
};
pub use dm_sessions::{SessionLogLine, SessionStore, SessionUpdate, StoredSession};
pub use downloads::{DownloadStats, DownloadStore, InstallReport};
pub use error::StoreError;
pub use firmware::{DeletedFirmware, Firmware, FirmwareFilter, FirmwareStore, NewFirmware};
pub use notifications::{NotificationRecord, NotificationStore};
pub use operations::{OperationRecord, OperationState, OperationStore};
pub use packages::{
    BuildJob, JobResult, JobState, NewJob, NewPackage, PackageFilter, PackageKind, PackageOrigin,
    PackageRecord, PackageStore,
};
pub use signing_keys::{KeyOrigin, KeyState, SigningKeyRecord, SigningKeyStore};
pub use tokens::{ApiToken, TokenStore};

/// Arbitrary but fixed: the advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK_ID: i64 = 0x5550_4452_4146_5401;

/// A handle on the database; cheap to clone (a connection pool inside).
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish()
    }
}

impl Store {
    /// Connects to the configured database: PostgreSQL or SQLite by URL, else SQLite in the data folder.
    pub async fn connect(config: &Config) -> Result<Store, StoreError> {
        let url = match &config.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => sqlite_url(&config.data_dir.join("updraft.db")),
        };
        Self::connect_url(&url).await
    }

    pub async fn connect_url(url: &str) -> Result<Store, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            // SQLite: one writer at a time is the engine's rule; WAL lets readers go on,
            // and the busy timeout turns a brief lock into a wait instead of an error.
            .map_sqlx_sqlite_opts(|opts: SqliteConnectOptions| {
                opts.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        if url.starts_with("sqlite:") {
            options.max_connections(8);
        } else {
            options.max_connections(16);
        }
        let db = Database::connect(options).await?;
        Ok(Store { db })
    }

    /// Applies every pending migration. Safe to call from several replicas at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.db.get_database_backend() {
            DatabaseBackend::Postgres => {
                // DDL is transactional on PostgreSQL: the whole set applies or none does,
                // and the transaction-scoped advisory lock makes concurrent starts wait.
                let txn = self.db.begin().await?;
                txn.execute_unprepared(&format!(
                    "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"
                ))
                .await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await?;
            }
            _ => {
                // SQLite has no advisory locks. A transaction whose first statement is a
                // write takes the database's write lock up front (waiting out the busy
                // timeout), so a second process migrating the same file waits, then finds
                // nothing left to do.
                self.db
                    .execute_unprepared(
                        "CREATE TABLE IF NOT EXISTS updraft_migration_lock (id INTEGER PRIMARY KEY)",
                    )
                    .await?;
                let txn = self.db.begin().await?;
                txn.execute_unprepared(
                    "INSERT OR REPLACE INTO updraft_migration_lock (id) VALUES (1)",
                )
                .await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await?;
            }
        }
        Ok(())
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    pub fn tokens(&self) -> TokenStore<'_> {
        TokenStore::new(&self.db)
    }

    pub fn devices(&self) -> DeviceStore<'_> {
        DeviceStore::new(&self.db)
    }

    pub fn sessions(&self) -> SessionStore<'_> {
        SessionStore::new(&self.db)
    }

    pub fn operations(&self) -> OperationStore<'_> {
        OperationStore::new(&self.db)
    }

    pub fn alerts(&self) -> AlertStore<'_> {
        AlertStore::new(&self.db)
    }

    pub fn notifications(&self) -> NotificationStore<'_> {
        NotificationStore::new(&self.db)
    }

    pub fn firmware(&self) -> FirmwareStore<'_> {
        FirmwareStore::new(&self.db)
    }

    pub fn signing_keys(&self) -> SigningKeyStore<'_> {
        SigningKeyStore::new(&self.db)
    }

    pub fn packages(&self) -> PackageStore<'_> {
        PackageStore::new(&self.db)
    }

    pub fn downloads(&self) -> DownloadStore<'_> {
        DownloadStore::new(&self.db)
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

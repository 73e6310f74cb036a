//! The database: the only module that knows sea-orm. SQLite (embedded default) or PostgreSQL.
//!
//! Callers get typed repositories (`store.tokens()`, …) that speak domain types;
//! entities and queries stay in here.

mod alerts;
mod campaign_counts;
mod campaign_members;
mod campaign_selection;
mod campaigns;
mod device_import;
mod device_labels;
mod devices;
mod dm_sessions;
mod downloads;
mod entity;
mod error;
mod firmware;
mod notifications;
mod operation_outcomes;
mod operations;
mod packages;
mod selection;
mod signing_keys;
mod tokens;
mod update_jobs;

use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, TransactionTrait,
};
use secrecy::ExposeSecret;
use updraft_migrations::{Migrator, MigratorTrait};

use crate::config::Config;

pub use alerts::{AlertStore, StoredAlert};
pub use campaign_members::{
    CohortRecord, MemberFilter, MemberRecord, MemberStore, SelectionGroup, exclusion,
};
pub use campaigns::{CampaignRecord, CampaignStore, EventRecord};
pub use device_import::BatchOutcome;
pub use device_labels::BulkTagOutcome;
pub use devices::{
    DeclaredInventory, Device, DeviceSecrets, DeviceStore, Inventory, NewDevice, TreeNode,
    auth_type_name, parse_auth_type,
};
pub use dm_sessions::{SessionLogLine, SessionStore, SessionUpdate, StoredSession};
pub use downloads::{DownloadStats, DownloadStore, InstallReport};
pub use error::StoreError;
pub use firmware::{DeletedFirmware, Firmware, FirmwareFilter, FirmwareStore, NewFirmware};
pub use notifications::{NotificationRecord, NotificationStore};
pub use operations::{
    NewOperation, OperationEvent, OperationRecord, OperationState, OperationStore, Outcome,
    QUEUE_WINDOW, Refusal,
};
pub use packages::{
    BuildJob, JobResult, JobState, NewJob, NewPackage, PackageFilter, PackageKind, PackageOrigin,
    PackageRecord, PackageStore,
};
pub use signing_keys::{KeyOrigin, KeyState, SigningKeyRecord, SigningKeyStore};
pub use tokens::{ApiToken, TokenStore};
pub use update_jobs::{HistoryLine, NewUpdateJob, UpdateJobRecord, UpdateJobStore};

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

    /// Starts a unit of work: the same repositories, on one database transaction. Nothing it
    /// writes is visible to others until [`Tx::commit`]; dropping it rolls everything back.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx {
            txn: begin_write(&self.db).await?,
        })
    }

    pub fn downloads(&self) -> DownloadStore<'_> {
        DownloadStore::new(&self.db)
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// A unit of work: every repository of [`Store`], on one transaction (see [`Store::begin`]).
pub struct Tx {
    txn: DatabaseTransaction,
}

impl Tx {
    /// Makes every write of this unit of work visible at once.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.txn.commit().await?;
        Ok(())
    }

    /// Throws every write of this unit of work away (dropping the `Tx` does the same).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.txn.rollback().await?;
        Ok(())
    }
}

/// The repository accessors, the same on the pool ([`Store`]) and on a transaction ([`Tx`]).
macro_rules! repositories {
    ($on:ty, $field:ident, $conn:ty) => {
        impl $on {
            pub fn tokens(&self) -> TokenStore<'_, $conn> {
                TokenStore::new(&self.$field)
            }
            pub fn devices(&self) -> DeviceStore<'_, $conn> {
                DeviceStore::new(&self.$field)
            }
            pub fn sessions(&self) -> SessionStore<'_, $conn> {
                SessionStore::new(&self.$field)
            }
            pub fn operations(&self) -> OperationStore<'_, $conn> {
                OperationStore::new(&self.$field)
            }
            pub fn alerts(&self) -> AlertStore<'_, $conn> {
                AlertStore::new(&self.$field)
            }
            pub fn notifications(&self) -> NotificationStore<'_, $conn> {
                NotificationStore::new(&self.$field)
            }
            pub fn firmware(&self) -> FirmwareStore<'_, $conn> {
                FirmwareStore::new(&self.$field)
            }
            pub fn signing_keys(&self) -> SigningKeyStore<'_, $conn> {
                SigningKeyStore::new(&self.$field)
            }
            pub fn packages(&self) -> PackageStore<'_, $conn> {
                PackageStore::new(&self.$field)
            }
            pub fn update_jobs(&self) -> UpdateJobStore<'_, $conn> {
                UpdateJobStore::new(&self.$field)
            }
            pub fn campaigns(&self) -> CampaignStore<'_, $conn> {
                CampaignStore::new(&self.$field)
            }
            pub fn members(&self) -> MemberStore<'_, $conn> {
                MemberStore::new(&self.$field)
            }
        }
    };
}

repositories!(Store, db, DatabaseConnection);
repositories!(Tx, txn, DatabaseTransaction);

/// Begins a transaction that may write. On SQLite its first statement takes the write lock,
/// so that it waits for another writer (the busy timeout) instead of failing later, when a
/// transaction that has read tries to write after another one committed (SQLITE_BUSY).
/// PostgreSQL needs nothing of the kind.
pub(crate) async fn begin_write<C: ConnectionTrait + TransactionTrait>(
    db: &C,
) -> Result<C::Transaction, StoreError> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        // Writes nothing, but is a write: SQLite takes the RESERVED lock for it.
        txn.execute_unprepared("UPDATE updraft_migration_lock SET id = id WHERE 0")
            .await?;
    }
    Ok(txn)
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

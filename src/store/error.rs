//! Store errors: what callers can act on (conflict, not found) apart from database failures.

use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the string names what was duplicated.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The row is still referenced (a foreign key or an explicit check refused the write).
    #[error("in use: {0}")]
    InUse(String),
    #[error("not found")]
    NotFound,
    /// A stored value cannot be read back (bad JSON, an unknown state name): a bug or a
    /// hand-edited row, never defaulted.
    #[error("unreadable stored data: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(what)) => StoreError::Conflict(what),
            Some(SqlErr::ForeignKeyConstraintViolation(what)) => StoreError::InUse(what),
            _ => StoreError::Database(err),
        }
    }
}

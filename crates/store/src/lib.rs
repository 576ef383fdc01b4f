//! Persistence: one embedded SQLite database (`portcullis.db`: API keys, sealed vault
//! secrets, pinned upstream definitions, session taint, the audit log), its schema applied
//! by migrations at open. Gateways and the `portcullis` commands open the same file; SQLite's
//! write-ahead log lets them do so at once.
#![forbid(unsafe_code)]

mod audit;
mod keys;
mod pins;
mod secrets;
mod taint;

pub use audit::{chain_hash, AuditCheck, AuditEntry, AuditQuery, AuditRow, GENESIS};
pub use keys::{KeyRecord, NewKey};
pub use pins::{PinChange, PinEvent, PinRecord, PinWrite, Review};
pub use secrets::{Put, SealedSecret};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}; check that its folder exists and is writable (set store.path to choose another file)")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot bring the database {path} up to date: {source}")]
    Migrate { path: PathBuf, source: sqlx::migrate::MigrateError },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("no API key with id {0}; `portcullis keys list` shows the ids")]
    NoSuchKey(String),
    #[error("no secret named `{0}`; `portcullis secrets list` shows the names")]
    NoSuchSecret(String),
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// The database.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With the write-ahead log this cannot corrupt the database; a power cut may lose
            // the last commits, a crashed process none. Full sync made each audit batch cost
            // more CPU than the call it records.
            .synchronous(SqliteSynchronous::Normal)
            // Another process (a `portcullis keys` command, another gateway) may hold the
            // write lock for a moment.
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        MIGRATOR.run(&pool).await.map_err(|source| StoreError::Migrate { path: path.to_owned(), source })?;
        Ok(Store { pool, path: path.to_owned() })
    }

    /// The store in `cell`, opened at `path` on first use: the parts of a gateway that need
    /// the database (API keys, the vault) share one connection pool.
    pub async fn shared(cell: &tokio::sync::OnceCell<Store>, path: &Path) -> Result<Store, StoreError> {
        cell.get_or_try_init(|| Store::open(path)).await.cloned()
    }

    /// A write transaction that takes the write lock at once: one that read first and
    /// wrote later would fail at once ("database is locked") if another process wrote in
    /// between, instead of waiting its turn.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connections (waits for queries in flight).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

//! Persistence: one database (API keys, sealed vault secrets, pinned upstream definitions,
//! session taint, the audit log), its schema applied by migrations at open. By default an
//! embedded SQLite file (`portcullis.db`): gateways and the `portcullis` commands open the
//! same file, which SQLite's write-ahead log lets them do at once. At scale, replicas share a
//! PostgreSQL database instead: the same tables, the same queries (written in the SQL both
//! speak, with `$N` parameters), and one set of migrations per dialect.
#![forbid(unsafe_code)]

mod audit;
mod keys;
mod location;
mod pins;
mod secrets;
mod taint;
#[cfg(test)]
mod testdb;
#[cfg(any(test, feature = "throwaway-postgres"))]
pub mod throwaway;

pub use audit::{chain_hash, AuditCheck, AuditEntry, AuditQuery, AuditRow, GENESIS};
pub use keys::{KeyRecord, NewKey};
pub use location::Location;
pub use pins::{PinChange, PinEvent, PinRecord, PinWrite, Review};
pub use secrets::{Put, SealedSecret};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::AnyPool;
use sqlx::{ConnectOptions, Executor};
use std::time::Duration;

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {location}: {source}; {hint}", hint = location.open_hint())]
    Open { location: Location, source: sqlx::Error },
    #[error("cannot bring the database {location} up to date: {source}")]
    Migrate { location: Location, source: sqlx::migrate::MigrateError },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("no API key with id {0}; `portcullis keys list` shows the ids")]
    NoSuchKey(String),
    #[error("no secret named `{0}`; `portcullis secrets list` shows the names")]
    NoSuchSecret(String),
    #[error("{0}")]
    Conflict(String),
    /// The configuration does not say where the database is (an unset `url_env`, a bad URL).
    #[error("{0}")]
    Config(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// The database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    location: Location,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Held by every write transaction on PostgreSQL, so that writers take turns as they do on
/// SQLite (`BEGIN IMMEDIATE`): a transaction that reads, then writes (the audit chain's head,
/// a pin's state) sees no other writer's change in between. Readers are not blocked.
const POSTGRES_WRITE_LOCK: &str = "LOCK TABLE versions IN EXCLUSIVE MODE";

impl Store {
    /// Opens the database at `location` (creating a SQLite file if needed) and applies
    /// pending migrations.
    pub async fn open(location: impl Into<Location>) -> Result<Store, StoreError> {
        let location = location.into();
        sqlx::any::install_default_drivers();
        let open_error = |source| StoreError::Open { location: location.clone(), source };
        let (options, migrations, connections) = match &location {
            Location::Sqlite(path) => {
                let url = SqliteConnectOptions::new().filename(path).create_if_missing(true).to_url_lossy();
                (AnyConnectOptions::from_url(&url).map_err(open_error)?, &SQLITE_MIGRATIONS, 4)
            }
            Location::Postgres(url) => (url.parse().map_err(open_error)?, &POSTGRES_MIGRATIONS, 8),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        // With the write-ahead log, NORMAL sync cannot corrupt the database; a
                        // power cut may lose the last commits, a crashed process none. Full
                        // sync made each audit batch cost more CPU than the call it records.
                        // Another process (a `portcullis keys` command, another gateway) may
                        // hold the write lock for a moment: wait up to 5 s for it.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(open_error)?;
        migrations.run(&pool).await.map_err(|source| StoreError::Migrate { location: location.clone(), source })?;
        Ok(Store { pool, location })
    }

    /// The store in `cell`, opened at `location` on first use: the parts of a gateway that
    /// need the database (API keys, the vault) share one connection pool.
    pub async fn shared(cell: &tokio::sync::OnceCell<Store>, location: &Location) -> Result<Store, StoreError> {
        cell.get_or_try_init(|| Store::open(location.clone())).await.cloned()
    }

    /// A write transaction that holds the database's write lock from its first statement:
    /// one that read first and took the lock later would fail at once on SQLite ("database
    /// is locked") if another process wrote in between, and on PostgreSQL could act on a
    /// state another writer has just changed.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.location {
            Location::Sqlite(_) => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Location::Postgres(_) => {
                let mut tx = self.pool.begin().await?;
                tx.execute(POSTGRES_WRITE_LOCK).await?;
                Ok(tx)
            }
        }
    }

    /// Where the database is (a PostgreSQL URL's password is never shown).
    pub fn location(&self) -> &Location {
        &self.location
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

//! The SQLite store: the default, a single file under `data_dir`, nothing to run beside the
//! server.
//!
//! Connections use WAL (readers never wait for the writer), foreign keys on (SQLite leaves them
//! off), and a busy timeout, so concurrent writers queue for SQLite's one write lock instead of
//! failing with `SQLITE_BUSY`.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::StoreError;

/// How long a statement waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool: enough for concurrent readers; writes queue on SQLite's lock anyway.
const MAX_CONNECTIONS: u32 = 8;

/// See the module documentation.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing, with its folder) the database file at `path`.
    pub async fn open_file(path: &Path) -> crate::Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        Self::with_options(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens the database a `sqlite:` URL names (created when missing).
    pub async fn open_url(url: &str) -> crate::Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?;
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> crate::Result<SqliteStore> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }
}

crate::queries::store_impl!(
    SqliteStore,
    sqlx::sqlite::SqliteRow,
    Backend::Sqlite,
    crate::migrate::sqlite
);

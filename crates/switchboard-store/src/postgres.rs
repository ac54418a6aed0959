//! The PostgreSQL store, for production: several server processes can share it, and it is
//! backed up and replicated with PostgreSQL's tools.

use std::time::Duration;

use sqlx::{PgPool, postgres::PgPoolOptions};

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 16;

/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// See the module documentation.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db?...`).
    pub async fn open(url: &str) -> crate::Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        Ok(PgStore { pool })
    }
}

crate::queries::store_impl!(
    PgStore,
    sqlx::postgres::PgRow,
    Backend::Postgres,
    crate::migrate::postgres
);

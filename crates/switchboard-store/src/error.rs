//! What can go wrong in the store, in the terms its callers act on.

/// A store call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists (a taken username, room id or code hash).
    #[error("already exists")]
    Conflict,
    /// The store's settings are unusable (a bad URL).
    #[error("database settings: {0}")]
    Config(String),
    /// The database failed or cannot be reached; details for the server's log only.
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    /// The migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(e),
        }
    }
}

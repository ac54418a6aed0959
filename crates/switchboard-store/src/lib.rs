//! switchboard's durable state: accounts, their refresh tokens, stored rooms and share codes;
//! and what happened to them: the audit log and the webhook outbox.
//!
//! One interface, [`Store`], and one implementation per database, as atuin's server does it:
//! [`SqliteStore`] (the default: a file under `data_dir`, no service to run) and [`PgStore`]
//! (production). Both run the same SQL, written once in `queries.rs`; what differs is how they
//! connect and their migrations (`migrations/sqlite`, `migrations/postgres`), which [`open`]
//! applies before handing the store out. The queries are checked at run time by the contract
//! tests (`tests/contract/`), which run every case against both databases.
//!
//! The store keeps no clock: every call that depends on time takes `now` (Unix milliseconds), so
//! expiry is tested without waiting. Ids and secrets are made by the caller too; the store sees
//! only hashes of share codes and refresh tokens.

mod error;
mod journal;
mod journal_sql;
mod migrate;
mod model;
mod postgres;
mod queries;
mod sqlite;
pub mod testing;

use std::{path::PathBuf, sync::Arc};

pub use error::StoreError;
pub use journal::{
    AuditEntry, AuditQuery, JournalStore, NewAuditEntry, NewOutboxEntry, OutboxEntry,
};
pub use model::{
    Invite, NewInvite, NewRefresh, NewRoom, NewUser, Room, RoomPatch, Rotation, Swept, User,
    UserPatch,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What a store call returns.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store keeps its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Where the data is: a SQLite file, or a database URL (`postgres://...`, `sqlite://...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file, created (with its folder) when missing.
    SqliteFile(PathBuf),
    /// A URL whose scheme picks the backend: `postgres:`/`postgresql:` or `sqlite:`.
    Url(String),
}

/// Opens the store at `location` and applies its backend's migrations that have not run yet.
pub async fn open(location: &Location) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match location {
        Location::SqliteFile(path) => Arc::new(SqliteStore::open_file(path).await?),
        Location::Url(url) if url.starts_with("sqlite:") => {
            Arc::new(SqliteStore::open_url(url).await?)
        }
        Location::Url(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
            Arc::new(PgStore::open(url).await?)
        }
        Location::Url(_) => {
            return Err(StoreError::Config(
                "database_url must start with sqlite:, postgres: or postgresql:".into(),
            ));
        }
    };
    store.migrate().await?;
    Ok(store)
}

/// The store's operations; see the crate documentation. Every method is one transaction. The
/// audit log's and the webhook outbox's are in [`JournalStore`], which every store is too.
#[async_trait::async_trait]
pub trait Store: JournalStore + Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Applies the migrations that have not run yet (each in its own transaction).
    async fn migrate(&self) -> Result<()>;

    /// Adds an account. [`StoreError::Conflict`] when the username is taken.
    async fn create_user(&self, user: &NewUser) -> Result<User>;

    /// The account with id `id`.
    async fn user(&self, id: &str) -> Result<Option<User>>;

    /// The account whose (normalized) username is `username`.
    async fn user_by_username(&self, username: &str) -> Result<Option<User>>;

    /// Changes what `patch` sets; `None` when there is no such account.
    async fn update_user(&self, id: &str, patch: &UserPatch, now: i64) -> Result<Option<User>>;

    /// Grants or withdraws the admin grant of the account named `username`; whether it exists.
    async fn set_admin(&self, username: &str, admin: bool, now: i64) -> Result<bool>;

    /// Keeps a new refresh token (its hash).
    async fn create_refresh(&self, token: &NewRefresh) -> Result<()>;

    /// Spends the refresh token hashed `presented` and keeps `next` in its place, in the same
    /// family, atomically. A token presented a second time revokes its whole family (a stolen
    /// token and its rightful owner both lose it); see [`Rotation`].
    async fn rotate_refresh(
        &self,
        presented: &[u8],
        next_hash: &[u8],
        next_expires_at: i64,
        now: i64,
    ) -> Result<Rotation>;

    /// Revokes the family of the refresh token hashed `presented` (logout); whether it was live.
    async fn revoke_refresh(&self, presented: &[u8], now: i64) -> Result<bool>;

    /// Revokes every refresh token of `user` (a password change); how many were live.
    async fn revoke_user_refresh(&self, user: &str, now: i64) -> Result<u64>;

    /// Adds a room. [`StoreError::Conflict`] when its id is taken.
    async fn create_room(&self, room: &NewRoom) -> Result<Room>;

    /// The room with id `id`.
    async fn room(&self, id: &str) -> Result<Option<Room>>;

    /// Rooms not expired at `now`, ordered by id, after the id `after`, at most `limit`; only
    /// `owner`'s when given.
    async fn rooms(
        &self,
        owner: Option<&str>,
        after: Option<&str>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<Room>>;

    /// Changes what `patch` sets; `None` when there is no such room.
    async fn update_room(&self, id: &str, patch: &RoomPatch, now: i64) -> Result<Option<Room>>;

    /// Deletes a room and its share codes; whether it existed.
    async fn delete_room(&self, id: &str) -> Result<bool>;

    /// Adds a share code (its hash). [`StoreError::Conflict`] if the hash is taken (a code drawn
    /// twice; the caller draws again).
    async fn create_invite(&self, invite: &NewInvite) -> Result<Invite>;

    /// The share code whose hash is `code_hash`, whatever its state.
    async fn invite_by_code(&self, code_hash: &[u8]) -> Result<Option<Invite>>;

    /// A room's share codes, newest first.
    async fn invites(&self, room: &str) -> Result<Vec<Invite>>;

    /// Uses the share code hashed `code_hash` once, if it is live at `now` (not revoked, not
    /// expired, uses left), in one atomic statement: concurrent redemptions never exceed its
    /// uses. `None` when it is not live.
    async fn redeem_invite(&self, code_hash: &[u8], now: i64) -> Result<Option<Invite>>;

    /// Revokes share code `id` of `room`; whether it was there and not yet revoked.
    async fn revoke_invite(&self, room: &str, id: &str, now: i64) -> Result<bool>;

    /// Deletes up to `limit` rows of each kind that ended before `before`: rooms and share codes
    /// that expired, refresh tokens that expired or were revoked (a room takes its share codes
    /// with it). One batch of the expiry sweep: its caller repeats it while a kind comes back
    /// full, so no statement holds a lock on many rows. A spent refresh token is kept until it
    /// expires, so a copy of it presented again still revokes its family
    /// ([`Store::rotate_refresh`]).
    async fn sweep_expired(&self, before: i64, limit: u32) -> Result<Swept>;
}

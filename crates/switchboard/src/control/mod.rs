//! The control plane: accounts, stored rooms (whose policies the hub enforces) and share codes,
//! over a REST API described by the OpenAPI document at `/openapi.json` (`docs/api.md` is the
//! guide); and what is kept of what happens: the audit log and the webhooks.
//!
//! ```text
//! mod.rs        Control (what every handler shares), opening the store, the routes
//! extract.rs    the request parts handlers take (JSON body, path, query, the caller) and Refused
//! accounts.rs   POST /v1/accounts, /v1/auth/{login,refresh,logout}, /v1/users/{me,{id}}
//! rooms.rs      /v1/rooms, /v1/rooms/{room}, /v1/rooms/{room}/tokens; the hub's copy of policies
//! live.rs       /v1/rooms/{room}/participants[/{peer}], /v1/rooms/{room}/messages: the call
//! cluster.rs    cluster mode: stored rooms' changes announced to every node, live rooms as
//!               the whole cluster has them
//! invites.rs    /v1/rooms/{room}/invites, /v1/invites/{code}, /v1/invites/{code}/redeem
//! code.rs       share codes: Crockford base32, normalization, hashing
//! tokens.rs     access tokens (a JWT only the API accepts) and rotating refresh tokens
//! password.rs   argon2id on the blocking pool, and the dummy hash for unknown accounts
//! guard.rs      per-address budgets and the per-username lockout
//! openapi.rs    the document: security scheme, error responses, schemas
//! settings.rs   the `[api]` settings
//! audit.rs      audit lines from journal records, GET /v1/audit
//! node_info.rs  GET /v1/node: the node that answers, for operators
//! writer.rs     the journal's writer task and the audit retention sweep
//! expiry.rs     the expiry sweep: rooms, share codes and refresh tokens whose time is over
//! webhooks/     signed events from the store's outbox, and the delivery task
//! tasks.rs      starting and stopping the control plane's tasks
//! ```
//!
//! The data lives in a [`switchboard_store::Store`]: SQLite under `data_dir` unless
//! `database_url` names another database. Every route here is merged into the server's one
//! router, so it goes through the stages of [`crate::pipeline`] like any other.

mod accounts;
mod audit;
mod cluster;
mod code;
mod expiry;
mod extract;
mod guard;
mod invites;
mod live;
mod node_info;
pub mod openapi;
mod password;
mod rooms;
pub mod settings;
mod tasks;
mod tokens;
pub mod webhooks;
mod writer;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::Router;
use switchboard_protocol::RoomId;
use switchboard_store::{Location, Room, Store, StoreError};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use code::ShareCode;
pub use tasks::Tasks;
pub use tokens::AUDIENCE;

use crate::{
    config::Config,
    journal::{ApiKind, ApiRecord, Journal, Record},
    node::Node,
    secret::Secret,
};

/// The name of the SQLite file in `data_dir` when no `database_url` is set.
pub const SQLITE_FILE: &str = "switchboard.db";

/// Where the store is: `database_url`, or the SQLite file in `data_dir`.
pub fn location(config: &Config) -> Location {
    match config.database_url.as_deref().filter(|url| !url.is_empty()) {
        Some(url) => Location::Url(url.to_owned()),
        None => Location::SqliteFile(config.data_dir.join(SQLITE_FILE)),
    }
}

/// Where the store is, for logs: the SQLite path, or the URL without credentials or parameters.
pub fn describe(location: &Location) -> String {
    match location {
        Location::SqliteFile(path) => format!("sqlite {}", path.display()),
        Location::Url(url) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let rest = rest.split_once('?').map_or(rest, |(base, _)| base);
            format!("{scheme}://{rest}")
        }
    }
}

/// What every control-plane handler shares; cheap to clone.
#[derive(Clone)]
pub struct Control(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    node: Node,
    access: tokens::AccessTokens,
    refresh_ttl: Duration,
    passwords: password::Passwords,
    guard: guard::Guard,
    /// Stripes of locks by room id: a room's store write and the hub update that follows it are
    /// made under its stripe, so a PATCH and a DELETE of one room reach the hub in the order the
    /// store took them (a PATCH's policy never outlives the DELETE that came after it).
    room_writes: Box<[tokio::sync::Mutex<()>]>,
    /// Where the API's actions go to be kept (the node's hub events go there too).
    journal: Journal,
    /// The journal's receiving end, until the writer task takes it ([`Tasks::start`]).
    records: parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<Record>>>,
    /// The configured receivers of webhooks.
    webhooks: Arc<webhooks::Webhooks>,
    /// When the control plane started, with the server (`GET /v1/node`'s uptime).
    started: std::time::Instant,
}

/// Stripes of [`Inner::room_writes`]: rooms written at once rarely share one.
const ROOM_WRITE_STRIPES: usize = 64;

impl Control {
    /// Opens (and migrates) the store `node`'s configuration names.
    pub async fn open(node: &Node, secret: &Secret) -> Result<Control, StoreError> {
        let location = location(node.config());
        let store = switchboard_store::open(&location).await?;
        tracing::info!(
            event = "store.opened",
            store = %describe(&location),
            "control-plane store ready"
        );
        let control = Control::new(node, store, secret)?;
        control.load_policies().await?;
        Ok(control)
    }

    /// Hands the hub the policy of every stored room that has not expired, read a page at a
    /// time, in place of those it had: from then on the API keeps the hub's copy in step as
    /// rooms are made, changed and deleted (in cluster mode, through any node: [`cluster`]).
    /// Answers how many it loaded.
    async fn load_policies(&self) -> Result<usize, StoreError> {
        const PAGE: u32 = 500;
        let now = now_ms();
        let mut after: Option<String> = None;
        let mut policies = Vec::new();
        loop {
            let page = self
                .store()
                .rooms(None, after.as_deref(), PAGE, now)
                .await?;
            policies.extend(
                (page.iter())
                    .filter_map(|room| Some((RoomId::parse(&room.id).ok()?, rooms::policy(room)))),
            );
            match page.last() {
                Some(last) if page.len() == PAGE as usize => after = Some(last.id.clone()),
                _ => break,
            }
        }
        let loaded = policies.len();
        self.node()
            .with_hub(|hub, _| hub.replace_policies(policies));
        tracing::info!(
            event = "store.policies",
            rooms = loaded,
            "stored rooms' policies loaded"
        );
        Ok(loaded)
    }

    /// The control plane of `node` over `store`.
    pub fn new(node: &Node, store: Arc<dyn Store>, secret: &Secret) -> Result<Control, StoreError> {
        let settings = &node.config().api;
        let passwords = password::Passwords::new()
            .map_err(|_| StoreError::Config("cannot hash passwords".into()))?;
        let metrics = node.metrics().journal().clone();
        let (journal, records) = Journal::new(crate::journal::CAPACITY, metrics);
        node.set_journal(journal.clone());
        let config = node.config();
        Ok(Control(Arc::new(Inner {
            store,
            node: node.clone(),
            access: tokens::AccessTokens::new(
                &secret.bytes,
                Duration::from_millis(settings.access_token_ttl_ms),
            ),
            refresh_ttl: Duration::from_millis(settings.refresh_token_ttl_ms),
            passwords,
            guard: guard::Guard::new(settings),
            room_writes: (0..ROOM_WRITE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            journal,
            records: parking_lot::Mutex::new(Some(records)),
            webhooks: webhooks::Webhooks::new(&config.webhooks, &config.webhook_delivery),
            started: std::time::Instant::now(),
        })))
    }

    /// Keeps an action of the API in the journal (the audit log, webhooks): `user` is the
    /// account that acted, `subject` what it acted on.
    pub(crate) fn record(
        &self,
        kind: ApiKind,
        room: Option<&str>,
        user: Option<&str>,
        subject: Option<&str>,
        detail: serde_json::Value,
    ) {
        self.0.journal.push(Record::Api(ApiRecord {
            at: now_ms(),
            kind,
            room: room.map(str::to_owned),
            user: user.map(str::to_owned),
            subject: subject.map(str::to_owned),
            detail,
        }));
    }

    /// The journal's receiving end, once.
    fn take_records(&self) -> Option<tokio::sync::mpsc::Receiver<Record>> {
        self.0.records.lock().take()
    }

    /// The webhooks' receivers.
    fn webhooks(&self) -> &Arc<webhooks::Webhooks> {
        &self.0.webhooks
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// The stored room `id`, unless it has expired: an expired room is gone (its row is only
    /// waiting to be swept, or to be replaced by a new room of the same id).
    pub async fn live_room(&self, id: &str) -> Result<Option<Room>, StoreError> {
        let now = now_ms();
        let room = self.store().room(id).await?;
        Ok(room.filter(|room| room.expires_at.is_none_or(|at| at > now)))
    }

    /// Holds the write lock of room `id` ([`Inner::room_writes`]).
    pub(crate) async fn room_write(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        let stripes = &self.0.room_writes;
        stripes[hash as usize % stripes.len()].lock().await
    }

    /// The node it serves.
    pub fn node(&self) -> &Node {
        &self.0.node
    }

    /// When it started.
    fn started(&self) -> std::time::Instant {
        self.0.started
    }
}

/// Now, in Unix milliseconds (the store's time).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// Unix milliseconds as the API shows times: Unix seconds.
fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// The control plane's routes, and the OpenAPI document that describes them, as served.
pub fn routes(control: Control) -> (Router, bytes::Bytes) {
    let config = control.node().config();
    let (max_peers, sfu) = (config.max_peers, config.sfu.udp_port.is_some());
    let (router, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(accounts::routes())
        .merge(rooms::routes())
        .merge(live::routes())
        .merge(invites::routes())
        .merge(audit::routes())
        .merge(node_info::routes())
        .split_for_parts();
    (
        router.with_state(control),
        openapi::served(&api, max_peers, sfu),
    )
}

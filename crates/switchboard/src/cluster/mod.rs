//! Cluster mode: several nodes serve one set of rooms, sharing state through Redis.
//!
//! Each node runs the same hub rules as a single node (the hub is clustered: see
//! `switchboard_core::SharedOp`). What a node adds:
//!
//! | part | owns |
//! |---|---|
//! | [`store`] | the shared store's interface, what it keeps and where |
//! | [`redis`] | the store on Redis: connection, Lua scripts, the inbox subscription |
//! | [`sequencer`] | exactly once and in order from an inbox that may lose, repeat or reorder |
//! | [`caps`] | `max_sessions_per_user` counted across the nodes |
//! | [`rooms`] | rooms spread over nodes: their message budget shared, their idle close |
//! | [`adopt`] | a client resuming here a session of another node |
//! | [`joins`] | a join decided against a fresh view of the room, under the room's lock |
//! | [`drain`] | SIGTERM: the sessions handed over to the other nodes |
//! | [`media`] | the SFU: each SFU room's media on one node, its media node |
//! | [`fence`] | a node whose lease ran out stops serving, and rejoins as a new incarnation |
//! | [`tasks`] | the commit task (hub changes to the store, in order) and the inbox task |
//!
//! A message between members on two nodes: the sender's hub runs the relay rules against its
//! mirror of the room and hands the message out as a `Forward`; the commit task appends it to
//! the recipient's log in Redis and publishes a doorbell on the recipient node's inbox
//! (`commit.lua`, one round trip); the recipient node's inbox task puts it into the recipient's
//! outbox (`Hub::forwarded`), from where its transport takes it as any other message.

pub mod adopt;
pub mod caps;
pub mod drain;
pub mod fence;
pub mod joins;
pub mod media;
#[cfg(test)]
pub mod memory;
pub mod redis;
pub mod rooms;
pub mod sequencer;
pub mod store;
pub mod tasks;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use switchboard_core::SessionId;
use switchboard_protocol::RoomId;
use tokio::sync::{Notify, mpsc};

use self::{
    sequencer::Sequencer,
    store::{Store, StoreError, Write},
};

/// Rooms waiting for a check of their idleness across the cluster ([`rooms::idle`]). Past it a
/// room's check is dropped (logged): its hub asks again a little later.
const IDLE_QUEUE: usize = 1024;

/// Batches of writes waiting for the commit task. Past it a node's writes outrun the store; the
/// batch is dropped with an error logged and counted (`cluster_commit_dropped_total`).
const WRITE_QUEUE: usize = 16 * 1024;

/// A batch of writes, with the incarnation of the node that made it: the commit task drops a
/// batch of an earlier incarnation (made before the node was fenced).
type Batch = (u64, Vec<Write>);

/// How long a room's join lock is held at most (a node that dies holding it delays that room's
/// joins by this much).
pub const LOCK_MS: u64 = 5_000;

/// How long a node's lease lasts; it is renewed with every probe of the store
/// ([`tasks::PROBE_EVERY`]). A node whose lease ran out is taken as dead by the others: its
/// sessions may be resumed anywhere, and those not resumed within their window end.
pub const LEASE: Duration = Duration::from_secs(5);

/// Sessions of dead nodes one sweep ends at most; the rest wait for the next probe.
const SWEEP_MOST: usize = 64;

/// This node's lease renewal, for sessions resumable within `window`; `fresh` at startup.
fn lease(window: Duration, fresh: bool) -> store::Lease {
    store::Lease {
        lease_ms: LEASE.as_millis() as u64,
        window_ms: window.as_millis() as u64,
        most: SWEEP_MOST,
        fresh,
        all: false,
    }
}

/// A node's membership of the cluster: its id, the store, and the queue to the commit task.
pub struct Cluster {
    node_id: Arc<str>,
    store: Arc<dyn Store>,
    writes: mpsc::Sender<Batch>,
    /// Taken by the commit task when it starts.
    pending: Mutex<Option<mpsc::Receiver<Batch>>>,
    /// Rooms whose idleness the idle task checks across the cluster.
    idle: mpsc::Sender<RoomId>,
    /// Taken by the idle task when it starts.
    idle_pending: Mutex<Option<mpsc::Receiver<RoomId>>>,
    /// Random, new at each start: with the incarnation, this node's lease token, so no earlier
    /// run under the same id nor earlier incarnation can write with it.
    nonce: String,
    /// This run's incarnation, from 0; one more each time the node is fenced. Changed only with
    /// the hub locked, as writes are queued, so every batch carries the incarnation it was made
    /// in.
    incarnation: AtomicU64,
    /// Whether the node is fenced: its lease ran out, it let every session go and serves none
    /// until it rejoins ([`fence`]).
    fenced: AtomicBool,
    /// Where each of this node's sessions is in its log.
    sequencer: Mutex<Sequencer>,
    /// Whether the store answered the last probe ([`tasks::health`]).
    reachable: AtomicBool,
    /// Sessions this node just adopted, with their log positions, for the inbox task to read
    /// their logs past (doorbells that came during the claim were dropped). At most one entry
    /// per session of this node.
    refills: Mutex<Vec<(SessionId, u64)>>,
    /// Wakes the inbox task for `refills`.
    refill: Notify,
}

impl Cluster {
    /// A node `node_id` of the cluster kept in `store`.
    pub fn new(node_id: &str, nonce: String, store: Arc<dyn Store>) -> Self {
        let (writes, pending) = mpsc::channel(WRITE_QUEUE);
        let (idle, idle_pending) = mpsc::channel(IDLE_QUEUE);
        Cluster {
            node_id: node_id.into(),
            store,
            writes,
            pending: Mutex::new(Some(pending)),
            idle,
            idle_pending: Mutex::new(Some(idle_pending)),
            nonce,
            incarnation: AtomicU64::new(0),
            fenced: AtomicBool::new(false),
            sequencer: Mutex::new(Sequencer::default()),
            reachable: AtomicBool::new(true),
            refills: Mutex::new(Vec::new()),
            refill: Notify::new(),
        }
    }

    /// Whether the store answered the last probe: `/readyz` fails while it does not.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Whether the node is fenced ([`fence`]): it serves no session until it rejoins.
    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// This run's incarnation: one more each time the node was fenced.
    pub fn incarnation(&self) -> u64 {
        self.incarnation.load(Ordering::Acquire)
    }

    /// The lease token of `incarnation`.
    fn token(&self, incarnation: u64) -> String {
        format!("{}.{incarnation}", self.nonce)
    }

    /// Connects to Redis at `url` under `prefix`; session logs keep `log_cap` entries, and
    /// sessions of dead nodes may be resumed within `window`. Takes this node's lease; sessions
    /// an earlier run under the same id left (it was killed) are let go, as a dead node's.
    pub async fn connect(
        url: &str,
        prefix: &str,
        node_id: &str,
        log_cap: usize,
        window: Duration,
    ) -> Result<Self, StoreError> {
        let store = redis::RedisStore::connect(url, prefix, log_cap).await?;
        Store::ping(&store).await?;
        let mut startup = lease(window, true);
        startup.most = 0;
        let cluster = Cluster::new(node_id, fence::nonce(), Arc::new(store));
        cluster
            .store
            .lease(node_id, &cluster.token(0), startup)
            .await?;
        Ok(cluster)
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Queues writes for the commit task, in the order given. Called with the hub locked, so
    /// the order of the queue is the order the hub made them in. Never waits.
    pub fn submit(&self, writes: Vec<Write>) -> Result<(), Vec<Write>> {
        let incarnation = self.incarnation.load(Ordering::Acquire);
        self.writes
            .try_send((incarnation, writes))
            .map_err(|e| e.into_inner().1)
    }
}

impl Cluster {
    /// Hands rooms that look idle to their hub ([`switchboard_core::Outputs::idle`]) to the idle
    /// task, which checks them across the cluster. Never waits: a room the queue has no place for
    /// is asked about again by its hub.
    pub fn ask_idle(&self, rooms: Vec<RoomId>) {
        for room in rooms {
            if self.idle.try_send(room).is_err() {
                tracing::warn!(event = "cluster.idle_check_dropped", node = %self.node_id, "too many rooms wait for an idle check; one is checked later");
            }
        }
    }
}

/// A server message `type` as the hub names it, from its text in a log or doorbell; `None` for
/// a name that is no message type.
pub fn message_kind(name: &str) -> Option<&'static str> {
    const KINDS: [&str; 24] = [
        "hello",
        "joined",
        "peer_joined",
        "peer_left",
        "left",
        "offer",
        "answer",
        "candidate",
        "call_start",
        "call_end",
        "message",
        "mode_changed",
        "pong",
        "replaced",
        "warning",
        "room_closed",
        "error",
        "announcement",
        "media_changed",
        "knocking",
        "knock",
        "knock_ended",
        "admitted",
        "denied",
    ];
    KINDS.into_iter().find(|k| *k == name)
}

//! The shared store as a node uses it: one trait, with Redis behind it in production
//! ([`super::redis`]) and an in-memory model in tests ([`super::memory`]).
//!
//! What the store keeps, per cluster (every key and channel under the configured prefix):
//!
//! | what | Redis | written by |
//! |---|---|---|
//! | a room: mode, media setting, join counter | HASH `p:r:{room}` | `Joined`, `Mode`, `MediaMode` |
//! | its members, peer id → "join number\trecord" | HASH `p:r:{room}:m` | `Joined`, `Left` |
//! | its kicked users | SET `p:r:{room}:ban` | `Banned` |
//! | guests knocking on it, ticket → record | HASH `p:r:{room}:k`, expiring with its latest knock | `Knocked`, `KnockEnded` |
//! | the lock a join is decided under | STRING `p:r:{room}:lock`, with a TTL | [`Store::lock_room`] |
//! | a session: its node, user, log position | HASH `p:s:{sid}` | `Attached`, `Forward` |
//! | the messages other nodes sent it | LIST `p:s:{sid}:log`, the latest `log_cap` | `Forward` |
//! | a node's inbox | channel `p:n:{node}` | `Forward` |
//! | a room's media node | STRING `p:r:{room}:media`, with a TTL | [`Store::media_node`] |
//! | a node's media inbox | channel `p:n:{node}:media` | [`Store::send_media`] |
//! | a user's sessions, for its cap | SET `p:u:{user}` | [`Store::admit`], `Ended` |
//! | a room's message budget across the cluster | HASH `p:r:{room}:b`, expiring once full again | [`Store::budget`] |
//! | when a session was last active, and a room's members that left | field `act` of `p:s:{sid}` and `p:r:{room}` | `ClientSeq`, `Left` |
//! | stored rooms made, changed or deleted | channel `p:policy` | [`Store::room_changed`] |
//!
//! Writes go through [`Store::commit`] in the order the hub made them, all of one call
//! atomically. A forwarded message is appended to its recipient's log and given the next position
//! there, then published on the recipient node's inbox with that position ([`Doorbell`]). The
//! inbox may lose, repeat or reorder doorbells (a dropped subscriber connection); the log is the
//! record, and the receiving node fills any gap from it ([`super::sequencer`]).

use std::{sync::Arc, time::Duration};

use futures_util::{future::BoxFuture, stream::BoxStream};
use serde::{Deserialize, Serialize};
use switchboard_core::{
    LogRecord, Rate, RoomUse, RoomView, SessionId, SessionRecord, SharedKnock, SharedMember,
    SharedOp,
};
use switchboard_protocol::{MediaMode, Mode, PeerId, PeerInfo, Role, RoomId};

/// A write to the shared store.
#[derive(Debug, Clone)]
pub enum Write {
    /// What a hub call changed.
    Shared(SharedOp),
    /// This node let go of `session`, which another node claimed: everything it logged for the
    /// session is in (the writes before this one).
    Released {
        /// The session.
        session: SessionId,
    },
    /// A join was decided: the room's lock taken with `token` is released.
    Unlock {
        /// The room.
        room: RoomId,
        /// The token it was locked with.
        token: Arc<str>,
    },
}

/// A read of a session's log ([`Store::log_after`]).
#[derive(Debug)]
pub struct LogRead {
    /// The position of the first entry returned (above the one asked for when older entries
    /// are no longer kept).
    pub first: u64,
    /// The entries from there on.
    pub entries: Vec<LogEntry>,
    /// The node holding the session ('' for none).
    pub holder: String,
}

/// A message appended to a session's log, as its node's inbox announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doorbell {
    /// The recipient.
    pub session: SessionId,
    /// Its position in the recipient's log (from 1).
    pub position: u64,
    /// The message: its `type` and text.
    pub entry: LogEntry,
}

/// One message in a session's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its `type`.
    pub kind: String,
    /// The encoded message (with seq 0; the recipient's node numbers it).
    pub text: String,
}

/// What a claim of a session for this node found ([`Store::claim`]).
#[derive(Debug)]
pub enum Claim {
    /// The session is this node's now; it was on the node named ('' for none).
    Won(String),
    /// No session to claim: gone, or claimed by a racing resume.
    Gone,
    /// The session belongs to another user.
    Forbidden,
}

/// A session claimed for this node: what adopting it needs ([`Store::record`]).
#[derive(Debug)]
pub struct Claimed {
    /// Whether the node it was on may still be logging for it (it has not said it let go).
    pub moving: bool,
    /// Its record, without its rooms' views.
    pub record: SessionRecord,
    /// Its rooms, to read.
    pub rooms: Vec<RoomId>,
    /// Its user.
    pub user: String,
}

/// A lease renewal ([`Store::lease`]).
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    /// How long it lasts, in ms.
    pub lease_ms: u64,
    /// The resume window of the sessions of dead nodes, in ms.
    pub window_ms: u64,
    /// Sessions to take for ending at most.
    pub most: usize,
    /// Whether the node (re)joins: it just started, or comes back after it was fenced.
    pub fresh: bool,
    /// Whether to take the sessions waiting for a resume whatever their window: the last node
    /// of the cluster is stopping, and no node is left to resume them on.
    pub all: bool,
}

/// A call to the store that did not go through.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store failed or could not be reached.
    #[error("shared store: {0}")]
    Failed(String),
    /// The store holds another lease for this node than the one it wrote with, or none: the node
    /// was cut off for longer than its lease (the others may have swept its sessions) or the
    /// store lost its data. Nothing was written; the node must stop acting on its view
    /// ([`super::fence`]).
    #[error("shared store: this node's lease is gone")]
    Fenced,
}

/// What a node does with the shared store. See the module documentation.
pub trait Store: Send + Sync + 'static {
    /// Reads `room`. With a `lock` token, first takes the room's join lock for `lock_ms`:
    /// `Ok(None)` when another holder has it.
    fn room<'a>(
        &'a self,
        room: &'a RoomId,
        lock: Option<(&'a str, u64)>,
    ) -> BoxFuture<'a, Result<Option<RoomView>, StoreError>>;

    /// Applies `writes` in order, atomically; `node` is the writer, holding the lease `token`.
    /// [`StoreError::Fenced`], with nothing written, when the store holds no such lease.
    fn commit<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
        writes: &'a [Write],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The entries of `session`'s log after position `after`.
    fn log_after<'a>(
        &'a self,
        session: &'a SessionId,
        after: u64,
    ) -> BoxFuture<'a, Result<LogRead, StoreError>>;

    /// Moves `session` of `user` to `node`, for its client resuming there after `last_seq`, and
    /// fences off the node it was on: that node hears on its inbox that the session moved (a
    /// doorbell at position 0), logs what it had queued for it, and lets go
    /// ([`Write::Released`]); after that, what it queues for the session goes to `node` as from
    /// any other node.
    fn claim<'a>(
        &'a self,
        node: &'a str,
        session: &'a SessionId,
        user: &'a str,
        last_seq: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    /// What adopting `session`, which `node` claimed, needs; `None` when the session is gone
    /// or another node claimed it since.
    fn record<'a>(
        &'a self,
        node: &'a str,
        session: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Claimed>, StoreError>>;

    /// Renews `node`'s lease `token` for `lease_ms`, and lets go of the sessions of every node
    /// whose lease ran out: each may be resumed on any node within `window_ms`. Answers up to
    /// `most` of those whose window passed, claimed for `node` to end. `fresh` when `node`
    /// (re)joins: sessions still listed under its id are of an earlier run or incarnation, and
    /// are let go too, and the lease is taken under the new `token`. Otherwise
    /// [`StoreError::Fenced`] when the store holds no lease `token` for `node` (it ran out).
    fn lease<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
        lease: Lease,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>>;

    /// Counts `session` of `user` against the user's cap of `max` sessions across the cluster:
    /// `false`, counting nothing, when the user holds `max` already.
    fn admit<'a>(
        &'a self,
        user: &'a str,
        session: &'a SessionId,
        max: usize,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Takes from each room's message budget across the cluster (a token bucket of `rate`
    /// refilled by the store's clock) what this node's members used of it since the last sync,
    /// and answers, in the same order, what is left of each (below zero: a debt), or `None`
    /// for a room the store does not hold. One round trip for every room.
    fn budget<'a>(
        &'a self,
        rate: Rate,
        uses: &'a [RoomUse],
    ) -> BoxFuture<'a, Result<Vec<Option<f64>>, StoreError>>;

    /// How many nodes other than `node` hold a lease.
    fn peers<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// `node` stops: the sessions still listed under it are let go, to be resumed on any node
    /// at once (within `window_ms`, as a dead node's), and its lease `token` goes.
    fn leave<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
        window_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Answers whether the store does.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Tells every node that stored room `room` was made, changed or deleted: each reloads its
    /// policy from the database (`control/cluster.rs`). Published on the cluster's channel
    /// `p:policy`, so a node that is not subscribed at that moment misses it.
    fn room_changed<'a>(&'a self, room: &'a RoomId) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The notices of [`Store::room_changed`], from now on. The stream ends when the subscription
    /// is lost: what was published meanwhile is lost, so the caller reloads every policy.
    fn room_changes(&self) -> BoxFuture<'_, Result<BoxStream<'static, RoomId>, StoreError>>;

    /// `node`'s inbox, from now on. The stream ends when the subscription is lost (what was
    /// published meanwhile is in the logs).
    fn inbox<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Doorbell>, StoreError>>;

    /// The media node of `room` (`media.lua`): the node recorded if its lease holds, else
    /// `node`, recorded now. The record lasts [`MEDIA_RECORD`] after it was last asked for.
    fn media_node<'a>(
        &'a self,
        room: &'a RoomId,
        node: &'a str,
    ) -> BoxFuture<'a, Result<String, StoreError>>;

    /// Which of `nodes` hold a lease, in their order.
    fn alive<'a>(&'a self, nodes: &'a [String]) -> BoxFuture<'a, Result<Vec<bool>, StoreError>>;

    /// Publishes `command`, encoded, on `node`'s media inbox (`p:n:{node}:media`). Pub/sub:
    /// lost when `node` is not subscribed at that moment.
    fn send_media<'a>(
        &'a self,
        node: &'a str,
        command: String,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// `node`'s media inbox, from now on: the media commands other nodes sent it. The stream
    /// ends when the subscription is lost.
    fn media_inbox<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, String>, StoreError>>;
}

/// How long a room's media node is recorded after it was last asked for: a room nobody used
/// for that long starts afresh on the first node to ask.
pub const MEDIA_RECORD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A member as the store keeps it (the value of `p:r:{room}:m`), without its join number.
#[derive(Serialize, Deserialize)]
pub struct MemberRecord {
    /// Session.
    pub s: String,
    /// User.
    pub u: Arc<str>,
    /// What the others see.
    pub i: PeerInfo,
}

impl MemberRecord {
    /// The record of `m`.
    pub fn encode(m: &SharedMember) -> String {
        let record = MemberRecord {
            s: m.session.to_string(),
            u: m.user.clone(),
            i: m.info.clone(),
        };
        serde_json::to_string(&record).expect("a member record encodes")
    }

    /// The member a record names, or `None` for a record that is not one.
    pub fn decode(text: &str) -> Option<SharedMember> {
        let r: MemberRecord = serde_json::from_str(text).ok()?;
        Some(SharedMember {
            session: SessionId::parse(&r.s)?,
            user: r.u,
            info: r.i,
        })
    }
}

/// A knock as the store keeps it (a value of `p:r:{room}:k`, under its ticket).
#[derive(Serialize, Deserialize)]
pub struct KnockRecord {
    /// The guest's session.
    pub s: String,
    /// Its user.
    pub u: Arc<str>,
    /// Its role.
    pub r: Role,
    /// Its display name.
    pub n: Option<String>,
    /// When it expires, Unix ms.
    pub x: u64,
}

impl KnockRecord {
    /// The record of `k`.
    pub fn encode(k: &SharedKnock) -> String {
        let record = KnockRecord {
            s: k.session.to_string(),
            u: k.user.clone(),
            r: k.role,
            n: k.name.clone(),
            x: k.expires_at,
        };
        serde_json::to_string(&record).expect("a knock record encodes")
    }

    /// The knock `ticket` a record names, or `None` for a record that is not one.
    pub fn decode(ticket: &str, text: &str) -> Option<SharedKnock> {
        let r: KnockRecord = serde_json::from_str(text).ok()?;
        Some(SharedKnock {
            ticket: PeerId::parse(ticket).ok()?,
            session: SessionId::parse(&r.s)?,
            user: r.u,
            role: r.r,
            name: r.n,
            expires_at: r.x,
        })
    }
}

/// A room view from the store's raw parts: the mode's name, the media setting's ('' for none),
/// members as `(join number, record)`,
/// the kicked users and the knocks as `(ticket, record)`. Members are put in join order;
/// unreadable records are skipped. Its activity is unknown (`quiet` zero) until the caller sets it.
pub fn room_view(
    mode: &str,
    media_mode: &str,
    members: Vec<(u64, String)>,
    banned: Vec<String>,
    knocks: Vec<(String, String)>,
) -> RoomView {
    let mut members: Vec<(u64, SharedMember)> = members
        .into_iter()
        .filter_map(|(n, record)| Some((n, MemberRecord::decode(&record)?)))
        .collect();
    members.sort_by_key(|(n, _)| *n);
    RoomView {
        mode: mode_from(mode),
        media_mode: media_mode_from(media_mode),
        members: members.into_iter().map(|(_, m)| m).collect(),
        banned: banned.into_iter().map(Arc::from).collect(),
        knocks: (knocks.iter())
            .filter_map(|(ticket, record)| KnockRecord::decode(ticket, record))
            .collect(),
        quiet: Duration::ZERO,
    }
}

/// The wire name of a media setting, as the store keeps it.
pub fn media_mode_name(media_mode: MediaMode) -> &'static str {
    match media_mode {
        MediaMode::Mesh => "mesh",
        MediaMode::Sfu => "sfu",
        MediaMode::Auto => "auto",
    }
}

/// A media setting from its stored name; `None` for none (the room's policy decides).
fn media_mode_from(name: &str) -> Option<MediaMode> {
    match name {
        "mesh" => Some(MediaMode::Mesh),
        "sfu" => Some(MediaMode::Sfu),
        "auto" => Some(MediaMode::Auto),
        _ => None,
    }
}

/// The wire name of a mode, as the store keeps it.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::FreeForAll => "free_for_all",
        Mode::HostOnly => "host_only",
    }
}

fn mode_from(name: &str) -> Mode {
    match name {
        "host_only" => Mode::HostOnly,
        _ => Mode::FreeForAll,
    }
}

/// An entry of a session's outbox log as `commit.lua` writes it: `Q seq inbound kind\ntext` for
/// a queued message, `R last_seq inbound\nhello` for a resume.
pub fn encode_record(record: &LogRecord) -> String {
    match record {
        LogRecord::Queued {
            seq,
            inbound,
            kind,
            text,
        } => format!("Q {seq} {inbound} {kind}\n{text}"),
        LogRecord::Resumed {
            last_seq,
            inbound,
            hello,
        } => format!("R {last_seq} {inbound}\n{hello}"),
    }
}

/// The entry [`encode_record`] wrote, or `None` for one it did not.
pub fn decode_record(entry: &str) -> Option<LogRecord> {
    let (head, text) = entry.split_once('\n')?;
    let mut parts = head.split(' ');
    let tag = parts.next()?;
    let a: u64 = parts.next()?.parse().ok()?;
    let inbound: u64 = parts.next()?.parse().ok()?;
    match tag {
        "Q" => Some(LogRecord::Queued {
            seq: a,
            inbound,
            kind: super::message_kind(parts.next()?)?,
            text: text.into(),
        }),
        "R" => Some(LogRecord::Resumed {
            last_seq: a,
            inbound,
            hello: text.into(),
        }),
        _ => None,
    }
}

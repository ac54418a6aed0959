//! A session: one client identity with its peer id, rooms, replay guard, outbox and transport link.

use std::{collections::HashMap, hash::BuildHasherDefault, net::IpAddr, sync::Arc, time::Instant};

use switchboard_protocol::{IceServer, PeerId, Role, RoomGrant, RoomId};

use crate::{
    SessionId,
    deadlines::TimerToken,
    outbox::Outbox,
    rate::{AbuseMeter, TokenBucket},
    session_id::SessionIdHasher,
};

/// The hub's sessions. Boxed, so the table's spare capacity costs a pointer per slot rather than a
/// whole session.
pub(crate) type Sessions<S> =
    HashMap<SessionId, Box<Session<S>>, BuildHasherDefault<SessionIdHasher>>;

/// Why a session's transport, or the whole session, is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed its transport on purpose.
    ClientClosed,
    /// A newer session of the same user joined one of its rooms.
    Replaced,
    /// The transport broke without a close; the session may still resume.
    TransportLost,
    /// A newer transport attached to the same session (resume, or a second stream).
    Superseded,
    /// The transport missed its heartbeats; the session may still resume.
    HeartbeatTimeout,
    /// The resume window passed, or the session was otherwise gone.
    Expired,
    /// The outbox filled with messages the client was not taking.
    Overflow,
    /// The server is shutting down.
    Shutdown,
    /// Sustained abuse of the rate limits.
    Abuse,
    /// Cluster mode: this node let the session go (it is draining, or cut off from the cluster)
    /// and the client is to resume it on another node.
    Handover,
}

impl CloseReason {
    /// A stable name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client_closed",
            CloseReason::Replaced => "replaced",
            CloseReason::TransportLost => "transport_lost",
            CloseReason::Superseded => "superseded",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::Expired => "expired",
            CloseReason::Overflow => "overflow",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Abuse => "abuse",
            CloseReason::Handover => "handover",
        }
    }
}

/// Who a session is, as established by its token.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's `sub`.
    pub user: Arc<str>,
    /// The token's `role`.
    pub role: Role,
    /// The token's `name`.
    pub name: Option<String>,
    /// The token's `room` claim.
    pub grant: RoomGrant,
    /// A lobby token's session: it may `knock` on its room, and `join` it only once a host has
    /// admitted it.
    pub lobby: bool,
    /// The client's network address, for per-address limits (none for in-process clients).
    pub address: Option<IpAddr>,
    /// ICE servers for this session alone (such as TURN credentials minted for it), handed out in
    /// `joined` after the configured ones.
    pub ice_servers: Vec<IceServer>,
}

/// The state of a session's transport.
#[derive(Debug)]
pub(crate) enum Link {
    /// A transport of generation `gen` is attached and was last heard from at `last_seen`.
    Attached { last_seen: Instant },
    /// The transport was lost at `since`; the session waits for a resume.
    Detached { since: Instant, reason: CloseReason },
}

/// Laid out by hand, hottest fields first and aligned to a cache line: a session's state is cold
/// by the time its next message comes (the kernel's network stack runs in between), and every line
/// a message touches is a cache miss. The outbox fills the first line; what a message from the
/// session reads and writes fills the second (the timer's token sits in its padding), and the
/// sink and the message budgets the third. So sending touches two lines of the session (one with
/// the budgets off) and receiving three. The alignment rounds the size up to a whole number of
/// lines, which costs nothing with jemalloc, the server's allocator: its size classes are as
/// coarse. Six lines, 384 bytes: one size class below seven, and a session's state is most of
/// what an idle session costs the hub. Hence what is not kept here: the id, which is the table's
/// key, and the budgets' rates, which are configuration.
#[repr(C, align(64))]
pub(crate) struct Session<S> {
    pub(crate) outbox: Outbox,
    /// Generation of the attached transport; a transport holding an older one is superseded.
    pub(crate) generation: u64,
    /// Set when the session is ending: its transport drains the outbox, then closes with this.
    pub(crate) closing: Option<CloseReason>,
    /// Whether the sink was handed out as ready since the transport last took from the outbox:
    /// a sink is signalled once per batch of work, however many messages the batch holds.
    pub(crate) signalled: bool,
    /// The session's live entry in the hub's timers; older entries are stale. Cold, but it fits
    /// in the padding before `link`.
    pub(crate) timer: TimerToken,
    pub(crate) link: Link,
    /// Replay guard: the highest client `seq` accepted.
    pub(crate) last_client_seq: u64,
    /// When the session last sent a valid message; its rooms take this up as their activity.
    pub(crate) last_active: Instant,
    /// Where the attached transport takes its frames from: handed out as ready
    /// ([`crate::Outputs::ready`]) when there is something to send or to close.
    pub(crate) sink: Option<S>,
    /// Budget for messages other than candidates.
    pub(crate) messages: TokenBucket,
    /// Budget for candidates.
    pub(crate) candidates: TokenBucket,
    pub(crate) identity: Identity,
    /// Fixed at the first join (chosen by the client or generated), the same in every room.
    pub(crate) peer: Option<PeerId>,
    /// Most sessions stay in one room, so the list is grown and shrunk exactly: a boxed slice,
    /// whose length is its capacity, is a word smaller than a `Vec`.
    pub(crate) rooms: Box<[RoomId]>,
    pub(crate) abuse: AbuseMeter,
}

// The layout promised above, for the server's sink (a reference-counted trait object).
const _: () = {
    use std::mem::{offset_of, size_of};
    type Served = Session<Arc<dyn Send + Sync>>;
    assert!(size_of::<Outbox>() <= 64);
    assert!(offset_of!(Served, generation) == 64);
    assert!(offset_of!(Served, timer) < offset_of!(Served, link));
    assert!(offset_of!(Served, last_active) + size_of::<Instant>() <= 128);
    assert!(offset_of!(Served, sink) == 128);
    assert!(offset_of!(Served, candidates) + size_of::<TokenBucket>() <= 192);
    assert!(size_of::<Served>() <= 384);
};

impl<S> Session<S> {
    pub(crate) fn is_attached(&self) -> bool {
        matches!(self.link, Link::Attached { .. })
    }

    /// Notes that the session joined `room`.
    pub(crate) fn add_room(&mut self, room: RoomId) {
        let mut rooms = Vec::from(std::mem::take(&mut self.rooms));
        rooms.reserve_exact(1);
        rooms.push(room);
        self.rooms = rooms.into_boxed_slice();
    }

    /// Notes that the session is no longer in `room`.
    pub(crate) fn remove_room(&mut self, room: &RoomId) {
        let mut rooms = Vec::from(std::mem::take(&mut self.rooms));
        rooms.retain(|r| r != room);
        self.rooms = rooms.into_boxed_slice();
    }
}

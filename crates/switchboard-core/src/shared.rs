//! What a clustered hub shares with the other nodes, as values: the changes it made that the shared
//! store must learn ([`SharedOp`]), and a room as the store holds it ([`RoomView`]).
//!
//! In cluster mode every node runs the same [`Hub`](crate::Hub) rules. A hub holds its own
//! sessions (those whose transport is on this node) and, for each room one of them is in, a
//! mirror of the room whose other members may be sessions of other nodes. The rules run against
//! that mirror; what they change in shared state, and every message for a session of another node,
//! comes out of [`Hub::drain_outputs`](crate::Hub::drain_outputs) as [`SharedOp`]s, in the order
//! made, for the IO layer to commit to the store. The IO layer feeds back what other nodes did:
//! a fresh view of a room ([`Hub::mirror_room`](crate::Hub::mirror_room)) and the messages other
//! nodes sent to this node's sessions ([`Hub::forwarded`](crate::Hub::forwarded)).

use std::{sync::Arc, time::Duration};

use switchboard_protocol::{MediaMode, Mode, PeerId, PeerInfo, Role, RoomId};

use crate::SessionId;

/// A room member as every node sees it.
#[derive(Debug, Clone)]
pub struct SharedMember {
    /// The member's session, on whichever node holds its transport.
    pub session: SessionId,
    /// The token's `sub`: one session per user per room.
    pub user: Arc<str>,
    /// What the other members are told of it.
    pub info: PeerInfo,
}

/// A guest waiting in a room's lobby, as every node sees it: what a host on any node needs to
/// see the knock and answer it, and the session (resolvable to its node) to tell the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKnock {
    /// The knock's ticket, which hosts answer.
    pub ticket: PeerId,
    /// The guest's session, on whichever node holds its transport.
    pub session: SessionId,
    /// The guest's user id (its lobby token's `sub`): the admitted guest's room token is minted
    /// for it, on the node of the host that admits it.
    pub user: Arc<str>,
    /// The role its token gave it.
    pub role: Role,
    /// Its display name.
    pub name: Option<String>,
    /// When it expires unanswered, Unix ms (the guest's node tells it then; a record left by a
    /// node that died is ignored past it).
    pub expires_at: u64,
}

/// A room as the shared store holds it.
#[derive(Debug, Clone, Default)]
pub struct RoomView {
    /// The room's mode.
    pub mode: Mode,
    /// Its media setting, when a host set it during the call (`None`: its policy's).
    pub media_mode: Option<MediaMode>,
    /// Its members, in join order.
    pub members: Vec<SharedMember>,
    /// Users a host kicked.
    pub banned: Vec<Arc<str>>,
    /// Guests waiting in its lobby, through any node.
    pub knocks: Vec<SharedKnock>,
    /// How long its members, on every node, have sent nothing, by the store's clock: a member
    /// that left counts until it left. Zero when the store does not know, which counts as
    /// activity now: a room is never closed for idleness on a guess.
    pub quiet: Duration,
}

/// A change to shared state made by this node's hub, or a message for another node's session.
/// Each is produced only by a clustered hub ([`Hub::clustered`](crate::Hub::clustered)).
#[derive(Debug, Clone)]
pub enum SharedOp {
    /// A session's transport is now on this node: messages for it come here.
    Attached {
        /// The session.
        session: SessionId,
        /// Its user.
        user: Arc<str>,
    },
    /// A session ended: its shared state can go.
    Ended {
        /// The session.
        session: SessionId,
    },
    /// A member joined a room.
    Joined {
        /// The room.
        room: RoomId,
        /// The new member.
        member: SharedMember,
    },
    /// A member left a room (left, kicked, replaced, disconnected, timed out).
    Left {
        /// The room.
        room: RoomId,
        /// The member's peer id.
        peer: PeerId,
    },
    /// A host changed the room's mode.
    Mode {
        /// The room.
        room: RoomId,
        /// The new mode.
        mode: Mode,
    },
    /// A host set the room's media setting (`set_media`): a node whose first member joins the
    /// room later starts its mirror with it.
    MediaMode {
        /// The room.
        room: RoomId,
        /// The setting.
        media_mode: MediaMode,
    },
    /// A host kicked a user, who may not rejoin while the room lives.
    Banned {
        /// The room.
        room: RoomId,
        /// The user.
        user: Arc<str>,
    },
    /// A message queued in this node's session `session` with `seq` (its text carries it):
    /// its durable copy, so another node can adopt the session with its outbox
    /// ([`Hub::adopt`](crate::Hub::adopt)). `inbound` is the position in the session's log of
    /// messages from other nodes that was handed over last before it ([`Hub::forwarded`]), which
    /// places those messages among these.
    ///
    /// [`Hub::forwarded`]: crate::Hub::forwarded
    Logged {
        /// The session.
        session: SessionId,
        /// The index of this write among the session's on this node, for
        /// [`Hub::durable`](crate::Hub::durable) once it is committed (0: nothing waits for it).
        index: u64,
        /// Its seq.
        seq: u64,
        /// Messages from other nodes handed over before it.
        inbound: u64,
        /// Its `type`.
        kind: &'static str,
        /// The encoded message, as queued.
        text: Arc<str>,
    },
    /// This node's session `session` resumed after `last_seq`: its outbox was renumbered after
    /// the new `hello`, as [`Hub::resume`](crate::Hub::resume) does.
    Resumed {
        /// The session.
        session: SessionId,
        /// The index of this write, as for `Logged`.
        index: u64,
        /// The client's position.
        last_seq: u64,
        /// Messages from other nodes handed over before it.
        inbound: u64,
        /// The new `hello`, encoded with seq `last_seq + 1`.
        hello: Arc<str>,
    },
    /// This node accepted the client message `seq` of `session` (the replay guard a resume on
    /// another node starts from).
    ClientSeq {
        /// The session.
        session: SessionId,
        /// The highest client seq accepted.
        seq: u64,
        /// Whether the message counts as activity in the session's rooms (a valid message
        /// other than a `leave`, as on one node): the store notes when, so a room spread over
        /// nodes closes for idleness only once it is idle on every node ([`RoomView::quiet`]).
        active: bool,
    },
    /// A guest knocks on `room` through this node: every node learns of the knock (a host
    /// joining anywhere is shown it, and a host anywhere may answer it).
    Knocked {
        /// The room.
        room: RoomId,
        /// The knock.
        knock: SharedKnock,
    },
    /// The knock `ticket` on `room` ended (answered, expired, withdrawn).
    KnockEnded {
        /// The room.
        room: RoomId,
        /// Its ticket.
        ticket: PeerId,
    },
    /// A message for every host of `room` whose session is on another node than this one (this
    /// node's hub queued its own hosts' copies): the store picks them from the room's members
    /// as they are when the write is committed, so a host who joined anywhere meanwhile hears it.
    /// `text` is encoded with seq 0, as for [`SharedOp::Forward`].
    ToHosts {
        /// The room.
        room: RoomId,
        /// Its `type`.
        kind: &'static str,
        /// The encoded message.
        text: Arc<str>,
    },
    /// A message for a session whose transport is on another node. `text` is encoded with seq 0:
    /// the recipient's node numbers it in the recipient's outbox.
    Forward {
        /// The recipient.
        to: SessionId,
        /// Its `type`.
        kind: &'static str,
        /// The encoded message.
        text: Arc<str>,
    },
}

/// One entry of a session's durable outbox log, as the store gives it back: what
/// [`SharedOp::Logged`] and [`SharedOp::Resumed`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// A message queued with `seq`, after the messages from other nodes up to `inbound`.
    Queued {
        /// Its seq.
        seq: u64,
        /// Messages from other nodes handed over before it.
        inbound: u64,
        /// Its `type`.
        kind: &'static str,
        /// The encoded message.
        text: Arc<str>,
    },
    /// A resume after `last_seq`, with its `hello`.
    Resumed {
        /// The client's position.
        last_seq: u64,
        /// Messages from other nodes handed over before it.
        inbound: u64,
        /// The hello, encoded with seq `last_seq + 1`.
        hello: Arc<str>,
    },
}

/// A session as the shared store holds it, for another node to adopt ([`Hub::adopt`]).
///
/// [`Hub::adopt`]: crate::Hub::adopt
#[derive(Debug, Clone, Default)]
pub struct SessionRecord {
    /// Its peer id, once it joined a room.
    pub peer: Option<PeerId>,
    /// The highest client seq accepted.
    pub last_client_seq: u64,
    /// Its outbox log, oldest first (the latest entries kept).
    pub outbox: Vec<LogRecord>,
    /// The messages other nodes sent it that its log still keeps, as `(kind, text)`, the
    /// first at position `inbound_first`.
    pub inbound: Vec<(&'static str, Arc<str>)>,
    /// The position of the first of `inbound`.
    pub inbound_first: u64,
    /// Its rooms, each with a fresh view.
    pub rooms: Vec<(RoomId, RoomView)>,
}

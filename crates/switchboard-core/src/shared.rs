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

use std::sync::Arc;

use switchboard_protocol::{Mode, PeerId, PeerInfo, RoomId};

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

/// A room as the shared store holds it.
#[derive(Debug, Clone, Default)]
pub struct RoomView {
    /// The room's mode.
    pub mode: Mode,
    /// Its members, in join order.
    pub members: Vec<SharedMember>,
    /// Users a host kicked.
    pub banned: Vec<Arc<str>>,
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
    /// A host kicked a user, who may not rejoin while the room lives.
    Banned {
        /// The room.
        room: RoomId,
        /// The user.
        user: Arc<str>,
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

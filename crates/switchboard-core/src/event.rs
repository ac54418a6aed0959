//! What the core reports for logs and metrics, drained by the IO layer after each call.
//!
//! Events carry user ids as given; the IO layer decides how they may appear in logs.

use std::sync::Arc;

use switchboard_protocol::{
    ErrorCode, KnockEnd, Media, MediaMode, Mode, PeerId, PeerLeftReason, RoomClosedReason, RoomId,
};

use crate::{CloseReason, RateScope, SessionId};

/// Why a room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomEnd {
    /// Its last member left; nobody is told.
    Empty,
    /// It was closed under its members, who got `room_closed` with this reason.
    Closed(RoomClosedReason),
}

impl RoomEnd {
    /// A stable name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomEnd::Empty => "empty",
            RoomEnd::Closed(reason) => reason.as_str(),
        }
    }
}

/// Something that happened in the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new session started.
    SessionOpened {
        /// The session.
        session: SessionId,
        /// Its user.
        user: Arc<str>,
    },
    /// A session was resumed on a new transport.
    SessionResumed {
        /// The session.
        session: SessionId,
        /// Its user.
        user: Arc<str>,
        /// Messages sent again because the client had not received them.
        replayed: usize,
    },
    /// A resume was refused.
    ResumeFailed {
        /// The refusal's code.
        code: ErrorCode,
    },
    /// A session's transport was lost; the session waits for a resume.
    SessionDetached {
        /// The session.
        session: SessionId,
        /// Why the transport is considered lost.
        reason: CloseReason,
    },
    /// A session ended for good.
    SessionClosed {
        /// The session.
        session: SessionId,
        /// Its user.
        user: Arc<str>,
        /// Why.
        reason: CloseReason,
    },
    /// A member joined a room.
    Joined {
        /// The room.
        room: RoomId,
        /// The member's peer id.
        peer: PeerId,
        /// The member's user.
        user: Arc<str>,
        /// Members after the join.
        members: usize,
    },
    /// A member left a room.
    Left {
        /// The room.
        room: RoomId,
        /// The member's peer id.
        peer: PeerId,
        /// The member's user.
        user: Arc<str>,
        /// Why.
        reason: PeerLeftReason,
        /// Members after the leave.
        members: usize,
    },
    /// A session took over another session's place of the same user.
    Replaced {
        /// The room joined.
        room: RoomId,
        /// The user.
        user: Arc<str>,
        /// The session that lost its place.
        old: SessionId,
        /// The session that took it.
        new: SessionId,
    },
    /// A room came into existence.
    RoomOpened {
        /// The room.
        room: RoomId,
    },
    /// A room ended.
    RoomClosed {
        /// The room.
        room: RoomId,
        /// Why.
        reason: RoomEnd,
    },
    /// A host changed a room's mode.
    ModeChanged {
        /// The room.
        room: RoomId,
        /// The new mode.
        mode: Mode,
    },
    /// A room's media setting changed, or where its media goes (an `auto` room grew to the SFU
    /// or shrank back to mesh).
    MediaChanged {
        /// The room.
        room: RoomId,
        /// Its setting.
        media_mode: MediaMode,
        /// Where its media goes now.
        media: Media,
    },
    /// A lobby guest knocked on a room (a new knock, not one repeated).
    Knocked {
        /// The room.
        room: RoomId,
        /// The knock's ticket, which hosts answer.
        ticket: PeerId,
        /// The guest's user (its lobby token's `sub`).
        user: Arc<str>,
        /// The guest's display name.
        name: Option<String>,
    },
    /// A knock ended: admitted, denied, expired or withdrawn.
    KnockEnded {
        /// The room.
        room: RoomId,
        /// The knock's ticket.
        ticket: PeerId,
        /// How it ended.
        outcome: KnockEnd,
        /// The host that decided, when one did over signaling.
        by: Option<PeerId>,
    },
    /// A message was relayed.
    Relayed {
        /// Its type.
        kind: &'static str,
        /// How many recipients got it.
        recipients: usize,
    },
    /// A client message was accepted and handled.
    Received {
        /// Its type.
        kind: &'static str,
    },
    /// A client message was dropped by a rate limit.
    RateLimited {
        /// Which budget.
        scope: RateScope,
        /// The session that sent it.
        session: SessionId,
        /// Whether the sender was warned now (at most once a second).
        warned: bool,
    },
    /// A client message was refused.
    Rejected {
        /// The code sent back.
        code: ErrorCode,
    },
}

//! The typed payloads of server messages, one struct or enum a message type.
//!
//! Each is what a client reads as a message's `payload`; they derive both directions so the CLI
//! client and the tests decode exactly what the server encodes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{ErrorCode, Limits, Media, MediaMode, Mode, PeerId, Role, SignalError};

/// `hello`: the first message of a session, and of every resume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    /// Session id, for resume.
    pub session: String,
    /// The session's peer id, once it has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<PeerId>,
    /// How often the server checks liveness, in ms.
    pub heartbeat_ms: u64,
    /// How long a session waits for a resume after its transport drops, in ms.
    pub resume_ms: u64,
    /// Size limits and the clock window.
    pub limits: Limits,
    /// The last client `seq` the server accepted (0 for none): resend only what is above it.
    pub last_client_seq: u64,
    /// Whether this hello answers a resume.
    pub resumed: bool,
}

/// One member of a room as others see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Peer id.
    pub peer: PeerId,
    /// Role from the member's token.
    pub role: Role,
    /// Display name from the member's token, if it has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// The `meta` the member sent with `join`; `null` when it sent none.
    #[serde(default)]
    pub meta: Option<Arc<RawValue>>,
}

/// A STUN or TURN server for `RTCPeerConnection`'s `iceServers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential: Option<String>,
}

/// `joined`: the answer to `join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Joined {
    /// The joiner's peer id.
    pub peer: PeerId,
    /// The joiner's role.
    pub role: Role,
    /// The room's current mode.
    pub mode: Mode,
    /// Where the room's media goes now: `sfu` means offer to the peer `sfu`.
    pub media: Media,
    /// The room's media setting (`auto`: `media` follows the room's size).
    pub media_mode: MediaMode,
    /// The other members, in join order.
    pub peers: Vec<PeerInfo>,
    /// ICE servers for the call.
    pub ice_servers: Vec<IceServer>,
}

/// Why a member left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerLeftReason {
    /// It sent `leave`.
    Left,
    /// It closed its connection.
    Disconnected,
    /// A host kicked it.
    Kicked,
    /// A newer session of the same user took its place.
    Replaced,
    /// Its transport went silent and it did not resume in time.
    Timeout,
    /// The room was closed (idle, or server shutdown).
    RoomClosed,
}

impl PeerLeftReason {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerLeftReason::Left => "left",
            PeerLeftReason::Disconnected => "disconnected",
            PeerLeftReason::Kicked => "kicked",
            PeerLeftReason::Replaced => "replaced",
            PeerLeftReason::Timeout => "timeout",
            PeerLeftReason::RoomClosed => "room_closed",
        }
    }
}

/// `peer_left`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerLeft {
    /// Who left.
    pub peer: PeerId,
    /// Why.
    pub reason: PeerLeftReason,
}

/// `left`: the answer to `leave`, or the notice that a host removed this session from the room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Left {
    /// `left` for an own leave, `kicked` when a host removed this session.
    pub reason: PeerLeftReason,
    /// The host that kicked, for `kicked`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub by: Option<PeerId>,
}

/// `mode_changed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeChanged {
    /// New mode.
    pub mode: Mode,
    /// The host that changed it.
    pub by: PeerId,
}

/// `media_changed`: a room's media setting or where its media goes changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaChanged {
    /// Where the media goes now.
    pub media: Media,
    /// The setting.
    pub media_mode: MediaMode,
    /// The host that changed the setting; absent when an `auto` room moved because of a join
    /// or leave.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub by: Option<PeerId>,
}

/// `replaced`: a newer session of the same user joined this room; this session is closed next.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Replaced {
    /// Human-readable explanation.
    pub reason: String,
}

/// `warning`: something the client should know that is not an error of one message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notice {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable text.
    pub message: String,
}

/// How a knock ended: in `knock_ended` to the hosts, and (all but `admitted` and `left`) in
/// `denied` to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnockEnd {
    /// A host let the guest in.
    Admitted,
    /// A host turned the guest away.
    Denied,
    /// Nobody answered within `knock_timeout_ms`.
    Expired,
    /// The guest's session ended first.
    Left,
    /// The stored room was deleted.
    Deleted,
}

/// `knocking`: the answer to a guest's `knock`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Knocking {
    /// The knock's ticket: what hosts `admit` or `deny`.
    pub ticket: PeerId,
    /// How long the knock waits for a host, in ms.
    pub expires_ms: u64,
}

/// `knock`: to every host of the room, a guest waiting to be let in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Knock {
    /// The knock's ticket, for `admit` or `deny`.
    pub ticket: PeerId,
    /// The guest's display name, if its token carries one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// `knock_ended`: to every host of the room, a knock that is over.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KnockEnded {
    /// The knock's ticket.
    pub ticket: PeerId,
    /// How it ended.
    pub outcome: KnockEnd,
    /// The host that admitted or denied it, when a host in the room did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub by: Option<PeerId>,
}

/// `admitted`: to the guest, let in; it may `join` now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Admitted {
    /// A room token for the room, for this session's reconnects and later sessions.
    pub token: String,
}

/// `denied`: to the guest, not let in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Denied {
    /// `denied`, `expired` or `deleted`.
    pub reason: KnockEnd,
}

/// `room_closed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoomClosed {
    /// Why the room was closed.
    pub reason: RoomClosedReason,
}

/// Why a room was closed under its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomClosedReason {
    /// Nobody sent anything in it for `room_idle_ms`.
    Idle,
    /// The server is shutting down.
    Shutdown,
    /// Its stored room was deleted (`DELETE /v1/rooms/{room}`).
    Deleted,
}

impl KnockEnd {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            KnockEnd::Admitted => "admitted",
            KnockEnd::Denied => "denied",
            KnockEnd::Expired => "expired",
            KnockEnd::Left => "left",
            KnockEnd::Deleted => "deleted",
        }
    }
}

impl RoomClosedReason {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomClosedReason::Idle => "idle",
            RoomClosedReason::Shutdown => "shutdown",
            RoomClosedReason::Deleted => "deleted",
        }
    }
}

/// `error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    /// Documented code.
    pub code: ErrorCode,
    /// Human-readable text.
    pub message: String,
    /// The `type` of the refused message, when it could be read.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub type_name: Option<String>,
    /// The client `seq` of the refused message, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_seq: Option<u64>,
}

impl ErrorBody {
    /// The body for `error`.
    pub fn from_error(error: &SignalError) -> Self {
        ErrorBody {
            code: error.code(),
            message: error.to_string(),
            type_name: None,
            client_seq: None,
        }
    }
}

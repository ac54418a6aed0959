//! The client message types: what a parsed frame means, before any state is consulted.
//!
//! These are the values the core matches on, so they live apart from the parser that builds them;
//! the enums that are also payload fields (`Mode`, `MediaMode`) carry their wire names here.

use std::{borrow::Cow, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{PeerRef, RoomRef, SignalError};

/// A room's control mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Guests may signal only to hosts and may not broadcast.
    HostOnly,
    /// Anyone may signal anyone. The default.
    #[default]
    FreeForAll,
}

/// A room's media setting: where its media goes, or (`auto`) how that follows its size. What
/// it means now is the room's [`Media`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MediaMode {
    /// Always [`Media::Mesh`].
    #[default]
    Mesh,
    /// Always [`Media::Sfu`].
    Sfu,
    /// [`Media::Mesh`] while the room holds at most two members, [`Media::Sfu`] from
    /// [`AUTO_SFU_MEMBERS`] on (on a server that runs an SFU; mesh on one that does not).
    Auto,
}

/// Members from which an `auto` room's media goes through the SFU.
pub const AUTO_SFU_MEMBERS: usize = 3;

impl MediaMode {
    /// Where the media of a room with this setting and `members` members goes, on a server
    /// that runs an SFU (`sfu`) or not.
    pub fn media(self, members: usize, sfu: bool) -> Media {
        match self {
            MediaMode::Mesh => Media::Mesh,
            MediaMode::Sfu => Media::Sfu,
            MediaMode::Auto if sfu && members >= AUTO_SFU_MEMBERS => Media::Sfu,
            MediaMode::Auto => Media::Mesh,
        }
    }
}

/// Where a room's media goes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    /// Peers connect to each other directly; the server relays their signaling.
    #[default]
    Mesh,
    /// Every peer connects once to the server's SFU (the peer [`SFU_PEER`]), which forwards
    /// media between them.
    Sfu,
}

/// The reserved peer id of the SFU in rooms whose media is [`Media::Sfu`]; no client
/// may take it.
pub const SFU_PEER: &str = "sfu";

/// How a subscriber shows a video track (`subscribe`'s `width`/`height` or `paused`): the SFU
/// sends the simulcast layer that size needs, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Not shown: send nothing.
    Paused,
    /// Shown at this size in device pixels.
    Visible {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

/// Most tracks one `subscribe` may name.
pub const MAX_SUBSCRIBE_TRACKS: usize = 64;

/// The targeted signaling messages the server relays unchanged to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// SDP offer.
    Offer,
    /// SDP answer.
    Answer,
    /// ICE candidate (an empty `candidate` ends the candidates).
    Candidate,
    /// Start of a call.
    CallStart,
    /// End of a call.
    CallEnd,
}

impl SignalKind {
    /// The wire `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Offer => "offer",
            SignalKind::Answer => "answer",
            SignalKind::Candidate => "candidate",
            SignalKind::CallStart => "call_start",
            SignalKind::CallEnd => "call_end",
        }
    }
}

/// A validated client message, without its envelope header. It borrows from the message text, so
/// relaying one copies the payload only into the recipients' messages.
#[derive(Debug, Clone)]
pub enum ClientMessage<'a> {
    /// Join `room`, optionally choosing the peer id and announcing `meta` to the others.
    Join {
        /// Room to join.
        room: RoomRef<'a>,
        /// Requested peer id; the server picks one when absent.
        peer: Option<PeerRef<'a>>,
        /// App data shown to the other members (a JSON object).
        meta: Option<&'a RawValue>,
    },
    /// Leave `room`.
    Leave {
        /// Room to leave.
        room: RoomRef<'a>,
    },
    /// A targeted signaling message, relayed to `to` with `from` set.
    Signal {
        /// Which message.
        kind: SignalKind,
        /// Room both peers are in.
        room: RoomRef<'a>,
        /// Recipient.
        to: PeerRef<'a>,
        /// The sender's payload (the text of a JSON object), relayed verbatim.
        payload: &'a str,
    },
    /// App data or chat: to one peer, or to the whole room without `to`.
    Message {
        /// Room of the message.
        room: RoomRef<'a>,
        /// Recipient, or everybody else in the room.
        to: Option<PeerRef<'a>>,
        /// The sender's payload (the text of a JSON object), relayed verbatim.
        payload: &'a str,
    },
    /// Change the room's mode (hosts only).
    Mode {
        /// Room to change.
        room: RoomRef<'a>,
        /// New mode.
        mode: Mode,
    },
    /// Change the room's media setting (hosts only).
    SetMedia {
        /// Room to change.
        room: RoomRef<'a>,
        /// New setting.
        media: MediaMode,
    },
    /// Remove a member from the room (hosts only).
    Kick {
        /// Room to remove from.
        room: RoomRef<'a>,
        /// Peer to remove.
        peer: PeerRef<'a>,
    },
    /// Lobby sessions: ask the room's hosts to be let in.
    Knock {
        /// Room to enter.
        room: RoomRef<'a>,
    },
    /// Let a waiting guest in (`admit`) or turn it away (`deny`); hosts only.
    Decide {
        /// Room the guest knocked on.
        room: RoomRef<'a>,
        /// The knock's ticket, from `knock`.
        ticket: PeerRef<'a>,
        /// `admit` (true) or `deny` (false).
        admit: bool,
    },
    /// SFU rooms: start or stop receiving these tracks from the SFU.
    Subscribe {
        /// Room of the tracks.
        room: RoomRef<'a>,
        /// Track ids, as announced in `track_published`.
        tracks: Vec<Cow<'a, str>>,
        /// `true` to receive them, `false` to stop.
        subscribe: bool,
        /// How the subscriber shows them, if it said.
        view: Option<View>,
    },
    /// SFU rooms: mute or unmute a published track (a host may mute another member's).
    Mute {
        /// Room of the track.
        room: RoomRef<'a>,
        /// Track id, as announced in `track_published`.
        track: Cow<'a, str>,
        /// `true` to mute.
        muted: bool,
    },
    /// Liveness probe, answered with `pong`.
    Ping,
    /// The client has every server message up to `seq`; the server may release them.
    Ack {
        /// Highest server seq received.
        seq: u64,
    },
}

impl<'a> ClientMessage<'a> {
    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Leave { .. } => "leave",
            ClientMessage::Signal { kind, .. } => kind.as_str(),
            ClientMessage::Message { .. } => "message",
            ClientMessage::Mode { .. } => "mode",
            ClientMessage::SetMedia { .. } => "set_media",
            ClientMessage::Kick { .. } => "kick",
            ClientMessage::Knock { .. } => "knock",
            ClientMessage::Decide { admit: true, .. } => "admit",
            ClientMessage::Decide { admit: false, .. } => "deny",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Mute { .. } => "mute",
            ClientMessage::Ping => "ping",
            ClientMessage::Ack { .. } => "ack",
        }
    }

    /// The room the message is about, if any.
    pub fn room(&self) -> Option<&RoomRef<'a>> {
        match self {
            ClientMessage::Join { room, .. }
            | ClientMessage::Leave { room }
            | ClientMessage::Signal { room, .. }
            | ClientMessage::Message { room, .. }
            | ClientMessage::Mode { room, .. }
            | ClientMessage::SetMedia { room, .. }
            | ClientMessage::Kick { room, .. }
            | ClientMessage::Knock { room }
            | ClientMessage::Decide { room, .. }
            | ClientMessage::Subscribe { room, .. }
            | ClientMessage::Mute { room, .. } => Some(room),
            ClientMessage::Ping | ClientMessage::Ack { .. } => None,
        }
    }
}

/// The envelope fields the core needs to order and answer a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    /// Client sequence number (replay guard), at least 1.
    pub seq: u64,
    /// Client clock, Unix ms.
    pub ts: u64,
    /// Correlation id, echoed on the reply or error.
    pub id: Option<Arc<str>>,
    /// `from` as the client sent it; the core rejects it unless it is the sender's own peer id.
    pub claimed_from: Option<String>,
}

/// A parsed client message: its header and the message.
#[derive(Debug, Clone)]
pub struct ParsedMessage<'a> {
    /// Envelope fields.
    pub header: MessageHeader,
    /// The validated message.
    pub message: ClientMessage<'a>,
}

/// What [`parse_client_message`] could read before it failed, so the error can echo `id` and the core
/// can still apply the `seq` guard to a message whose body is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The error to send.
    pub error: SignalError,
    /// The header, when the envelope itself was valid.
    pub header: Option<MessageHeader>,
    /// The correlation id, when it could be read.
    pub id: Option<Arc<str>>,
    /// The `type`, when it could be read.
    pub type_name: Option<String>,
}

//! [`ServerBody`], every server message body, and [`ServerMessage`], a body with its room, sender
//! and correlation id before it is stamped for one recipient.
//!
//! The core builds these; `encode` turns them into text. Kept apart from the payload structs so the
//! one list of message types and their wire names is in one place.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use super::bodies::{
    Admitted, Denied, ErrorBody, Hello, Joined, Knock, KnockEnded, Knocking, Left, MediaChanged,
    ModeChanged, Notice, PeerInfo, PeerLeft, Replaced, RoomClosed,
};
use super::encode::{Envelope, Payload};
use crate::{PeerId, RoomId, SignalKind};

#[derive(Serialize)]
struct Empty {}

/// Every server message body. Serializes as the message's `payload`.
#[derive(Debug, Clone)]
pub enum ServerBody {
    /// `hello`
    Hello(Hello),
    /// `joined`
    Joined(Joined),
    /// `peer_joined`
    PeerJoined(PeerInfo),
    /// `peer_left`
    PeerLeft(PeerLeft),
    /// `left`
    Left(Left),
    /// `offer`, `answer`, `candidate`, `call_start`, `call_end`, relayed verbatim.
    Signal(SignalKind, Arc<RawValue>),
    /// `message`, relayed verbatim.
    Message(Arc<RawValue>),
    /// `announcement`: the server's own message to a room (`POST /v1/rooms/{room}/messages`),
    /// its payload as the API's caller wrote it.
    Announcement(Arc<RawValue>),
    /// `mode_changed`
    ModeChanged(ModeChanged),
    /// `media_changed`
    MediaChanged(MediaChanged),
    /// `pong`
    Pong,
    /// `replaced`
    Replaced(Replaced),
    /// `warning`
    Warning(Notice),
    /// `room_closed`
    RoomClosed(RoomClosed),
    /// `knocking`
    Knocking(Knocking),
    /// `knock`
    Knock(Knock),
    /// `knock_ended`
    KnockEnded(KnockEnded),
    /// `admitted`
    Admitted(Admitted),
    /// `denied`
    Denied(Denied),
    /// `error`
    Error(ErrorBody),
}

impl Serialize for ServerBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ServerBody::Hello(p) => p.serialize(s),
            ServerBody::Joined(p) => p.serialize(s),
            ServerBody::PeerJoined(p) => p.serialize(s),
            ServerBody::PeerLeft(p) => p.serialize(s),
            ServerBody::Left(p) => p.serialize(s),
            ServerBody::Signal(_, raw)
            | ServerBody::Message(raw)
            | ServerBody::Announcement(raw) => raw.serialize(s),
            ServerBody::ModeChanged(p) => p.serialize(s),
            ServerBody::MediaChanged(p) => p.serialize(s),
            ServerBody::Pong => Empty {}.serialize(s),
            ServerBody::Replaced(p) => p.serialize(s),
            ServerBody::Warning(p) => p.serialize(s),
            ServerBody::RoomClosed(p) => p.serialize(s),
            ServerBody::Knocking(p) => p.serialize(s),
            ServerBody::Knock(p) => p.serialize(s),
            ServerBody::KnockEnded(p) => p.serialize(s),
            ServerBody::Admitted(p) => p.serialize(s),
            ServerBody::Denied(p) => p.serialize(s),
            ServerBody::Error(p) => p.serialize(s),
        }
    }
}

impl ServerBody {
    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerBody::Hello(_) => "hello",
            ServerBody::Joined(_) => "joined",
            ServerBody::PeerJoined(_) => "peer_joined",
            ServerBody::PeerLeft(_) => "peer_left",
            ServerBody::Left(_) => "left",
            ServerBody::Signal(kind, _) => kind.as_str(),
            ServerBody::Message(_) => "message",
            ServerBody::Announcement(_) => "announcement",
            ServerBody::ModeChanged(_) => "mode_changed",
            ServerBody::MediaChanged(_) => "media_changed",
            ServerBody::Pong => "pong",
            ServerBody::Replaced(_) => "replaced",
            ServerBody::Warning(_) => "warning",
            ServerBody::RoomClosed(_) => "room_closed",
            ServerBody::Knocking(_) => "knocking",
            ServerBody::Knock(_) => "knock",
            ServerBody::KnockEnded(_) => "knock_ended",
            ServerBody::Admitted(_) => "admitted",
            ServerBody::Denied(_) => "denied",
            ServerBody::Error(_) => "error",
        }
    }
}

/// A server message before it is stamped with the recipient's `seq` and the send time.
#[derive(Debug, Clone)]
pub struct ServerMessage {
    /// Room, for room messages.
    pub room: Option<RoomId>,
    /// Sender, for relayed messages.
    pub from: Option<PeerId>,
    /// Correlation id being echoed or relayed.
    pub id: Option<Arc<str>>,
    /// Type and payload.
    pub body: Box<ServerBody>,
}

impl ServerMessage {
    /// A message with `body` and nothing else set.
    pub fn new(body: ServerBody) -> Self {
        ServerMessage {
            room: None,
            from: None,
            id: None,
            body: Box::new(body),
        }
    }

    /// Sets `room`.
    pub fn in_room(mut self, room: &RoomId) -> Self {
        self.room = Some(room.clone());
        self
    }

    /// Sets `id`.
    pub fn with_id(mut self, id: Option<Arc<str>>) -> Self {
        self.id = id;
        self
    }

    /// The JSON text as sent, stamped with the recipient's `seq` and the server time `ts`.
    pub fn encode(&self, seq: u64, ts: u64) -> String {
        let mut out = String::new();
        self.encode_into(&mut out, seq, ts);
        out
    }

    /// Appends the JSON text of [`ServerMessage::encode`] to `out`.
    pub fn encode_into(&self, out: &mut String, seq: u64, ts: u64) {
        let payload = match &*self.body {
            ServerBody::Signal(_, raw)
            | ServerBody::Message(raw)
            | ServerBody::Announcement(raw) => Payload::Raw(raw.get()),
            body => Payload::Body(body),
        };
        Envelope {
            kind: self.body.type_name(),
            room: self.room.as_ref().map(RoomId::text),
            from: self.from.as_ref().map(PeerId::text),
            id: self.id.as_deref(),
            payload,
        }
        .encode_into(out, seq, ts);
    }
}

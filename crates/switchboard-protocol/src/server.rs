//! Server -> client messages: typed bodies and their one encoding.
//!
//! A [`ServerMessage`] is built by the core without a `seq` or `ts`; those are stamped when the
//! message leaves a session's outbox ([`ServerMessage::encode`]), because `seq` is per recipient
//! session and may be reassigned on resume. [`ServerEnvelope`] is the decoding side, for clients.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{ErrorCode, Limits, Mode, PeerId, Role, RoomId, SignalError, SignalKind};

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

/// `room_closed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoomClosed {
    /// `idle` or `shutdown`.
    pub reason: String,
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
    /// `mode_changed`
    ModeChanged(ModeChanged),
    /// `pong`
    Pong,
    /// `replaced`
    Replaced(Replaced),
    /// `warning`
    Warning(Notice),
    /// `room_closed`
    RoomClosed(RoomClosed),
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
            ServerBody::Signal(_, raw) | ServerBody::Message(raw) => raw.serialize(s),
            ServerBody::ModeChanged(p) => p.serialize(s),
            ServerBody::Pong => Empty {}.serialize(s),
            ServerBody::Replaced(p) => p.serialize(s),
            ServerBody::Warning(p) => p.serialize(s),
            ServerBody::RoomClosed(p) => p.serialize(s),
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
            ServerBody::ModeChanged(_) => "mode_changed",
            ServerBody::Pong => "pong",
            ServerBody::Replaced(_) => "replaced",
            ServerBody::Warning(_) => "warning",
            ServerBody::RoomClosed(_) => "room_closed",
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
    /// Type and payload. Shared, because a broadcast puts one body in many outboxes.
    pub body: Arc<ServerBody>,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a RoomId>,
    seq: u64,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a PeerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    payload: &'a ServerBody,
}

impl ServerMessage {
    /// A message with `body` and nothing else set.
    pub fn new(body: ServerBody) -> Self {
        ServerMessage {
            room: None,
            from: None,
            id: None,
            body: Arc::new(body),
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
        let wire = Wire {
            kind: self.body.type_name(),
            room: self.room.as_ref(),
            seq,
            ts,
            from: self.from.as_ref(),
            id: self.id.as_deref(),
            payload: &self.body,
        };
        // Every field is a string, an integer or a derived struct of those: serialization cannot fail.
        serde_json::to_string(&wire).expect("server message serializes")
    }
}

/// A server message as a client decodes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerEnvelope {
    /// Message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Room, on room messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Server sequence number of this session.
    pub seq: u64,
    /// Server time, Unix ms.
    pub ts: u64,
    /// Sender, on relayed messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Echoed correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Type-specific payload.
    #[serde(default)]
    pub payload: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_envelope_fields_in_contract_shape() {
        let raw: Arc<RawValue> =
            Arc::from(RawValue::from_string(r#"{"sdp":"v=0"}"#.into()).unwrap());
        let mut msg = ServerMessage::new(ServerBody::Signal(SignalKind::Offer, raw))
            .in_room(&RoomId::parse("r1").unwrap())
            .with_id(Some(Arc::from("c-42")));
        msg.from = Some(PeerId::parse("alice").unwrap());
        let text = msg.encode(7, 1_763_700_000_000);
        assert_eq!(
            text,
            r#"{"type":"offer","room":"r1","seq":7,"ts":1763700000000,"from":"alice","id":"c-42","payload":{"sdp":"v=0"}}"#
        );
        let back: ServerEnvelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.payload, json!({"sdp": "v=0"}));
    }

    #[test]
    fn bodiless_messages_have_an_empty_object_payload() {
        let text = ServerMessage::new(ServerBody::Pong).encode(1, 2);
        assert_eq!(text, r#"{"type":"pong","seq":1,"ts":2,"payload":{}}"#);
    }

    #[test]
    fn error_body_names_code_and_refused_message() {
        let mut body = ErrorBody::from_error(&SignalError::DuplicateSeq { seq: 3, last: 5 });
        body.type_name = Some("offer".into());
        body.client_seq = Some(3);
        let text = ServerMessage::new(ServerBody::Error(body)).encode(9, 9);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["payload"]["code"], "duplicate_seq");
        assert_eq!(v["payload"]["type"], "offer");
        assert_eq!(v["payload"]["client_seq"], 3);
    }
}

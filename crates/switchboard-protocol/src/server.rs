//! Server -> client messages: typed bodies and their one encoding.
//!
//! A [`ServerMessage`] (or, for relayed messages, an [`Envelope`] borrowing the sender's frame) is
//! built by the core without a `seq` or `ts`; those are stamped when it is queued for one recipient
//! session, because `seq` is per session. A resume reassigns seqs with [`renumber`].
//! [`ServerEnvelope`] is the decoding side, for clients.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    ErrorCode, IdText, Limits, Media, MediaMode, Mode, PeerId, Role, RoomId, SignalError,
    SignalKind,
};

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

/// A server message's envelope with borrowed parts: what the relay path encodes straight from the
/// sender's frame, with no [`ServerMessage`] built in between.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The wire `type`: one of the protocol's type names, written as is (they need no escaping).
    pub kind: &'static str,
    /// Room id, for room messages.
    pub room: Option<IdText<'a>>,
    /// Sender's peer id, for relayed messages.
    pub from: Option<IdText<'a>>,
    /// Correlation id being echoed or relayed.
    pub id: Option<&'a str>,
    /// The payload.
    pub payload: Payload<'a>,
}

/// A payload to encode.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// JSON text relayed verbatim.
    Raw(&'a str),
    /// A body serialized with serde (the rare messages).
    Body(&'a ServerBody),
}

impl Envelope<'_> {
    /// Appends the JSON text, stamped with the recipient's `seq` and the server time `ts`.
    ///
    /// Written by hand rather than derived, because it runs once per recipient of every relayed
    /// message: fields in contract order, byte for byte what serde_json writes for the same
    /// envelope (a test compares both), with `seq` right after `type` and `room` so that
    /// [`renumber`] can find it.
    pub fn encode_into(&self, out: &mut String, seq: u64, ts: u64) {
        let payload_len = match self.payload {
            Payload::Raw(raw) => raw.len(),
            Payload::Body(_) => 256,
        };
        let ids = self.room.map_or(0, |r| r.as_str().len())
            + self.from.map_or(0, |f| f.as_str().len())
            + self.id.map_or(0, str::len);
        out.reserve(80 + ids + payload_len);
        // Type names are the protocol's own lowercase words: nothing in them to escape.
        out.push_str(r#"{"type":""#);
        out.push_str(self.kind);
        out.push('"');
        if let Some(room) = self.room {
            out.push_str(r#","room":""#);
            out.push_str(room.as_str());
            out.push('"');
        }
        out.push_str(SEQ_FIELD);
        push_u64(out, seq);
        out.push_str(r#","ts":"#);
        push_u64(out, ts);
        if let Some(from) = self.from {
            out.push_str(r#","from":""#);
            out.push_str(from.as_str());
            out.push('"');
        }
        if let Some(id) = self.id {
            out.push_str(r#","id":"#);
            push_json_str(out, id);
        }
        out.push_str(r#","payload":"#);
        match self.payload {
            Payload::Raw(raw) => out.push_str(raw),
            // Every body is strings, integers and derived structs of those: it cannot fail.
            Payload::Body(body) => {
                out.push_str(&serde_json::to_string(body).expect("server body serializes"))
            }
        }
        out.push('}');
    }
}

const SEQ_FIELD: &str = r#","seq":"#;

/// `text`, an encoded server message, with its `seq` replaced: for a resume, which renumbers the
/// messages it replays. The first `,"seq":` is the envelope's, since only `type` and `room` come
/// before it and neither can hold an unescaped quote.
pub fn renumber(text: &str, seq: u64) -> String {
    let start = text
        .find(SEQ_FIELD)
        .expect("an encoded server message has a seq")
        + SEQ_FIELD.len();
    let digits = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len() - start);
    let mut out = String::with_capacity(text.len() + 20);
    out.push_str(&text[..start]);
    push_u64(&mut out, seq);
    out.push_str(&text[start + digits..]);
    out
}

fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut clean = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte escaped is ASCII, so `clean..i` and `i + 1..` are on character boundaries.
        out.push_str(&s[clean..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        clean = i + 1;
    }
    out.push_str(&s[clean..]);
    out.push('"');
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
    use proptest::prelude::*;
    use serde_json::json;

    /// The envelope as serde writes it: the reference the hand-written encoder must match.
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

    fn serde_encode(m: &ServerMessage, seq: u64, ts: u64) -> String {
        serde_json::to_string(&Wire {
            kind: m.body.type_name(),
            room: m.room.as_ref(),
            seq,
            ts,
            from: m.from.as_ref(),
            id: m.id.as_deref(),
            payload: &m.body,
        })
        .unwrap()
    }

    fn raw(text: &str) -> Arc<RawValue> {
        Arc::from(RawValue::from_string(text.to_owned()).unwrap())
    }

    /// One body of every kind, with `text` in every free-text field.
    fn every_body(text: &str) -> Vec<ServerBody> {
        let peer = PeerId::parse("p-1.x").unwrap();
        let info = PeerInfo {
            peer: peer.clone(),
            role: Role::Host,
            name: Some(text.to_owned()),
            meta: Some(raw(&serde_json::to_string(&json!({ "m": text })).unwrap())),
        };
        let payload = raw(&serde_json::to_string(&json!({ "sdp": text, "n": [1, 2.5] })).unwrap());
        let mut error = ErrorBody::from_error(&SignalError::invalid(text));
        error.type_name = Some(text.to_owned());
        error.client_seq = Some(u64::MAX);
        let mut bodies = vec![
            ServerBody::Hello(Hello {
                session: text.to_owned(),
                peer: Some(peer.clone()),
                heartbeat_ms: 15_000,
                resume_ms: 30_000,
                limits: Limits::default(),
                last_client_seq: 3,
                resumed: true,
            }),
            ServerBody::Joined(Joined {
                peer: peer.clone(),
                role: Role::Guest,
                mode: Mode::HostOnly,
                media: Media::Sfu,
                media_mode: MediaMode::Auto,
                peers: vec![
                    info.clone(),
                    PeerInfo {
                        name: None,
                        meta: None,
                        ..info.clone()
                    },
                ],
                ice_servers: vec![IceServer {
                    urls: vec![text.to_owned()],
                    username: Some(text.to_owned()),
                    credential: None,
                }],
            }),
            ServerBody::PeerJoined(info),
            ServerBody::PeerLeft(PeerLeft {
                peer: peer.clone(),
                reason: PeerLeftReason::Timeout,
            }),
            ServerBody::Left(Left {
                reason: PeerLeftReason::Kicked,
                by: Some(peer.clone()),
            }),
            ServerBody::Message(payload.clone()),
            ServerBody::Announcement(payload.clone()),
            ServerBody::ModeChanged(ModeChanged {
                mode: Mode::FreeForAll,
                by: peer.clone(),
            }),
            ServerBody::MediaChanged(MediaChanged {
                media: Media::Mesh,
                media_mode: MediaMode::Auto,
                by: Some(peer.clone()),
            }),
            ServerBody::Pong,
            ServerBody::Replaced(Replaced {
                reason: text.to_owned(),
            }),
            ServerBody::Warning(Notice {
                code: ErrorCode::RateLimited,
                message: text.to_owned(),
            }),
            ServerBody::RoomClosed(RoomClosed {
                reason: RoomClosedReason::Idle,
            }),
            ServerBody::Knocking(Knocking {
                ticket: peer.clone(),
                expires_ms: 300_000,
            }),
            ServerBody::Knock(Knock {
                ticket: peer.clone(),
                name: Some(text.to_owned()),
            }),
            ServerBody::KnockEnded(KnockEnded {
                ticket: peer.clone(),
                outcome: KnockEnd::Admitted,
                by: Some(peer),
            }),
            ServerBody::Admitted(Admitted {
                token: text.to_owned(),
            }),
            ServerBody::Denied(Denied {
                reason: KnockEnd::Expired,
            }),
            ServerBody::Error(error),
        ];
        for kind in [
            SignalKind::Offer,
            SignalKind::Answer,
            SignalKind::Candidate,
            SignalKind::CallStart,
            SignalKind::CallEnd,
        ] {
            bodies.push(ServerBody::Signal(kind, payload.clone()));
        }
        bodies
    }

    proptest! {
        /// The hand-written encoder writes exactly what serde writes, for every body kind, with and
        /// without each optional field, whatever the strings hold.
        #[test]
        fn hand_encoder_matches_serde(
            text in any::<String>(),
            id in proptest::option::of(any::<String>()),
            room in proptest::option::of("[A-Za-z0-9_.:-]{1,64}"),
            from in proptest::option::of("[A-Za-z0-9_.-]{1,64}"),
            seq in any::<u64>(),
            ts in any::<u64>(),
        ) {
            for body in every_body(&text) {
                let message = ServerMessage {
                    room: room.as_deref().map(|r| RoomId::parse(r).unwrap()),
                    from: from.as_deref().map(|f| PeerId::parse(f).unwrap()),
                    id: id.as_deref().map(Arc::from),
                    body: Box::new(body),
                };
                let text = message.encode(seq, ts);
                prop_assert_eq!(&text, &serde_encode(&message, seq, ts));
                prop_assert_eq!(renumber(&text, 7), message.encode(7, ts));
            }
        }
    }

    #[test]
    fn escapes_every_control_character_as_serde_does() {
        let all: String = (0u8..0x80)
            .map(char::from)
            .chain(['é', '\u{2028}', '😀'])
            .collect();
        for body in every_body(&all) {
            let message = ServerMessage::new(body).with_id(Some(all.as_str().into()));
            assert_eq!(message.encode(0, 0), serde_encode(&message, 0, 0));
        }
    }

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

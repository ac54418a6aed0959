//! Client -> server messages: the one parse and validation path every transport calls.
//!
//! [`parse_client_message`] turns text into a [`ParsedMessage`] or a [`SignalError`]. It checks syntax
//! and limits only; what depends on state (the `seq` guard, the clock window, membership, roles)
//! belongs to the core, which owns that state. Relayed payloads are validated against their typed
//! shape and then kept as the sender's raw JSON, so the recipient gets exactly what was sent.

use std::{borrow::Cow, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    Limits, PeerRef, RoomRef, SignalError,
    json::{container_end, digits_value, plain_integer, plain_string_end, scalar_len},
};

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

/// The envelope's fields, each as its JSON text.
#[derive(Default)]
struct RawEnvelope<'a> {
    kind: Option<&'a str>,
    room: Option<&'a str>,
    seq: Option<&'a str>,
    ts: Option<&'a str>,
    to: Option<&'a str>,
    from: Option<&'a str>,
    id: Option<&'a str>,
    payload: Option<&'a str>,
    /// The values of `seq` and `ts` when [`split_envelope`] read them as plain integers, so they
    /// are not read twice.
    seq_value: Option<u64>,
    ts_value: Option<u64>,
}

impl<'a> RawEnvelope<'a> {
    /// Splits `text` into its fields, refusing what serde refuses.
    fn read(text: &'a str) -> Result<Self, serde_json::Error> {
        if let Some(raw) = split_envelope(text) {
            return Ok(raw);
        }
        let raw: SerdeEnvelope = serde_json::from_str(text)?;
        Ok(RawEnvelope {
            kind: raw.kind.map(RawValue::get),
            room: raw.room.map(RawValue::get),
            seq: raw.seq.map(RawValue::get),
            ts: raw.ts.map(RawValue::get),
            to: raw.to.map(RawValue::get),
            from: raw.from.map(RawValue::get),
            id: raw.id.map(RawValue::get),
            payload: raw.payload.map(RawValue::get),
            seq_value: None,
            ts_value: None,
        })
    }
}

/// Splits an envelope written the common way without serde's generic machinery: one object with
/// no whitespace between tokens, known fields once each, keys and scalar values without escapes,
/// and an object or array payload (checked as serde checks it). For anything else it returns
/// `None` and serde reads the frame, so what is accepted, and how a refusal is worded, is serde's.
fn split_envelope(text: &str) -> Option<RawEnvelope<'_>> {
    let b = text.as_bytes();
    let mut raw = RawEnvelope::default();
    if b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return None;
    }
    if b.len() == 2 {
        return Some(raw);
    }
    // The fields read so far, one bit each: a second one goes to serde, which refuses it.
    let mut seen = 0u8;
    let mut i = 1;
    loop {
        let (field, key_len) = envelope_key(&b[i..])?;
        if seen & field.bit() != 0 {
            return None;
        }
        seen |= field.bit();
        let start = i + key_len;
        let end = match (field, b.get(start)?) {
            (Field::Payload, _) => container_end(b, start)?,
            (_, b'"') => plain_string_end(b, start)?,
            (Field::Seq | Field::Ts, _) => match plain_integer(&b[start..]) {
                Some((value, len)) => {
                    *raw.value_slot(field) = Some(value);
                    start + len
                }
                None => start + scalar_len(&b[start..])?,
            },
            _ => start + scalar_len(&b[start..])?,
        };
        let value = &text[start..end];
        // Serde reads a `null` field as absent (after counting it for duplicates); a payload is
        // never `null` here, as `container_end` reads only objects and arrays.
        if value != "null" {
            *raw.slot(field) = Some(value);
        }
        match b.get(end)? {
            b',' => i = end + 1,
            b'}' if end + 1 == b.len() => return Some(raw),
            _ => return None,
        }
    }
}

/// A field of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Kind,
    Room,
    Seq,
    Ts,
    To,
    From,
    Id,
    Payload,
}

impl Field {
    /// The field's bit in a set of fields.
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl<'a> RawEnvelope<'a> {
    fn slot(&mut self, field: Field) -> &mut Option<&'a str> {
        match field {
            Field::Kind => &mut self.kind,
            Field::Room => &mut self.room,
            Field::Seq => &mut self.seq,
            Field::Ts => &mut self.ts,
            Field::To => &mut self.to,
            Field::From => &mut self.from,
            Field::Id => &mut self.id,
            Field::Payload => &mut self.payload,
        }
    }

    /// Where the value of an integer field goes.
    fn value_slot(&mut self, field: Field) -> &mut Option<u64> {
        match field {
            Field::Seq => &mut self.seq_value,
            Field::Ts => &mut self.ts_value,
            _ => unreachable!("only `seq` and `ts` are read as integers"),
        }
    }
}

/// The field whose key, quoted and followed by `:`, starts `b`, and the length of that. Keys are
/// compared as these literal bytes, so a key written any other way (escaped, unknown, or with
/// whitespace before its colon) goes to serde.
fn envelope_key(b: &[u8]) -> Option<(Field, usize)> {
    /// `field` when `b` starts with `key` (a fixed length, so the compare is a few loads).
    fn key<const N: usize>(b: &[u8], key: &[u8; N], field: Field) -> Option<(Field, usize)> {
        (b.get(..N)? == key).then_some((field, N))
    }
    // The key's first two letters tell which it can be.
    match b.get(1..3)? {
        b"ty" => key(b, b"\"type\":", Field::Kind),
        b"ro" => key(b, b"\"room\":", Field::Room),
        b"se" => key(b, b"\"seq\":", Field::Seq),
        b"ts" => key(b, b"\"ts\":", Field::Ts),
        b"to" => key(b, b"\"to\":", Field::To),
        b"fr" => key(b, b"\"from\":", Field::From),
        b"id" => key(b, b"\"id\":", Field::Id),
        b"pa" => key(b, b"\"payload\":", Field::Payload),
        _ => None,
    }
}

#[derive(Deserialize)]
struct SerdeEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    room: Option<&'a RawValue>,
    #[serde(borrow)]
    seq: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    to: Option<&'a RawValue>,
    #[serde(borrow)]
    from: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

fn field<'a, T: Deserialize<'a>>(
    raw: Option<&'a str>,
    name: &str,
    expected: &str,
) -> Result<Option<T>, SignalError> {
    match raw {
        None => Ok(None),
        Some("null") => Ok(None),
        Some(v) => serde_json::from_str(v)
            .map(Some)
            .map_err(|e| SignalError::invalid(format!("`{name}` must be {expected}: {e}"))),
    }
}

fn required<'a, T: Deserialize<'a>>(
    raw: Option<&'a str>,
    name: &str,
    expected: &str,
) -> Result<T, SignalError> {
    field(raw, name, expected)?.ok_or_else(|| SignalError::invalid(format!("`{name}` is required")))
}

// The envelope's fields are read from their raw text without serde when they are written the
// common way; anything else (escapes, `null`, a wrong type, an invalid id) goes through `field`,
// which accepts and refuses exactly as before and words the error.

/// A string field's contents when it has no escapes.
fn plain_str(raw: Option<&str>) -> Option<&str> {
    let s = quoted(raw)?;
    // A byte at a time: these strings are short, too short for `contains` to pay for its setup.
    (!s.bytes().any(|c| c == b'\\')).then_some(s)
}

/// A string field's contents, escapes and all. Enough to check an id with: an id's alphabet has
/// no `\`, so a written escape fails the check, and the field goes to `field` to be read.
fn quoted(raw: Option<&str>) -> Option<&str> {
    raw?.strip_prefix('"')?.strip_suffix('"')
}

/// An integer field's value when it is plain digits that fit.
fn plain_u64(raw: Option<&str>) -> Option<u64> {
    let s = raw?.as_bytes();
    // JSON has no leading zeros (`field` refuses them), and 19 digits cannot overflow a u64.
    if !(1..=19).contains(&s.len()) || (s[0] == b'0' && s.len() > 1) {
        return None;
    }
    digits_value(s)
}

fn text_field<'a>(raw: Option<&'a str>, name: &str) -> Result<Option<Cow<'a, str>>, SignalError> {
    match plain_str(raw) {
        Some(s) => Ok(Some(Cow::Borrowed(s))),
        None => field(raw, name, "a string"),
    }
}

fn required_u64(
    raw: Option<&str>,
    split: Option<u64>,
    name: &str,
    expected: &str,
) -> Result<u64, SignalError> {
    match split.or_else(|| plain_u64(raw)) {
        Some(n) => Ok(n),
        None => required(raw, name, expected),
    }
}

fn room_field<'a>(raw: &RawEnvelope<'a>) -> Result<RoomRef<'a>, SignalError> {
    match quoted(raw.room).map(RoomRef::parse) {
        Some(Ok(room)) => Ok(room),
        _ => required(raw.room, "room", "a room id"),
    }
}

fn peer_field<'a>(raw: &RawEnvelope<'a>) -> Result<Option<PeerRef<'a>>, SignalError> {
    match quoted(raw.to).map(PeerRef::parse) {
        Some(Ok(peer)) => Ok(Some(peer)),
        _ => field(raw.to, "to", "a peer id"),
    }
}

/// Parses and validates one client message (the text of one WebSocket frame or one posted item)
/// against `limits`.
///
/// Checks, in order: frame size, JSON syntax, `id`, `type`, `seq`, `ts`, then the type's fields and
/// payload limits. On failure the [`Rejected`] carries as much of the header as was valid.
pub fn parse_client_message<'a>(
    text: &'a str,
    limits: &Limits,
) -> Result<ParsedMessage<'a>, Box<Rejected>> {
    let reject = |error, header: Option<MessageHeader>, id, type_name| {
        Box::new(Rejected {
            error,
            header,
            id,
            type_name,
        })
    };
    if text.len() > limits.max_frame_bytes {
        let error = SignalError::PayloadTooLarge {
            what: "frame",
            size: text.len(),
            limit: limits.max_frame_bytes,
        };
        return Err(reject(error, None, None, None));
    }
    let raw = match RawEnvelope::read(text) {
        Ok(raw) => raw,
        Err(e) => {
            let error = SignalError::invalid(format!("not a JSON message object: {e}"));
            return Err(reject(error, None, None, None));
        }
    };
    let id = match read_id(&raw, limits) {
        Ok(id) => id,
        Err(error) => return Err(reject(error, None, None, None)),
    };
    let type_name = match text_field(raw.kind, "type") {
        Ok(t) => t,
        Err(error) => return Err(reject(error, None, id, None)),
    };
    let header = match read_header(&raw, id.clone()) {
        Ok(h) => h,
        Err(error) => return Err(reject(error, None, id, type_name.map(Cow::into_owned))),
    };
    let Some(type_name) = type_name else {
        let error = SignalError::invalid("`type` is required");
        return Err(reject(error, Some(header), id, None));
    };
    match read_message(&type_name, &raw, limits) {
        Ok(message) => Ok(ParsedMessage { header, message }),
        Err(error) => Err(reject(
            error,
            Some(header),
            id,
            Some(type_name.into_owned()),
        )),
    }
}

impl From<Box<Rejected>> for SignalError {
    fn from(r: Box<Rejected>) -> Self {
        r.error
    }
}

fn read_id(raw: &RawEnvelope, limits: &Limits) -> Result<Option<Arc<str>>, SignalError> {
    let id = text_field(raw.id, "id")?;
    match id {
        Some(id) if id.len() > limits.max_token_bytes => Err(SignalError::PayloadTooLarge {
            what: "id",
            size: id.len(),
            limit: limits.max_token_bytes,
        }),
        other => Ok(other.as_deref().map(Arc::from)),
    }
}

fn read_header(raw: &RawEnvelope, id: Option<Arc<str>>) -> Result<MessageHeader, SignalError> {
    let seq = required_u64(raw.seq, raw.seq_value, "seq", "a positive integer")?;
    if seq == 0 {
        return Err(SignalError::invalid("`seq` must be at least 1"));
    }
    let ts = required_u64(raw.ts, raw.ts_value, "ts", "Unix time in milliseconds")?;
    let claimed_from: Option<String> = field(raw.from, "from", "a string")?;
    Ok(MessageHeader {
        seq,
        ts,
        id,
        claimed_from,
    })
}

#[derive(Deserialize)]
struct JoinPayload<'a> {
    #[serde(borrow)]
    peer: Option<PeerRef<'a>>,
    #[serde(borrow)]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SdpPayload<'a> {
    #[serde(borrow)]
    sdp: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
#[allow(dead_code)] // fields are read only for their type checks
struct CandidatePayload<'a> {
    #[serde(borrow)]
    candidate: std::borrow::Cow<'a, str>,
    sdp_mid: Option<std::borrow::Cow<'a, str>>,
    sdp_m_line_index: Option<u16>,
    username_fragment: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CallPayload<'a> {
    #[serde(borrow)]
    call_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ModePayload {
    mode: Mode,
}

#[derive(Deserialize)]
struct SetMediaPayload {
    media: MediaMode,
}

#[derive(Deserialize)]
struct KickPayload<'a> {
    #[serde(borrow)]
    peer: PeerRef<'a>,
}

#[derive(Deserialize)]
struct DecisionPayload<'a> {
    #[serde(borrow)]
    ticket: PeerRef<'a>,
}

#[derive(Deserialize)]
struct SubscribePayload<'a> {
    #[serde(borrow)]
    tracks: Vec<Cow<'a, str>>,
    subscribe: bool,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
    #[serde(default)]
    paused: bool,
}

#[derive(Deserialize)]
struct MutePayload<'a> {
    #[serde(borrow)]
    track: Cow<'a, str>,
    muted: bool,
}

#[derive(Deserialize)]
struct AckPayload {
    seq: u64,
}

fn payload<'a, T: Deserialize<'a>>(raw: &'a str, type_name: &str) -> Result<T, SignalError> {
    serde_json::from_str(raw)
        .map_err(|e| SignalError::invalid(format!("invalid `{type_name}` payload: {e}")))
}

fn required_payload<'a>(raw: &RawEnvelope<'a>, type_name: &str) -> Result<&'a str, SignalError> {
    match raw.payload {
        Some(p) if p.starts_with('{') => Ok(p),
        Some(_) => Err(SignalError::invalid(format!(
            "`{type_name}` payload must be a JSON object"
        ))),
        None => Err(SignalError::invalid(format!(
            "`{type_name}` needs a payload"
        ))),
    }
}

fn limit(what: &'static str, size: usize, limit: usize) -> Result<(), SignalError> {
    if size > limit {
        return Err(SignalError::PayloadTooLarge { what, size, limit });
    }
    Ok(())
}

fn read_message<'a>(
    type_name: &str,
    raw: &RawEnvelope<'a>,
    limits: &Limits,
) -> Result<ClientMessage<'a>, SignalError> {
    let room = || room_field(raw);
    let to = || -> Result<PeerRef<'a>, SignalError> {
        peer_field(raw)?.ok_or_else(|| SignalError::invalid("`to` is required"))
    };
    let message = match type_name {
        "join" => {
            let room = room()?;
            let (peer, meta) = match raw.payload {
                None => (None, None),
                Some(_) => {
                    let p: JoinPayload = payload(required_payload(raw, type_name)?, type_name)?;
                    let meta = match p.meta {
                        Some(m) if m.get() == "null" => None,
                        Some(m) if !m.get().starts_with('{') => {
                            return Err(SignalError::invalid("`meta` must be a JSON object"));
                        }
                        Some(m) => {
                            limit("meta", m.get().len(), limits.max_meta_bytes)?;
                            Some(m)
                        }
                        None => None,
                    };
                    (p.peer, meta)
                }
            };
            ClientMessage::Join { room, peer, meta }
        }
        "leave" => ClientMessage::Leave { room: room()? },
        "offer" | "answer" => {
            let (room, to) = (room()?, to()?);
            let p = required_payload(raw, type_name)?;
            let sdp: SdpPayload = payload(p, type_name)?;
            limit("sdp", sdp.sdp.len(), limits.max_sdp_bytes)?;
            if sdp.sdp.is_empty() {
                return Err(SignalError::invalid("`sdp` must not be empty"));
            }
            let kind = if type_name == "offer" {
                SignalKind::Offer
            } else {
                SignalKind::Answer
            };
            ClientMessage::Signal {
                kind,
                room,
                to,
                payload: p,
            }
        }
        "candidate" => {
            let (room, to) = (room()?, to()?);
            let p = required_payload(raw, type_name)?;
            let c: CandidatePayload = payload(p, type_name)?;
            limit("candidate", c.candidate.len(), limits.max_candidate_bytes)?;
            for s in [&c.sdp_mid, &c.username_fragment].into_iter().flatten() {
                limit("candidate field", s.len(), limits.max_token_bytes)?;
            }
            ClientMessage::Signal {
                kind: SignalKind::Candidate,
                room,
                to,
                payload: p,
            }
        }
        "call_start" | "call_end" => {
            let (room, to) = (room()?, to()?);
            let p = required_payload(raw, type_name)?;
            let call: CallPayload = payload(p, type_name)?;
            if call.call_id.is_empty() {
                return Err(SignalError::invalid("`call_id` must not be empty"));
            }
            limit("call_id", call.call_id.len(), limits.max_token_bytes)?;
            if let Some(reason) = &call.reason {
                limit("reason", reason.len(), limits.max_token_bytes)?;
            }
            let kind = if type_name == "call_start" {
                SignalKind::CallStart
            } else {
                SignalKind::CallEnd
            };
            ClientMessage::Signal {
                kind,
                room,
                to,
                payload: p,
            }
        }
        "message" => {
            let room = room()?;
            let to = peer_field(raw)?;
            let p = required_payload(raw, type_name)?;
            limit("message payload", p.len(), limits.max_message_bytes)?;
            ClientMessage::Message {
                room,
                to,
                payload: p,
            }
        }
        "mode" => {
            let room = room()?;
            let p: ModePayload = payload(required_payload(raw, type_name)?, type_name)?;
            ClientMessage::Mode { room, mode: p.mode }
        }
        "set_media" => {
            let room = room()?;
            let p: SetMediaPayload = payload(required_payload(raw, type_name)?, type_name)?;
            ClientMessage::SetMedia {
                room,
                media: p.media,
            }
        }
        "kick" => {
            let room = room()?;
            let p: KickPayload = payload(required_payload(raw, type_name)?, type_name)?;
            ClientMessage::Kick { room, peer: p.peer }
        }
        "knock" => ClientMessage::Knock { room: room()? },
        "admit" | "deny" => {
            let room = room()?;
            let p: DecisionPayload = payload(required_payload(raw, type_name)?, type_name)?;
            ClientMessage::Decide {
                room,
                ticket: p.ticket,
                admit: type_name == "admit",
            }
        }
        "subscribe" => {
            let room = room()?;
            let p: SubscribePayload = payload(required_payload(raw, type_name)?, type_name)?;
            if p.tracks.len() > MAX_SUBSCRIBE_TRACKS {
                return Err(SignalError::PayloadTooLarge {
                    what: "tracks",
                    size: p.tracks.len(),
                    limit: MAX_SUBSCRIBE_TRACKS,
                });
            }
            for track in &p.tracks {
                limit("track", track.len(), limits.max_token_bytes)?;
            }
            let view = match (p.paused, p.width, p.height) {
                (true, None, None) => Some(View::Paused),
                (false, Some(width), Some(height)) => Some(View::Visible { width, height }),
                (false, None, None) => None,
                _ => {
                    return Err(SignalError::invalid(
                        "subscribe takes `width` and `height` together, or `paused`, or neither",
                    ));
                }
            };
            ClientMessage::Subscribe {
                room,
                tracks: p.tracks,
                subscribe: p.subscribe,
                view,
            }
        }
        "mute" => {
            let room = room()?;
            let p: MutePayload = payload(required_payload(raw, type_name)?, type_name)?;
            limit("track", p.track.len(), limits.max_token_bytes)?;
            ClientMessage::Mute {
                room,
                track: p.track,
                muted: p.muted,
            }
        }
        "ping" => ClientMessage::Ping,
        "ack" => {
            let p: AckPayload = payload(required_payload(raw, type_name)?, type_name)?;
            ClientMessage::Ack { seq: p.seq }
        }
        other => {
            let mut shown = other.to_owned();
            shown.truncate(limits.max_token_bytes);
            return Err(SignalError::UnknownType(shown));
        }
    };
    Ok(message)
}

/// The messages of a batch posted over HTTP (a JSON array of client messages), each as its JSON
/// text for [`parse_client_message`]; serde's error when `text` is not a JSON array. The usual array
/// of objects is split without serde.
pub fn split_batch(text: &str) -> Result<Vec<&str>, serde_json::Error> {
    if let Some(items) = crate::json::object_items(text) {
        return Ok(items);
    }
    let items: Vec<&RawValue> = serde_json::from_str(text)?;
    Ok(items.into_iter().map(RawValue::get).collect())
}

/// A client message as a client writes it: what the CLI client, tests and load generator send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientEnvelope {
    /// Message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Room, for room messages.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room: Option<String>,
    /// Client sequence number.
    pub seq: u64,
    /// Client clock, Unix ms.
    pub ts: u64,
    /// Recipient peer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub to: Option<String>,
    /// Correlation id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// Type-specific payload.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payload: Option<serde_json::Value>,
}

impl ClientEnvelope {
    /// A message of `kind` with no room, target or payload yet.
    pub fn new(kind: &str, seq: u64, ts: u64) -> Self {
        ClientEnvelope {
            kind: kind.to_owned(),
            room: None,
            seq,
            ts,
            to: None,
            id: None,
            payload: None,
        }
    }

    /// Sets `room`.
    pub fn room(mut self, room: &str) -> Self {
        self.room = Some(room.to_owned());
        self
    }

    /// Sets `to`.
    pub fn to(mut self, peer: &str) -> Self {
        self.to = Some(peer.to_owned());
        self
    }

    /// Sets `id`.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Sets `payload`.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings, integers and a `Value` cannot fail.
        serde_json::to_string(self).expect("envelope serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ParsedMessage<'static>, Box<Rejected>> {
        // A frame borrows its text; a test's few frames can live as long as the test process.
        parse_client_message(v.to_string().leak(), &Limits::default())
    }

    fn code(v: serde_json::Value) -> ErrorCode {
        parse(v).unwrap_err().error.code()
    }

    #[test]
    fn a_subscribes_view_is_a_size_or_paused() {
        let subscribe = |extra: serde_json::Value| {
            let mut payload = json!({"tracks": ["t1"], "subscribe": true});
            payload
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({"type": "subscribe", "room": "r1", "seq": 1, "ts": 5, "payload": payload})
        };
        let view = |extra| match parse(subscribe(extra)).unwrap().message {
            ClientMessage::Subscribe { view, .. } => view,
            other => panic!("{other:?}"),
        };
        assert_eq!(view(json!({})), None);
        assert_eq!(view(json!({"paused": true})), Some(View::Paused));
        assert_eq!(
            view(json!({"width": 640, "height": 360})),
            Some(View::Visible {
                width: 640,
                height: 360
            })
        );
        for bad in [
            json!({"width": 640}),
            json!({"paused": true, "width": 1, "height": 1}),
            json!({"width": -1, "height": 1}),
        ] {
            assert_eq!(code(subscribe(bad)), ErrorCode::InvalidMessage);
        }
    }

    #[test]
    fn parses_every_client_type() {
        let base = |t: &str| json!({"type": t, "room": "r1", "seq": 1, "ts": 5, "to": "p2"});
        let cases = [
            ("join", json!({"peer": "me", "meta": {"name": "A"}})),
            ("leave", json!(null)),
            ("offer", json!({"sdp": "v=0"})),
            ("answer", json!({"sdp": "v=0"})),
            (
                "candidate",
                json!({"candidate": "", "sdp_mid": "0", "sdp_m_line_index": 0}),
            ),
            ("call_start", json!({"call_id": "c1"})),
            ("call_end", json!({"call_id": "c1", "reason": "hangup"})),
            ("message", json!({"text": "hi"})),
            ("mode", json!({"mode": "host_only"})),
            ("set_media", json!({"media": "auto"})),
            ("kick", json!({"peer": "p2"})),
            ("subscribe", json!({"tracks": ["t1"], "subscribe": true})),
            (
                "subscribe",
                json!({"tracks": ["t1"], "subscribe": true, "width": 320, "height": 180}),
            ),
            (
                "subscribe",
                json!({"tracks": ["t1"], "subscribe": true, "paused": true}),
            ),
            ("mute", json!({"track": "t1", "muted": true})),
            ("ping", json!(null)),
            ("ack", json!({"seq": 3})),
        ];
        for (t, p) in cases {
            let mut v = base(t);
            if !p.is_null() {
                v["payload"] = p;
            }
            let frame = parse(v).unwrap_or_else(|e| panic!("{t}: {:?}", e.error));
            assert_eq!(frame.message.type_name(), t);
            assert_eq!(frame.header.seq, 1);
        }
    }

    #[test]
    fn relayed_payload_is_kept_verbatim() {
        let text = r#"{"type":"offer","room":"r","seq":1,"ts":1,"to":"b","payload":{"sdp":"v=0\r\n","x":[1, 2]}}"#;
        let frame = parse_client_message(text, &Limits::default()).unwrap();
        let ClientMessage::Signal { payload, .. } = frame.message else {
            panic!()
        };
        assert_eq!(payload, r#"{"sdp":"v=0\r\n","x":[1, 2]}"#);
    }

    #[test]
    fn rejects_with_documented_codes() {
        assert_eq!(
            parse_client_message("nope", &Limits::default())
                .unwrap_err()
                .error
                .code(),
            ErrorCode::InvalidMessage
        );
        assert_eq!(code(json!([1])), ErrorCode::InvalidMessage);
        assert_eq!(
            code(json!({"type": "zap", "seq": 1, "ts": 1})),
            ErrorCode::UnknownType
        );
        assert_eq!(
            code(json!({"type": "ping", "ts": 1})),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(json!({"type": "ping", "seq": 0, "ts": 1})),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(json!({"type": "ping", "seq": -1, "ts": 1})),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(json!({"type": "ping", "seq": 1})),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(json!({"type": 5, "seq": 1, "ts": 1})),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(json!({"type": "join", "room": "bad room", "seq": 1, "ts": 1})),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(json!({"type": "offer", "room": "r", "seq": 1, "ts": 1, "payload": {"sdp": "x"}})),
            ErrorCode::InvalidMessage,
            "offer without to"
        );
        assert_eq!(
            code(
                json!({"type": "offer", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"sdp": 5}})
            ),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(json!({"type": "message", "room": "r", "seq": 1, "ts": 1, "payload": "str"})),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(
                json!({"type": "mode", "room": "r", "seq": 1, "ts": 1, "payload": {"mode": "anarchy"}})
            ),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(
                json!({"type": "set_media", "room": "r", "seq": 1, "ts": 1, "payload": {"media": "p2p"}})
            ),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn auto_goes_through_the_sfu_from_three_members_when_there_is_one() {
        let media = |mode: MediaMode, members, sfu| mode.media(members, sfu);
        assert_eq!(media(MediaMode::Auto, 2, true), Media::Mesh);
        assert_eq!(media(MediaMode::Auto, 3, true), Media::Sfu);
        assert_eq!(media(MediaMode::Auto, 30, false), Media::Mesh);
        assert_eq!(media(MediaMode::Mesh, 30, true), Media::Mesh);
        assert_eq!(media(MediaMode::Sfu, 1, true), Media::Sfu);
    }

    #[test]
    fn enforces_every_size_limit() {
        let l = Limits::default();
        let big = |n| "x".repeat(n);
        let too_large = |v: serde_json::Value| {
            let e = parse(v).unwrap_err().error;
            assert_eq!(e.code(), ErrorCode::PayloadTooLarge, "{e}");
        };
        too_large(
            json!({"type": "offer", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"sdp": big(l.max_sdp_bytes + 1)}}),
        );
        too_large(
            json!({"type": "candidate", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"candidate": big(l.max_candidate_bytes + 1)}}),
        );
        too_large(
            json!({"type": "join", "room": "r", "seq": 1, "ts": 1, "payload": {"meta": {"m": big(l.max_meta_bytes)}}}),
        );
        too_large(
            json!({"type": "message", "room": "r", "seq": 1, "ts": 1, "payload": {"m": big(l.max_message_bytes)}}),
        );
        too_large(json!({"type": "ping", "seq": 1, "ts": 1, "id": big(l.max_token_bytes + 1)}));
        too_large(
            json!({"type": "call_start", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"call_id": big(l.max_token_bytes + 1)}}),
        );
        let frame = format!(
            r#"{{"type":"ping","seq":1,"ts":1,"pad":"{}"}}"#,
            big(l.max_frame_bytes)
        );
        assert_eq!(
            parse_client_message(&frame, &l).unwrap_err().error.code(),
            ErrorCode::PayloadTooLarge
        );
        // Exactly at the limit is accepted.
        assert!(parse(json!({"type": "offer", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"sdp": big(l.max_sdp_bytes)}})).is_ok());
    }

    #[test]
    fn rejection_keeps_header_and_id_when_readable() {
        let r = parse(json!({"type": "offer", "room": "r", "seq": 9, "ts": 1, "id": "c-1"}))
            .unwrap_err();
        assert_eq!(r.id.as_deref(), Some("c-1"));
        assert_eq!(r.header.as_ref().map(|h| h.seq), Some(9));
        assert_eq!(r.type_name.as_deref(), Some("offer"));
        let r = parse(json!({"type": "ping", "seq": "x", "ts": 1, "id": "c-2"})).unwrap_err();
        assert_eq!(r.id.as_deref(), Some("c-2"));
        assert!(r.header.is_none());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let text = r#"{"type":"ping","seq":1,"seq":2,"ts":1}"#;
        assert_eq!(
            parse_client_message(text, &Limits::default())
                .unwrap_err()
                .error
                .code(),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn client_envelope_round_trips_through_the_parser() {
        let env = ClientEnvelope::new("message", 4, 10)
            .room("r")
            .to("p")
            .id("x")
            .payload(json!({"text": "hello"}));
        let text = env.to_json();
        let frame = parse_client_message(&text, &Limits::default()).unwrap();
        assert_eq!(frame.header.seq, 4);
        assert_eq!(frame.header.id.as_deref(), Some("x"));
        assert!(matches!(
            frame.message,
            ClientMessage::Message { to: Some(_), .. }
        ));
    }

    /// What serde alone makes of an envelope field: the reference for the fast paths.
    fn serde_reading<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
        serde_json::from_str(raw).ok()
    }

    #[test]
    fn frames_as_sdks_write_them_are_split_without_serde() {
        for text in [
            r#"{"type":"message","room":"r-1","seq":12,"ts":1763700000000,"to":"p2","payload":{"text":"hi"}}"#,
            r#"{"type":"ack","seq":13,"ts":1763700000000,"payload":{"seq":40}}"#,
            r#"{"type":"candidate","room":"r","seq":3,"ts":1,"to":"b","id":"c-1","payload":{"candidate":"","sdp_mid":null}}"#,
            r#"{"type":"ping","seq":1,"ts":1,"from":"a"}"#,
            "{}",
        ] {
            let split = split_envelope(text).unwrap_or_else(|| panic!("{text}"));
            let serde: SerdeEnvelope = serde_json::from_str(text).unwrap();
            assert_eq!(split.seq, serde.seq.map(RawValue::get), "{text}");
            assert_eq!(split.payload, serde.payload.map(RawValue::get));
        }
        // `seq` and `ts` are valued as they are split, when enough of the frame follows them.
        let split = split_envelope(r#"{"type":"ack","seq":13,"ts":1763700000000,"payload":{}}"#);
        let split = split.unwrap();
        assert_eq!(
            (split.seq_value, split.ts_value),
            (Some(13), Some(1763700000000))
        );
    }

    /// Every field's text, to compare two readings of one frame.
    fn fields<'a>(raw: &RawEnvelope<'a>) -> [Option<&'a str>; 8] {
        [
            raw.kind,
            raw.room,
            raw.seq,
            raw.ts,
            raw.to,
            raw.from,
            raw.id,
            raw.payload,
        ]
    }

    /// One `"key":value` member, from pieces that are common, unusual or invalid JSON.
    fn member() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("type"),
            Just("room"),
            Just("seq"),
            Just("ts"),
            Just("to"),
            Just("from"),
            Just("id"),
            Just("payload"),
            Just("pad"),
            Just("s\\u0065q"),
            Just("ty pe"),
        ];
        let value = prop_oneof![
            "\"[a-z0-9 .:_-]{0,6}\"",
            "\"[a-z\\\\\"\\t\\u{1}é]{0,4}\"",
            "-?(0|[1-9][0-9]{0,20}|0[0-9])(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
            Just("true".to_owned()),
            Just("nul".to_owned()),
            Just("null".to_owned()),
            "\\{(\"[a-z]\":[0-9\\[\\]{}\" ]{0,4})?\\}",
            "\\[[0-9,\\]]{0,4}",
            Just("1x".to_owned()),
        ];
        (key, value, prop_oneof![Just(""), Just(" "), Just("\n")])
            .prop_map(|(k, v, ws)| format!("\"{k}\"{ws}:{v}"))
    }

    proptest::proptest! {
        /// The envelope split without serde is exactly serde's reading, whenever it gives one.
        #[test]
        fn envelope_split_agrees_with_serde(
            members in proptest::collection::vec(member(), 0..6),
            separator in proptest::prelude::prop_oneof![
                proptest::prelude::Just(","),
                proptest::prelude::Just(", "),
                proptest::prelude::Just(",,"),
            ],
            tail in proptest::prelude::prop_oneof![
                proptest::prelude::Just(""),
                proptest::prelude::Just(" "),
                proptest::prelude::Just(","),
                proptest::prelude::Just("}"),
            ],
        ) {
            let text = format!("{{{}{tail}}}", members.join(separator));
            if let Some(split) = split_envelope(&text) {
                let serde: SerdeEnvelope = serde_json::from_str(&text)
                    .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
                let expected = RawEnvelope {
                    kind: serde.kind.map(RawValue::get),
                    room: serde.room.map(RawValue::get),
                    seq: serde.seq.map(RawValue::get),
                    ts: serde.ts.map(RawValue::get),
                    to: serde.to.map(RawValue::get),
                    from: serde.from.map(RawValue::get),
                    id: serde.id.map(RawValue::get),
                    payload: serde.payload.map(RawValue::get),
                    seq_value: None,
                    ts_value: None,
                };
                proptest::prop_assert_eq!(fields(&split), fields(&expected), "{}", text);
                // An integer's value, when the split read it, is serde's reading of its text.
                for (value, text) in [(split.seq_value, split.seq), (split.ts_value, split.ts)] {
                    if let Some(value) = value {
                        proptest::prop_assert_eq!(Some(value), text.and_then(serde_reading));
                    }
                }
            }
        }

        /// Fields read without serde are accepted and refused exactly as serde reads them, however
        /// they are written (escapes, leading zeros, exponents, signs, overflow).
        #[test]
        fn fast_field_reads_agree_with_serde(
            room in "[A-Za-z0-9_.:* -]{0,3}|.{0,3}",
            escape_room in proptest::prelude::any::<bool>(),
            seq in "-?0{0,2}[0-9]{0,21}(\\.[0-9])?(e[0-9])?",
        ) {
            let room_json = if escape_room {
                room.encode_utf16().map(|u| format!("\\u{u:04x}")).collect::<String>()
            } else {
                let quoted = serde_json::to_string(&room).unwrap();
                quoted[1..quoted.len() - 1].to_owned()
            };
            let text = format!(
                r#"{{"type":"leave","room":"{room_json}","seq":{seq},"ts":{seq},"id":"{room_json}"}}"#
            );
            let parsed = parse_client_message(&text, &Limits::default());
            let serde_seq: Option<u64> = serde_reading(&seq);
            let valid_room = crate::RoomId::parse(&room).is_ok();
            match (serde_seq, &parsed) {
                (Some(n), Ok(frame)) => {
                    proptest::prop_assert!(n > 0 && valid_room);
                    proptest::prop_assert_eq!(frame.header.seq, n);
                    proptest::prop_assert_eq!(frame.header.ts, n);
                    proptest::prop_assert_eq!(frame.header.id.as_deref(), Some(room.as_str()));
                    proptest::prop_assert_eq!(frame.message.room().map(|r| r.as_str()), Some(room.as_str()));
                }
                (Some(n), Err(r)) => {
                    proptest::prop_assert!(n == 0 || !valid_room, "{:?}", r.error);
                    proptest::prop_assert_eq!(r.header.is_some(), n > 0);
                }
                (None, parsed) => proptest::prop_assert!(parsed.is_err()),
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,300}") {
            let _ = parse_client_message(&s, &Limits::default());
        }

        #[test]
        fn arbitrary_envelope_fields_never_panic(
            t in "(join|leave|offer|answer|candidate|message|mode|kick|ping|ack|zz)",
            seq in proptest::prelude::any::<i64>(),
            payload in proptest::prelude::prop_oneof![
                proptest::prelude::Just(json!(null)),
                proptest::prelude::Just(json!({})),
                proptest::prelude::Just(json!({"sdp": 1, "candidate": [], "mode": "x", "peer": 3})),
                proptest::prelude::Just(json!([{"seq": "a"}])),
            ],
        ) {
            let v = json!({"type": t, "seq": seq, "ts": 1, "room": "r", "to": "p", "payload": payload});
            let _ = parse(v);
        }
    }
}

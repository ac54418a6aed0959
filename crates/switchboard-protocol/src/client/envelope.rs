//! Reading the envelope: a frame's fields as their JSON text, and the scalar fields as values.
//!
//! The common way SDKs write a frame is split by hand, without serde's generic machinery; anything
//! else goes to serde, so what is accepted, and how a refusal is worded, stays serde's. Kept apart
//! from the per-type payloads because it is the hot path every message takes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    PeerRef, RoomRef, SignalError,
    json::{container_end, digits_value, plain_integer, plain_string_end, scalar_len},
};

/// The envelope's fields, each as its JSON text.
#[derive(Default)]
pub(super) struct RawEnvelope<'a> {
    pub(super) kind: Option<&'a str>,
    pub(super) room: Option<&'a str>,
    pub(super) seq: Option<&'a str>,
    pub(super) ts: Option<&'a str>,
    pub(super) to: Option<&'a str>,
    pub(super) from: Option<&'a str>,
    pub(super) id: Option<&'a str>,
    pub(super) payload: Option<&'a str>,
    /// The values of `seq` and `ts` when [`split_envelope`] read them as plain integers, so they
    /// are not read twice.
    pub(super) seq_value: Option<u64>,
    pub(super) ts_value: Option<u64>,
}

impl<'a> RawEnvelope<'a> {
    /// Splits `text` into its fields, refusing what serde refuses.
    pub(super) fn read(text: &'a str) -> Result<Self, serde_json::Error> {
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
pub(super) fn split_envelope(text: &str) -> Option<RawEnvelope<'_>> {
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
pub(super) struct SerdeEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) room: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) seq: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) ts: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) to: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) from: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) payload: Option<&'a RawValue>,
}

pub(super) fn field<'a, T: Deserialize<'a>>(
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

pub(super) fn text_field<'a>(
    raw: Option<&'a str>,
    name: &str,
) -> Result<Option<Cow<'a, str>>, SignalError> {
    match plain_str(raw) {
        Some(s) => Ok(Some(Cow::Borrowed(s))),
        None => field(raw, name, "a string"),
    }
}

pub(super) fn required_u64(
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

pub(super) fn room_field<'a>(raw: &RawEnvelope<'a>) -> Result<RoomRef<'a>, SignalError> {
    match quoted(raw.room).map(RoomRef::parse) {
        Some(Ok(room)) => Ok(room),
        _ => required(raw.room, "room", "a room id"),
    }
}

pub(super) fn peer_field<'a>(raw: &RawEnvelope<'a>) -> Result<Option<PeerRef<'a>>, SignalError> {
    match quoted(raw.to).map(PeerRef::parse) {
        Some(Ok(peer)) => Ok(Some(peer)),
        _ => field(raw.to, "to", "a peer id"),
    }
}

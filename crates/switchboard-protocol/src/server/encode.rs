//! The one encoder: an [`Envelope`] written by hand, byte for byte as serde_json writes it, and
//! [`renumber`] for a resume.
//!
//! This runs once per recipient of every relayed message, so it is kept apart from the types and
//! measured (docs/benchmarks.md); a test in `tests` compares it with serde's output.

use super::message::ServerBody;
use crate::IdText;

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

//! The entry points: one frame into a [`ParsedMessage`] or a [`Rejected`], and a posted batch
//! into its frames.
//!
//! This is where the checks are ordered (size, syntax, `id`, `type`, header, body) and where a
//! failure keeps as much of the header as was valid, so the core can still answer it.

use std::{borrow::Cow, sync::Arc};

use serde_json::value::RawValue;

use super::{
    envelope::{RawEnvelope, field, required_u64, text_field},
    message::{MessageHeader, ParsedMessage, Rejected},
    payload::read_message,
};
use crate::{Limits, SignalError};

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

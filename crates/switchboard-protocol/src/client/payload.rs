//! Per-type validation: each message type's payload shape and size limits, and the
//! [`ClientMessage`] built from them.
//!
//! Relayed payloads are checked against their typed shape here and then kept as the sender's raw
//! JSON, so the recipient gets exactly what was sent.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    envelope::{RawEnvelope, peer_field, room_field},
    message::{ClientMessage, MAX_SUBSCRIBE_TRACKS, MediaMode, Mode, SignalKind, View},
};
use crate::{Limits, PeerRef, SignalError};

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

pub(super) fn read_message<'a>(
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

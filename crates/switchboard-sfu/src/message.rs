//! What peers send the SFU and what it sends them, as values; and the SFU's outputs.
//!
//! The wire shapes (the `payload` of each message) are in docs/protocol.md, "SFU rooms"; the
//! server wraps them in the envelope with `from: "sfu"`.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;
use str0m::net::Transmit;

use crate::{SfuError, TrackId};

/// A message from a peer to the SFU, already taken out of its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// The peer's SDP offer: its published tracks and its answer to every m-line the SFU added.
    Offer {
        /// The SDP text.
        sdp: String,
        /// The stream tag the peer gives each m-line it sends (`camera`, `screen`), by mid:
        /// announced with the track so subscribers can tell a screen share from a camera.
        tags: BTreeMap<String, String>,
    },
    /// The peer's answer to the SFU's last offer.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate (`candidate:...`); empty ends the candidates.
    Candidate {
        /// The candidate line.
        candidate: String,
    },
    /// Start or stop receiving these tracks. Every track is subscribed to by default.
    Subscribe {
        /// The tracks.
        tracks: Vec<TrackId>,
        /// `true` to receive them, `false` to stop.
        subscribe: bool,
        /// How the peer shows them (video): the size picks the simulcast layer, paused
        /// sends nothing. `None` leaves it as it was (at first: 720p).
        view: Option<crate::allocator::Request>,
    },
    /// Mute or unmute a track: the sender's own, or, for a host, mute another member's.
    Mute {
        /// The track.
        track: TrackId,
        /// `true` to mute.
        muted: bool,
        /// The sender is a host of the room: the hub knows roles, the SFU knows owners.
        host: bool,
    },
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// An audio track.
    Audio,
    /// A video track.
    Video,
}

/// A published track, as announced to the room (`track_published`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInfo {
    /// Who publishes it.
    pub peer: Arc<str>,
    /// Its id in the room.
    pub track: TrackId,
    /// Audio or video.
    pub kind: TrackKind,
    /// Muted: the SFU forwards nothing of it until it is unmuted.
    pub muted: bool,
    /// The stream tag its publisher gave it in its offer (`camera`, `screen`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<Arc<str>>,
    /// The m-line that carries it in the publisher's own session: set only in the copy the
    /// publisher gets, which is how it learns its tracks' ids (for `mute`, `layers`,
    /// `track_state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// Whether a subscriber receives a simulcast track (`stream_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// A layer is sent.
    Active,
    /// The subscriber paused it.
    Paused,
    /// Its lowest layer does not fit the subscriber's downlink.
    PausedForBandwidth,
}

/// Which (peer, track) one of the SFU's m-lines carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackMapEntry {
    /// The m-line's mid in the subscriber's session.
    pub mid: String,
    /// The publisher.
    pub peer: Arc<str>,
    /// The track.
    pub track: TrackId,
    /// Audio or video.
    pub kind: TrackKind,
}

/// A message from the SFU to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToPeer {
    /// An offer adding or stopping the m-lines that carry other peers' tracks. A
    /// [`ToPeer::TrackMap`] precedes it.
    Offer {
        /// The SDP text.
        sdp: String,
    },
    /// The answer to the peer's offer.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// Which (peer, track) each of the SFU's m-lines carries, sent before each offer.
    TrackMap {
        /// Every open or opening m-line the SFU sends on.
        mids: Vec<TrackMapEntry>,
    },
    /// A track was published in the room (also sent for every existing track on joining).
    TrackPublished(TrackInfo),
    /// A track is gone: its publisher stopped it or left.
    TrackUnpublished {
        /// The publisher.
        peer: Arc<str>,
        /// The track.
        track: TrackId,
    },
    /// A track was muted or unmuted; sent to every member, its publisher included.
    TrackState {
        /// The publisher.
        peer: Arc<str>,
        /// The track.
        track: TrackId,
        /// Muted now.
        muted: bool,
        /// Who muted or unmuted it: the publisher, or a host.
        by: Arc<str>,
    },
    /// What the SFU now sends this peer of a simulcast track; sent when it changes.
    StreamState {
        /// The publisher.
        peer: Arc<str>,
        /// The track.
        track: TrackId,
        /// Sent, paused as asked, or paused because the downlink does not carry it.
        state: StreamState,
        /// The layer's rid when active (the picture changes at its next keyframe).
        layer: Option<String>,
    },
    /// To a publisher: which layers of its simulcast track someone receives, sent when that
    /// changes; it may stop encoding the paused ones until they are active again.
    Layers {
        /// The track.
        track: TrackId,
        /// Rids someone receives or is switching to.
        active: Vec<String>,
        /// Rids nobody receives.
        paused: Vec<String>,
    },
    /// Who is speaking in the room now, loudest first; sent to every member when it changes,
    /// at most once per speaker interval.
    Speakers {
        /// The speaking peers.
        peers: Vec<Arc<str>>,
    },
    /// A refused message or a dropped media connection.
    Error(SfuError),
}

#[derive(Serialize)]
struct Sdp<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    sdp: &'a str,
}

#[derive(Serialize)]
struct Mids<'a> {
    mids: &'a [TrackMapEntry],
}

#[derive(Serialize)]
struct State<'a> {
    peer: &'a str,
    track: &'a TrackId,
    muted: bool,
    by: &'a str,
}

#[derive(Serialize)]
struct Stream<'a> {
    peer: &'a str,
    track: &'a TrackId,
    state: StreamState,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<&'a str>,
}

#[derive(Serialize)]
struct LayerUse<'a> {
    track: &'a TrackId,
    active: &'a [String],
    paused: &'a [String],
}

#[derive(Serialize)]
struct Peers<'a> {
    peers: &'a [Arc<str>],
}

#[derive(Serialize)]
struct Unpublished<'a> {
    peer: &'a str,
    track: &'a TrackId,
}

impl ToPeer {
    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ToPeer::Offer { .. } => "offer",
            ToPeer::Answer { .. } => "answer",
            ToPeer::TrackMap { .. } => "track_map",
            ToPeer::TrackPublished(_) => "track_published",
            ToPeer::TrackUnpublished { .. } => "track_unpublished",
            ToPeer::TrackState { .. } => "track_state",
            ToPeer::StreamState { .. } => "stream_state",
            ToPeer::Layers { .. } => "layers",
            ToPeer::Speakers { .. } => "speakers",
            ToPeer::Error(_) => "error",
        }
    }

    /// The wire `payload` (a JSON object). Errors are encoded by the server, which owns the
    /// `error` message's shape; this returns `None` for them.
    pub fn payload(&self) -> Option<String> {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no
        // failing `Serialize` impls.
        let json = match self {
            ToPeer::Offer { sdp } => serde_json::to_string(&Sdp { kind: "offer", sdp }),
            ToPeer::Answer { sdp } => serde_json::to_string(&Sdp {
                kind: "answer",
                sdp,
            }),
            ToPeer::TrackMap { mids } => serde_json::to_string(&Mids { mids }),
            ToPeer::TrackPublished(info) => serde_json::to_string(info),
            ToPeer::TrackUnpublished { peer, track } => {
                serde_json::to_string(&Unpublished { peer, track })
            }
            ToPeer::TrackState {
                peer,
                track,
                muted,
                by,
            } => serde_json::to_string(&State {
                peer,
                track,
                muted: *muted,
                by,
            }),
            ToPeer::StreamState {
                peer,
                track,
                state,
                layer,
            } => serde_json::to_string(&Stream {
                peer,
                track,
                state: *state,
                layer: layer.as_deref(),
            }),
            ToPeer::Layers {
                track,
                active,
                paused,
            } => serde_json::to_string(&LayerUse {
                track,
                active,
                paused,
            }),
            ToPeer::Speakers { peers } => serde_json::to_string(&Peers { peers }),
            ToPeer::Error(_) => return None,
        };
        Some(json.expect("plain structs serialize"))
    }
}

/// What the SFU wants done, drained with [`Sfu::poll_output`](crate::Sfu::poll_output).
#[derive(Debug)]
pub enum Output {
    /// Send this datagram from the socket of `transmit.source` to `transmit.destination`.
    Transmit(Transmit),
    /// Deliver this message to peer `to` in `room`, from the reserved peer `sfu`.
    Signal {
        /// The room.
        room: Arc<str>,
        /// The recipient.
        to: Arc<str>,
        /// The message.
        message: ToPeer,
    },
}

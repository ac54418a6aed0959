//! TrackId and a published track: its publisher, m-line, keyframe gates, mute state and rate.

use std::{fmt, sync::Arc};

use serde::Serialize;
use str0m::media::{Mid, Rid};

use crate::{TrackKind, arrivals::Arrivals, keyframe::KeyframeGates, rate::RateMeter, sfu::Pid};

/// A published track's id, unique within one SFU worker (`t1`, `t2`, ...): a track is named
/// without its m-line so a renegotiation on the publisher's side cannot rename it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(Arc<str>);

impl TrackId {
    pub(crate) fn new(n: u64) -> Self {
        TrackId(format!("t{n}").into())
    }

    pub(crate) fn text(&self) -> Arc<str> {
        self.0.clone()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A track id as a client names it; one the SFU never issued names no track (`unknown_track`).
impl From<&str> for TrackId {
    fn from(s: &str) -> Self {
        TrackId(s.into())
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TrackId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A track one participant publishes.
#[derive(Debug)]
pub(crate) struct Track {
    /// Its own id, for announcing it.
    pub id_text: Arc<str>,
    pub owner: Pid,
    pub peer: Arc<str>,
    pub room: Arc<str>,
    /// The m-line in the publisher's session that carries it.
    pub mid: Mid,
    pub kind: TrackKind,
    /// One keyframe gate per layer (one for a track without layers).
    pub keyframes: KeyframeGates,
    /// Muted by its publisher or a host: nothing of it is forwarded.
    pub muted: bool,
    /// Its simulcast layers' rids, lowest first; empty when it is sent as one stream.
    pub rids: Vec<Rid>,
    /// Which of those layers really arrive; `None` without layers.
    pub arrivals: Option<Arrivals>,
    /// Which layers its publisher was last told someone receives (`layers`).
    pub told_layers: Option<Vec<bool>>,
    /// What each layer takes, measured as it arrives (one for a track without layers): the
    /// allocator's cost of it.
    pub rates: Vec<RateMeter>,
    /// The stream tag its publisher gave its m-line (`camera`, `screen`), if any.
    pub tag: Option<Arc<str>>,
}

/// The rids browsers are told to use for simulcast, lowest layer first.
const RID_ORDER: [&str; 3] = ["q", "h", "f"];

/// The layers a publisher offered, lowest first: `q`, `h`, `f` in that order, any other rid
/// after them in the order offered; at most three are used.
pub(crate) fn order_rids(mut offered: Vec<Rid>) -> Vec<Rid> {
    offered.sort_by_key(|r| {
        RID_ORDER
            .iter()
            .position(|o| **o == **r)
            .unwrap_or(RID_ORDER.len())
    });
    offered.truncate(RID_ORDER.len());
    offered
}

impl Track {
    /// The layer a frame with `rid` belongs to; `None` for a frame of no layer this track has.
    pub fn layer_of(&self, rid: Option<Rid>) -> Option<usize> {
        self.rids.iter().position(|r| Some(*r) == rid)
    }

    /// How the track is announced.
    pub fn info(&self) -> crate::TrackInfo {
        crate::TrackInfo {
            peer: self.peer.clone(),
            track: TrackId(self.id_text.clone()),
            kind: self.kind,
            muted: self.muted,
            tag: self.tag.clone(),
            mid: None,
        }
    }

    /// How many of its layers, from the lowest, subscribers may be given: those that arrive.
    pub fn usable_layers(&self) -> usize {
        self.arrivals
            .as_ref()
            .map_or(self.rids.len(), Arrivals::usable)
    }

    /// Whether its publisher tagged it a screen share (the allocator serves those first).
    pub fn is_screen(&self) -> bool {
        self.tag.as_deref() == Some(SCREEN_TAG)
    }
}

/// The stream tag of a screen share (the SDK's tag for `getDisplayMedia` tracks).
const SCREEN_TAG: &str = "screen";

//! TrackId and a published track: its publisher, m-line and keyframe gate.

use std::{fmt, sync::Arc};

use serde::Serialize;
use str0m::media::Mid;

use crate::{TrackKind, keyframe::KeyframeGate, sfu::Pid};

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

    /// Parses a track id as a client writes it; `None` if it cannot be one.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_prefix('t')?;
        (!digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| TrackId(s.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
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
    pub keyframes: KeyframeGate,
}

impl Track {
    /// How the track is announced.
    pub fn info(&self) -> crate::TrackInfo {
        crate::TrackInfo {
            peer: self.peer.clone(),
            track: TrackId(self.id_text.clone()),
            kind: self.kind,
        }
    }
}

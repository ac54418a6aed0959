//! SfuConfig: the addresses the SFU announces and the limits it enforces.

use std::{net::SocketAddr, time::Duration};

use crate::speakers::SpeakerConfig;

/// What one media worker needs to know; read-only after start.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The addresses announced to clients as ICE host candidates: the UDP socket's address, or
    /// the public address in front of it (NAT, containers). Every participant is reached
    /// through these; the IO layer receives on the socket they lead to.
    pub candidates: Vec<SocketAddr>,
    /// Most m-lines one offer may carry (published plus subscribed tracks plus data).
    pub max_media_lines: usize,
    /// Most tracks one participant may publish.
    pub max_published_tracks: usize,
    /// Least time between two keyframe requests forwarded to one published track; requests
    /// arriving in between are coalesced into one sent when the window ends.
    pub keyframe_interval: Duration,
    /// How active speakers are told from audio levels.
    pub speakers: SpeakerConfig,
}

impl SfuConfig {
    /// The defaults, announcing `candidates`.
    pub fn new(candidates: Vec<SocketAddr>) -> Self {
        SfuConfig {
            candidates,
            max_media_lines: 64,
            max_published_tracks: 4,
            keyframe_interval: Duration::from_millis(500),
            speakers: SpeakerConfig::default(),
        }
    }
}

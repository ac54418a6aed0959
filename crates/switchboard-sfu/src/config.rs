//! SfuConfig: the addresses the SFU announces and the limits it enforces.

use std::{net::SocketAddr, time::Duration};

use crate::{allocator::Layer, speakers::SpeakerConfig};

/// What one media worker needs to know; read-only after start.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The addresses announced to clients as ICE host candidates: the UDP socket's address, or
    /// the public address in front of it (NAT, containers). Every participant is reached
    /// through these; the IO layer receives on the socket they lead to.
    pub candidates: Vec<SocketAddr>,
    /// The addresses announced as passive ICE-TCP host candidates (RFC 6544), for clients whose
    /// network blocks UDP: the IO layer accepts TCP connections there and carries each
    /// connection's packets as RFC 4571 frames ([`Datagram::proto`](crate::Datagram::proto)
    /// `Tcp`). Empty: UDP only.
    pub tcp_candidates: Vec<SocketAddr>,
    /// Most m-lines one offer may carry (published plus subscribed tracks plus data).
    pub max_media_lines: usize,
    /// Most tracks one participant may publish.
    pub max_published_tracks: usize,
    /// Least time between two keyframe requests forwarded to one published track; requests
    /// arriving in between are coalesced into one sent when the window ends.
    pub keyframe_interval: Duration,
    /// How active speakers are told from audio levels.
    pub speakers: SpeakerConfig,
    /// The downlink each subscriber is given for video, in bit/s: all of it without bandwidth
    /// estimation; with it, the starting estimate of the whole downlink, voices included.
    pub default_downlink_bps: u64,
    /// Estimate each subscriber's downlink (str0m's transport-wide congestion control) and
    /// choose its layers by the estimate. Off: every subscriber has `default_downlink_bps`. On
    /// by default: it adds 12–35 % to the CPU per datagram (str0m's pacer sends one packet per
    /// timeout) and under 2 ms to the p99 latency (docs/benchmarks.md, "Bandwidth estimation"
    /// and "One-megabit streams on a quiet machine").
    pub bwe: bool,
    /// What each simulcast layer (lowest first: rid `q`, `h`, `f`) is taken to cost and its
    /// height, until measured rates replace them.
    pub layers: [Layer; 3],
}

impl SfuConfig {
    /// The defaults, announcing `candidates`.
    pub fn new(candidates: Vec<SocketAddr>) -> Self {
        SfuConfig {
            candidates,
            tcp_candidates: Vec::new(),
            max_media_lines: 64,
            max_published_tracks: 4,
            keyframe_interval: Duration::from_millis(500),
            speakers: SpeakerConfig::default(),
            default_downlink_bps: 2_500_000,
            bwe: true,
            // What browsers aim for at 180p, 360p and 720p camera video.
            layers: [
                Layer {
                    height: 180,
                    bitrate: 150_000,
                },
                Layer {
                    height: 360,
                    bitrate: 500_000,
                },
                Layer {
                    height: 720,
                    bitrate: 1_500_000,
                },
            ],
        }
    }
}

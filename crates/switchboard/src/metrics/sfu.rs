//! The SFU's metrics: its participants and tracks, what it forwarded, keyframe requests, layer
//! switches, and its socket's datagrams, drops and ICE-TCP connections. Their own type, so the
//! counts the media engine reports (as [`SfuStats`]) are taken in next to where they are kept.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use switchboard_sfu::SfuStats;

use super::{Direction, Metrics, OutcomeLabel};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

/// See the module documentation.
pub(super) struct SfuMetrics {
    participants: Gauge,
    tracks: Gauge,
    forwarded_packets: Counter,
    forwarded_bytes: Counter,
    keyframe_requests: Family<OutcomeLabel, Counter>,
    media_failures: Counter,
    layer_switches: Counter,
    /// Datagrams on the SFU's socket (and frames on its ICE-TCP connections), in then out: the
    /// members of `datagram_family`, looked up once so counting one is an atomic add.
    datagrams: [Counter; 2],
    /// The family `datagrams` belong to, as registered.
    datagram_family: Family<DirectionLabel, Counter>,
    tcp_connections: Gauge,
    dropped: Counter,
}

impl Default for SfuMetrics {
    fn default() -> Self {
        let family = Family::<DirectionLabel, Counter>::default();
        let datagrams = [Direction::In, Direction::Out].map(|d| {
            family
                .get_or_create(&DirectionLabel {
                    direction: d.label(),
                })
                .clone()
        });
        SfuMetrics {
            participants: Gauge::default(),
            tracks: Gauge::default(),
            forwarded_packets: Counter::default(),
            forwarded_bytes: Counter::default(),
            keyframe_requests: Family::default(),
            media_failures: Counter::default(),
            layer_switches: Counter::default(),
            datagrams,
            datagram_family: family,
            tcp_connections: Gauge::default(),
            dropped: Counter::default(),
        }
    }
}

impl SfuMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "sfu_participants_gauge",
            "SFU room members with a media session",
            self.participants.clone(),
        );
        registry.register(
            "sfu_tracks_gauge",
            "Tracks published to the SFU",
            self.tracks.clone(),
        );
        registry.register(
            "sfu_forwarded_packets",
            "RTP packets the SFU wrote to subscribers (one per subscriber)",
            self.forwarded_packets.clone(),
        );
        registry.register(
            "sfu_forwarded_bytes",
            "Payload bytes of the RTP packets the SFU wrote to subscribers",
            self.forwarded_bytes.clone(),
        );
        registry.register(
            "sfu_keyframe_requests",
            "Subscribers' keyframe requests: sent to the publisher, or coalesced",
            self.keyframe_requests.clone(),
        );
        registry.register(
            "sfu_media_failures",
            "Media sessions the SFU dropped because they failed",
            self.media_failures.clone(),
        );
        registry.register(
            "sfu_layer_switches",
            "Subscriptions moved from one simulcast layer to another",
            self.layer_switches.clone(),
        );
        registry.register(
        "sfu_datagrams",
        "Datagrams on the SFU's UDP socket and frames on its ICE-TCP connections, in (received) and out (sent)",
        self.datagram_family.clone(),
    );
        registry.register(
        "sfu_send_dropped",
        "Packets the SFU could not send: its UDP socket's buffer was full, or an ICE-TCP connection's queue",
        self.dropped.clone(),
    );
        registry.register(
            "sfu_tcp_connections_gauge",
            "ICE-TCP connections open to the SFU",
            self.tcp_connections.clone(),
        );
    }
}

/// The SFU.
impl Metrics {
    /// Takes in one media worker's counts: `now` against the `before` it last handed in. The
    /// gauges move by the difference too, so they are the sum over the node's workers.
    pub fn sfu(&self, before: &SfuStats, now: &SfuStats) {
        moved(
            &self.sfu.participants,
            before.participants,
            now.participants,
        );
        moved(&self.sfu.tracks, before.tracks, now.tracks);
        self.sfu
            .forwarded_packets
            .inc_by(now.forwarded_packets - before.forwarded_packets);
        self.sfu
            .forwarded_bytes
            .inc_by(now.forwarded_bytes - before.forwarded_bytes);
        for (outcome, n) in [
            (
                "sent",
                now.keyframe_requests_sent - before.keyframe_requests_sent,
            ),
            (
                "coalesced",
                now.keyframe_requests_coalesced - before.keyframe_requests_coalesced,
            ),
        ] {
            if n > 0 {
                self.sfu
                    .keyframe_requests
                    .get_or_create(&OutcomeLabel { outcome })
                    .inc_by(n);
            }
        }
        self.sfu
            .media_failures
            .inc_by(now.media_failures - before.media_failures);
        self.sfu
            .layer_switches
            .inc_by(now.layer_switches - before.layer_switches);
    }

    /// A packet the SFU dropped instead of sending.
    pub fn sfu_dropped(&self, count: u64) {
        self.sfu.dropped.inc_by(count);
    }

    /// ICE-TCP connections one worker has open: `now`, against the `before` it last handed in.
    pub fn sfu_tcp_connections(&self, before: usize, now: usize) {
        moved(&self.sfu.tcp_connections, before, now);
    }

    /// Counts a datagram the SFU received (`sent` false) or sent.
    pub fn sfu_datagrams(&self, sent: bool, count: u64) {
        self.sfu.datagrams[usize::from(sent)].inc_by(count);
    }
}

/// Moves a gauge one worker adds to by that worker's change, from `before` to `now`, so the
/// gauge is the sum over the workers.
fn moved(gauge: &Gauge, before: usize, now: usize) {
    gauge.inc_by(now as i64 - before as i64);
}

//! Cluster mode's metrics ([`crate::cluster`]): the shared store's round trips and errors, what
//! crossed between nodes, and the fencing and budget events. All zero on a single node. Their own
//! type, so the set that only cluster mode moves is read in one place.

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use super::{LATENCY_BUCKETS_MS, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node_id: String,
}

/// See the module documentation.
pub(super) struct ClusterMetrics {
    node: Family<NodeLabel, Gauge>,
    round_trip: Histogram,
    errors: Counter,
    reconnects: Counter,
    forwarded: Counter,
    media_sent: Counter,
    media_received: Counter,
    media_moved: Counter,
    gaps_filled: Counter,
    policy_reloads: Counter,
    dropped: Counter,
    fenced: Counter,
    room_throttled: Counter,
}

impl Default for ClusterMetrics {
    fn default() -> Self {
        ClusterMetrics {
            node: Family::default(),
            round_trip: Histogram::new(LATENCY_BUCKETS_MS),
            errors: Counter::default(),
            reconnects: Counter::default(),
            forwarded: Counter::default(),
            media_sent: Counter::default(),
            media_received: Counter::default(),
            media_moved: Counter::default(),
            gaps_filled: Counter::default(),
            policy_reloads: Counter::default(),
            dropped: Counter::default(),
            fenced: Counter::default(),
            room_throttled: Counter::default(),
        }
    }
}

impl ClusterMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "node_info",
            "This node; its id is the label (cluster mode)",
            self.node.clone(),
        );
        registry.register(
            "cluster_round_trip_ms",
            "Time of one commit to the shared store (Redis round trip and script)",
            self.round_trip.clone(),
        );
        registry.register(
            "cluster_store_errors",
            "Failed calls to the shared store",
            self.errors.clone(),
        );
        registry.register(
            "cluster_inbox_reconnects",
            "Times the node's inbox subscription was lost and made again",
            self.reconnects.clone(),
        );
        registry.register(
            "cluster_forwarded",
            "Messages from other nodes handed to this node's sessions (cross-node deliveries)",
            self.forwarded.clone(),
        );
        registry.register(
        "cluster_media_commands_sent",
        "Media commands (joins, leaves, messages to the SFU) sent to the media node of their room on another node",
        self.media_sent.clone(),
    );
        registry.register(
            "cluster_media_commands_received",
            "Media commands other nodes sent to this node's SFU, as the media node of their room",
            self.media_received.clone(),
        );
        registry.register(
            "cluster_media_moved",
            "Rooms whose media node this node found gone: its members were handed to a new one",
            self.media_moved.clone(),
        );
        registry.register(
            "cluster_gaps_filled",
            "Messages read from a session log because their doorbell was lost or late",
            self.gaps_filled.clone(),
        );
        registry.register(
        "cluster_policy_reloads",
        "Stored rooms' policies reloaded from the database on a notice from a node of the cluster",
        self.policy_reloads.clone(),
    );
        registry.register(
            "cluster_commit_dropped",
            "Batches of writes dropped because the commit queue was full",
            self.dropped.clone(),
        );
        registry.register(
            "cluster_fenced",
            "Times this node's lease ran out and it let its sessions go (fencing)",
            self.fenced.clone(),
        );
        registry.register(
            "cluster_room_throttled",
            "Syncs of a room's message budget that found it spent across the cluster",
            self.room_throttled.clone(),
        );
    }
}

/// Cluster mode.
impl Metrics {
    /// Names this node in `node_info`.
    pub fn set_node(&self, node_id: &str) {
        let label = NodeLabel {
            node_id: node_id.to_owned(),
        };
        self.cluster.node.get_or_create(&label).set(1);
    }

    /// A commit to the shared store took `took`.
    pub fn cluster_round_trip(&self, took: Duration) {
        self.cluster.round_trip.observe(took.as_secs_f64() * 1000.0);
    }

    /// A call to the shared store failed.
    pub fn cluster_store_error(&self) {
        self.cluster.errors.inc();
    }

    /// The inbox subscription was made again.
    pub fn cluster_reconnect(&self) {
        self.cluster.reconnects.inc();
    }

    /// A message from another node reached a session of this one.
    pub fn cluster_forwarded(&self) {
        self.cluster.forwarded.inc();
    }

    /// A media command went to its room's media node on another node.
    pub fn cluster_media_sent(&self) {
        self.cluster.media_sent.inc();
    }

    /// A media command came from another node for this node's SFU.
    pub fn cluster_media_received(&self) {
        self.cluster.media_received.inc();
    }

    /// A room's media node was gone and its members here were handed to a new one.
    pub fn cluster_media_moved(&self) {
        self.cluster.media_moved.inc();
    }

    /// `n` messages were read from session logs to fill gaps.
    pub fn cluster_gap_filled(&self, n: usize) {
        self.cluster.gaps_filled.inc_by(n as u64);
    }

    /// `n` stored rooms' policies were reloaded after a notice (or all of them, after a
    /// subscription was made again).
    pub fn cluster_policy_reloaded(&self, n: usize) {
        self.cluster.policy_reloads.inc_by(n as u64);
    }

    /// A batch of writes found the commit queue full.
    pub fn cluster_dropped(&self) {
        self.cluster.dropped.inc();
    }

    /// The node fenced itself.
    pub fn cluster_fenced(&self) {
        self.cluster.fenced.inc();
    }

    /// A sync found a room's message budget spent across the cluster.
    pub fn cluster_room_throttled(&self) {
        self.cluster.room_throttled.inc();
    }
}

//! Prometheus metrics, served at `GET /metrics`.
//!
//! Counters follow the core's events (see [`Metrics::record`]) and the transports' stream
//! lifecycle; the room and member gauges are read from the hub when scraped, so they can never
//! drift from the state they describe.
//!
//! This file holds the registry and the hub's and transports' metrics; cluster mode's, the SFU's
//! and the journal's are each a type of their own beside it (`cluster.rs`, `sfu.rs`, `journal.rs`).

mod cluster;
mod journal;
mod sfu;

use std::time::Instant;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use switchboard_core::{Event, Outgoing, RateScope, Stats};
use switchboard_protocol::Media;

use cluster::ClusterMetrics;
pub use journal::{DeliveryResult, JournalMetrics};
use sfu::SfuMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    r#type: &'static str,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabel {
    scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChurnLabels {
    transport: &'static str,
    event: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MediaLabel {
    media: &'static str,
}

/// Message types counted on every relay. Their counters are looked up once, at startup, so
/// counting one is an atomic add rather than a label-set lookup per message.
const HOT_KINDS: [&str; 9] = [
    "message",
    "candidate",
    "offer",
    "answer",
    "call_start",
    "call_end",
    "ack",
    "ping",
    "pong",
];

/// Whether a message came from a client (`in`) or goes to one (`out`).
#[derive(Clone, Copy)]
enum Direction {
    In,
    Out,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    connections: Family<TransportLabel, Gauge>,
    sessions: Gauge,
    runtime_tasks: Gauge,
    rooms: Gauge,
    room_members: Gauge,
    messages: Family<MessageLabels, Counter>,
    /// `messages` of the [`HOT_KINDS`], in then out.
    hot_messages: [[Counter; HOT_KINDS.len()]; 2],
    errors: Family<CodeLabel, Counter>,
    rate_limited: Family<ScopeLabel, Counter>,
    relay_latency: Histogram,
    stream_churn: Family<ChurnLabels, Counter>,
    resumes: Family<OutcomeLabel, Counter>,
    replayed: Counter,
    sessions_closed: Family<ReasonLabel, Counter>,
    media_changes: Family<MediaLabel, Counter>,
    connections_refused: Family<ReasonLabel, Counter>,
    http_timeouts: Family<ReasonLabel, Counter>,
    /// Cluster mode's ([`crate::cluster`]).
    cluster: ClusterMetrics,
    /// The SFU's.
    sfu: SfuMetrics,
    /// The audit log's and the webhooks' ([`crate::journal`]).
    journal: JournalMetrics,
}

/// Relay latencies are sub-millisecond when all is well; the buckets resolve that and still show
/// a stalled node.
const LATENCY_BUCKETS_MS: [f64; 14] = [
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0,
];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let messages = Family::<MessageLabels, Counter>::default();
        let hot_messages = [Direction::In, Direction::Out].map(|direction| {
            HOT_KINDS.map(|kind| {
                messages
                    .get_or_create(&MessageLabels {
                        r#type: kind,
                        direction: direction.label(),
                    })
                    .clone()
            })
        });
        let m = Metrics {
            connections: Family::default(),
            sessions: Gauge::default(),
            runtime_tasks: Gauge::default(),
            rooms: Gauge::default(),
            room_members: Gauge::default(),
            messages,
            hot_messages,
            errors: Family::default(),
            rate_limited: Family::default(),
            relay_latency: Histogram::new(LATENCY_BUCKETS_MS),
            stream_churn: Family::default(),
            resumes: Family::default(),
            replayed: Counter::default(),
            sessions_closed: Family::default(),
            media_changes: Family::default(),
            connections_refused: Family::default(),
            http_timeouts: Family::default(),
            cluster: ClusterMetrics::default(),
            sfu: SfuMetrics::default(),
            journal: JournalMetrics::default(),
            registry: Registry::default(),
        };
        m.journal.register(&mut registry);
        registry.register(
            "ws_connections_gauge",
            "Open client streams by transport (ws, sse, poll)",
            m.connections.clone(),
        );
        registry.register(
            "sessions_gauge",
            "Sessions, attached or waiting for a resume",
            m.sessions.clone(),
        );
        registry.register(
            "runtime_tasks_gauge",
            "Tasks alive in the server's runtime (connections, sessions' streams, timers): flat \
             under steady load, or something leaks",
            m.runtime_tasks.clone(),
        );
        registry.register(
            "rooms_gauge",
            "Rooms with at least one member",
            m.rooms.clone(),
        );
        registry.register(
            "room_members_gauge",
            "Room memberships across all rooms",
            m.room_members.clone(),
        );
        registry.register(
            "messages",
            "Messages by type; direction in (from clients, accepted) or out (to clients)",
            m.messages.clone(),
        );
        registry.register("errors", "Error replies by code", m.errors.clone());
        registry.register(
            "rate_limited",
            "Messages or requests dropped by a rate limit, by scope",
            m.rate_limited.clone(),
        );
        registry.register(
            "relay_latency_ms",
            "Time from handling a relayed message to handing it to the recipient's transport",
            m.relay_latency.clone(),
        );
        registry.register(
            "stream_churn",
            "Client streams opened and closed, by transport and reason",
            m.stream_churn.clone(),
        );
        registry.register(
            "resumes",
            "Resume and re-attach attempts by outcome (ok or the error code)",
            m.resumes.clone(),
        );
        registry.register(
            "replayed_messages",
            "Messages sent again after a resume",
            m.replayed.clone(),
        );
        registry.register(
            "sessions_closed",
            "Sessions ended, by reason (expired, replaced, overflow, ...)",
            m.sessions_closed.clone(),
        );
        registry.register(
            "room_media_changes",
            "Room media changes (an auto room at three members or back at two, a host's set_media), by the media the room has now: sfu or mesh",
            m.media_changes.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept, by reason (fd_limit: out of file descriptors)",
            m.connections_refused.clone(),
        );
        registry.register(
            "http_timeouts",
            "HTTP requests cut off by a deadline, by reason (header: the head did not arrive within \
             header_timeout_ms, and the connection was closed; body: the body did not arrive within \
             body_timeout_ms, answered 408)",
            m.http_timeouts.clone(),
        );
        m.cluster.register(&mut registry);
        m.sfu.register(&mut registry);
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The journal's metrics.
    pub fn journal(&self) -> &JournalMetrics {
        &self.journal
    }
}

impl Metrics {
    /// Counts what a core event says.
    pub fn record(&self, event: &Event) {
        match event {
            Event::Received { kind } => {
                self.count_message(kind, Direction::In);
            }
            Event::Rejected { code } => {
                self.errors
                    .get_or_create(&CodeLabel {
                        code: code.as_str(),
                    })
                    .inc();
            }
            Event::SessionResumed { replayed, .. } => {
                self.resumes
                    .get_or_create(&OutcomeLabel { outcome: "ok" })
                    .inc();
                self.replayed.inc_by(*replayed as u64);
            }
            Event::ResumeFailed { code } => {
                self.resumes
                    .get_or_create(&OutcomeLabel {
                        outcome: code.as_str(),
                    })
                    .inc();
            }
            Event::RateLimited { scope, .. } => self.rate_limited(*scope),
            Event::SessionClosed { reason, .. } => {
                self.sessions_closed
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str(),
                    })
                    .inc();
            }
            Event::MediaChanged { media, .. } => {
                let media = match media {
                    Media::Mesh => "mesh",
                    Media::Sfu => "sfu",
                };
                self.media_changes
                    .get_or_create(&MediaLabel { media })
                    .inc();
            }
            _ => {}
        }
    }

    fn count_message(&self, kind: &'static str, direction: Direction) {
        match HOT_KINDS.iter().position(|hot| *hot == kind) {
            Some(i) => {
                self.hot_messages[direction as usize][i].inc();
            }
            None => {
                self.messages
                    .get_or_create(&MessageLabels {
                        r#type: kind,
                        direction: direction.label(),
                    })
                    .inc();
            }
        }
    }

    /// Counts a message handed to a transport, and the relay latency of relayed ones.
    pub fn sent(&self, message: &Outgoing, now: Instant) {
        self.count_message(message.kind, Direction::Out);
        if matches!(
            message.kind,
            "offer" | "answer" | "candidate" | "call_start" | "call_end" | "message"
        ) {
            let ms = now
                .saturating_duration_since(message.queued_at)
                .as_secs_f64()
                * 1000.0;
            self.relay_latency.observe(ms);
        }
    }

    /// Counts a dropped message or request.
    pub fn rate_limited(&self, scope: RateScope) {
        let scope = scope.as_str();
        self.rate_limited.get_or_create(&ScopeLabel { scope }).inc();
    }

    /// Counts a connection turned away before any request was read.
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts a request cut off by the deadline for its `header` or its `body`
    /// ([`crate::edge::http`]).
    pub fn http_timeout(&self, reason: &'static str) {
        self.http_timeouts
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A stream opened.
    pub fn stream_opened(&self, transport: &'static str) {
        self.connections
            .get_or_create(&TransportLabel { transport })
            .inc();
        self.stream_churn
            .get_or_create(&ChurnLabels {
                transport,
                event: "open",
                reason: "",
            })
            .inc();
    }

    /// A stream closed for `reason`.
    pub fn stream_closed(&self, transport: &'static str, reason: &'static str) {
        self.connections
            .get_or_create(&TransportLabel { transport })
            .dec();
        self.stream_churn
            .get_or_create(&ChurnLabels {
                transport,
                event: "close",
                reason,
            })
            .inc();
    }

    /// The text exposition, with the gauges read from `stats`.
    pub fn render(&self, stats: Stats) -> String {
        self.sessions.set(stats.sessions as i64);
        self.rooms.set(stats.rooms as i64);
        self.room_members.set(stats.members as i64);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.runtime_tasks
                .set(runtime.metrics().num_alive_tasks() as i64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).expect("metrics encode");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::ErrorCode;

    #[test]
    fn renders_the_documented_names() {
        let m = Metrics::default();
        m.record(&Event::Received { kind: "offer" });
        m.record(&Event::Rejected {
            code: ErrorCode::StaleTs,
        });
        m.stream_opened("ws");
        m.stream_closed("ws", "client_closed");
        m.rate_limited(RateScope::Session);
        m.connection_refused("fd_limit");
        m.http_timeout("body");
        let text = m.render(Stats {
            sessions: 3,
            attached: 2,
            rooms: 1,
            members: 2,
        });
        for needle in [
            "ws_connections_gauge{transport=\"ws\"} 0",
            "rooms_gauge 1",
            "room_members_gauge 2",
            "messages_total{type=\"offer\",direction=\"in\"} 1",
            "errors_total{code=\"stale_ts\"} 1",
            "rate_limited_total{scope=\"session\"} 1",
            "relay_latency_ms_bucket",
            "stream_churn_total{transport=\"ws\",event=\"close\",reason=\"client_closed\"} 1",
            "sessions_gauge 3",
            "connections_refused_total{reason=\"fd_limit\"} 1",
            "http_timeouts_total{reason=\"body\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}

//! The journal's metrics: what the audit log and the webhook outbox kept, dropped and delivered,
//! and the rows the expiry sweep deleted (the control plane's other background work). Their own type, so the journal's queue and tasks count without reaching into the rest.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// How a webhook delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed; it will be tried again.
    Failed,
    /// Given up: too old, or its endpoint is no longer configured.
    Dropped,
}

impl DeliveryResult {
    fn label(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Failed => "failed",
            DeliveryResult::Dropped => "dropped",
        }
    }
}

/// See the module documentation; cheap to clone (the counters are shared).
#[derive(Clone, Default)]
pub struct JournalMetrics {
    dropped: Counter,
    audit_written: Counter,
    webhook_deliveries: Family<ResultLabel, Counter>,
    webhook_outbox: Gauge,
    expired_swept: Family<KindLabel, Counter>,
}

impl JournalMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "journal_dropped",
            "Records (audit lines with their webhook events) dropped because the journal's queue \
             was full or the database refused them",
            self.dropped.clone(),
        );
        registry.register(
            "audit_written",
            "Lines written to the audit log",
            self.audit_written.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by result (delivered, failed, dropped)",
            self.webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_outbox_gauge",
            "Webhook deliveries waiting in the outbox",
            self.webhook_outbox.clone(),
        );
        registry.register(
            "expired_swept",
            "Rows the expiry sweep deleted, by kind (room, invite, refresh_token)",
            self.expired_swept.clone(),
        );
    }

    /// A record dropped.
    pub fn journal_dropped(&self) {
        self.dropped.inc();
    }

    /// `n` records dropped at once (a write the database refused).
    pub fn journal_dropped_many(&self, n: usize) {
        self.dropped.inc_by(n as u64);
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// `n` audit lines written.
    pub fn audit_written(&self, n: usize) {
        self.audit_written.inc_by(n as u64);
    }

    /// A delivery attempt ended.
    pub fn webhook_delivery(&self, result: DeliveryResult) {
        self.webhook_deliveries
            .get_or_create(&ResultLabel {
                result: result.label(),
            })
            .inc();
    }

    /// The expiry sweep deleted `swept` rows of `kind` (`room`, `invite`, `refresh_token`).
    pub fn expired_swept(&self, kind: &'static str, swept: u64) {
        self.expired_swept
            .get_or_create(&KindLabel { kind })
            .inc_by(swept);
    }

    /// The outbox holds `depth` deliveries.
    pub fn webhook_outbox(&self, depth: i64) {
        self.webhook_outbox.set(depth);
    }
}

//! Webhooks: events of rooms and share codes POSTed to the product's backend, signed as the
//! Standard Webhooks specification says, from an outbox kept in the store.
//!
//! ```text
//! settings.rs  [[webhooks]] and [webhook_delivery]
//! events.rs    which journal records are events, and their bodies
//! sign.rs      the Standard Webhooks signature
//! backoff.rs   when a failed delivery is tried again, and when given up
//! deliver.rs   the delivery task
//! ```
//!
//! The journal's writer task (`super::writer`) queues each event once per receiver that wants it
//! ([`Webhooks::queue`]), in the same batch as its audit line. The delivery task takes the
//! oldest entry of each (receiver, room) from the outbox, POSTs it, and removes it on a 2xx
//! answer: **at least once** (an entry leaves the outbox only after its receiver took it, so a
//! crash or a restart sends it again, with the same `webhook-id`) and **in order per room** (a
//! room's next event waits until the one before is delivered or given up).

mod backoff;
pub(crate) mod deliver;
mod events;
pub mod settings;
mod sign;

use std::{collections::HashMap, sync::Arc};

use switchboard_store::NewOutboxEntry;
use tokio::sync::Notify;

use crate::journal::Record;
pub use settings::{WebhookDelivery, WebhookEvent, WebhookSettings};
pub use sign::SigningKey;

/// The receivers and what wakes the delivery task; shared by the writer and the deliverer.
pub struct Webhooks {
    receivers: Vec<WebhookSettings>,
    keys: HashMap<String, SigningKey>,
    delivery: WebhookDelivery,
    /// Rung by the writer when it queued something, so delivery starts without polling.
    wake: Notify,
}

impl Webhooks {
    /// From the configuration (checked at load, so every secret parses).
    pub fn new(receivers: &[WebhookSettings], delivery: &WebhookDelivery) -> Arc<Webhooks> {
        let keys = receivers
            .iter()
            .filter_map(|r| Some((r.url.clone(), SigningKey::parse(&r.secret).ok()?)))
            .collect();
        Arc::new(Webhooks {
            receivers: receivers.to_vec(),
            keys,
            delivery: delivery.clone(),
            wake: Notify::new(),
        })
    }

    /// Whether any receiver is configured.
    pub fn any(&self) -> bool {
        !self.receivers.is_empty()
    }

    /// Adds to `out` an outbox entry of `record` for each receiver that wants it; `now` is the
    /// queueing time (Unix ms).
    pub fn queue(&self, record: &Record, now: i64, out: &mut Vec<NewOutboxEntry>) {
        if !self.any() {
            return;
        }
        let Some(event) = events::outgoing(record) else {
            return;
        };
        // One id for every receiver's copy: it names the event.
        let id = super::code::random_id("msg");
        for receiver in self.receivers.iter().filter(|r| r.wants(event.kind)) {
            out.push(NewOutboxEntry {
                endpoint: receiver.url.clone(),
                stream: event.room.clone(),
                event_id: id.clone(),
                kind: event.kind.as_str().to_owned(),
                body: event.body.clone(),
                now,
            });
        }
    }

    /// Wakes the delivery task: something was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

//! THE seam between what happens (the hub's events, the control API's actions) and what is kept
//! of it (the audit log, the webhook outbox): a bounded queue to the control plane's writer task
//! (`control::writer`), so signaling never waits for a database.
//!
//! The hub's outputs are values: `Node::observe` hands each event it drains to
//! [`Journal::hub_event`], which keeps the few kinds the journal records (joins, leaves, mode
//! changes, knocks, rooms starting and ending) and drops the rest (relays, acks) with one `match`.
//!
//! **Overflow policy.** The queue holds [`CAPACITY`] records. When it is full (the database is
//! slower than the calls for a while) the record being added is dropped, counted in
//! `journal_dropped_total`, and a warning is logged at most once per [`WARN_EVERY`]: the journal
//! loses lines rather than ever blocking a hub call or growing without bound.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use switchboard_core::Event;
use tokio::sync::mpsc;

use crate::metrics::JournalMetrics;

/// Records the queue holds before it drops (see the module documentation).
pub const CAPACITY: usize = 8192;

/// How often a full queue is warned about.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Something the journal keeps.
#[derive(Debug, Clone)]
pub enum Record {
    /// An event of the hub, one of those [`Journal::hub_event`] keeps.
    Hub {
        /// The event.
        event: Event,
        /// When, in Unix milliseconds.
        at: i64,
    },
    /// Something done through the control API.
    Api(ApiRecord),
}

/// An action of the control API, as the journal keeps it.
#[derive(Debug, Clone)]
pub struct ApiRecord {
    /// When, in Unix milliseconds.
    pub at: i64,
    /// What.
    pub kind: ApiKind,
    /// The room it concerns, if any.
    pub room: Option<String>,
    /// The account that acted (raw: the writer hashes it for the audit log).
    pub user: Option<String>,
    /// What it was done to: an invite id, a guest id.
    pub subject: Option<String>,
    /// Details (a JSON object).
    pub detail: serde_json::Value,
}

/// The control API's actions the journal keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// A successful login.
    Login,
    /// A refused login (wrong credentials, or a locked username).
    LoginFailed,
    /// `POST /v1/rooms`.
    RoomCreated,
    /// `PATCH /v1/rooms/{room}`.
    RoomUpdated,
    /// A `PATCH` that changed the room's media mode (also a [`ApiKind::RoomUpdated`]).
    MediaChanged,
    /// `DELETE /v1/rooms/{room}`.
    RoomDeleted,
    /// `POST /v1/rooms/{room}/invites`.
    InviteCreated,
    /// `POST /v1/invites/{code}/redeem` that gave a token.
    InviteRedeemed,
    /// `DELETE /v1/rooms/{room}/invites/{invite}`.
    InviteRevoked,
}

impl ApiKind {
    /// Its name in the audit log (`kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::Login => "login",
            ApiKind::LoginFailed => "login_failed",
            ApiKind::RoomCreated => "room_created",
            ApiKind::RoomUpdated => "room_updated",
            ApiKind::MediaChanged => "media_changed",
            ApiKind::RoomDeleted => "room_deleted",
            ApiKind::InviteCreated => "invite_created",
            ApiKind::InviteRedeemed => "invite_redeemed",
            ApiKind::InviteRevoked => "invite_revoked",
        }
    }
}

/// The sending side of the queue; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    queue: mpsc::Sender<Record>,
    metrics: JournalMetrics,
    /// When a full queue was last warned about.
    warned: Arc<Mutex<Option<Instant>>>,
}

impl Journal {
    /// A journal whose records go to the returned receiver (the writer task's), at most
    /// `capacity` waiting.
    pub fn new(capacity: usize, metrics: JournalMetrics) -> (Journal, mpsc::Receiver<Record>) {
        let (queue, records) = mpsc::channel(capacity);
        let journal = Journal {
            queue,
            metrics,
            warned: Arc::default(),
        };
        (journal, records)
    }

    /// Keeps `event` if it is one the journal records, stamped with `at()` (only read then).
    pub fn hub_event(&self, event: &Event, at: impl FnOnce() -> i64) {
        if keeps(event) {
            self.push(Record::Hub {
                event: event.clone(),
                at: at(),
            });
        }
    }

    /// Queues `record`, or drops it when the queue is full (see the module documentation).
    pub fn push(&self, record: Record) {
        if self.queue.try_send(record).is_ok() {
            return;
        }
        self.metrics.journal_dropped();
        let now = Instant::now();
        let mut warned = self.warned.lock();
        if warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *warned = Some(now);
            tracing::warn!(
                event = "journal.dropped",
                "the journal's queue is full: audit lines and webhook events are dropped"
            );
        }
    }
}

/// Whether the journal records `event`.
fn keeps(event: &Event) -> bool {
    match event {
        Event::Joined { .. }
        | Event::Left { .. }
        | Event::Replaced { .. }
        | Event::ModeChanged { .. }
        | Event::MediaChanged { .. }
        | Event::RoomOpened { .. }
        | Event::RoomClosed { .. }
        | Event::Knocked { .. }
        | Event::KnockEnded { .. } => true,
        Event::SessionOpened { .. }
        | Event::SessionResumed { .. }
        | Event::ResumeFailed { .. }
        | Event::SessionDetached { .. }
        | Event::SessionClosed { .. }
        | Event::Relayed { .. }
        | Event::Received { .. }
        | Event::RateLimited { .. }
        | Event::Rejected { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::RoomId;

    use super::*;

    fn opened() -> Event {
        Event::RoomOpened {
            room: RoomId::parse("r1").unwrap(),
        }
    }

    #[test]
    fn keeps_what_it_records_and_skips_relays() {
        let (journal, mut records) = Journal::new(4, JournalMetrics::default());
        journal.hub_event(&Event::Received { kind: "offer" }, || unreachable!());
        journal.hub_event(&opened(), || 7);
        let Ok(Record::Hub { event, at }) = records.try_recv() else {
            panic!("the room's opening is kept")
        };
        assert_eq!((event, at), (opened(), 7));
        assert!(records.try_recv().is_err(), "the relay was not");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let metrics = JournalMetrics::default();
        let (journal, mut records) = Journal::new(2, metrics.clone());
        for at in 0..5 {
            journal.hub_event(&opened(), || at);
        }
        assert_eq!(metrics.dropped(), 3);
        let kept: Vec<_> = std::iter::from_fn(|| records.try_recv().ok())
            .map(|r| match r {
                Record::Hub { at, .. } => at,
                Record::Api(_) => unreachable!(),
            })
            .collect();
        assert_eq!(kept, [0, 1], "the oldest stay, the newest are dropped");
    }
}

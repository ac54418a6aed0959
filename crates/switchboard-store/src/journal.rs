//! The records of what happened that the store keeps beside the control plane's state: the audit
//! log (who did what to which room, user ids already hashed by the caller) and the webhook outbox
//! (signed-later events waiting for their receiver). Times are Unix milliseconds.

use crate::Result;

/// The journal's operations, part of every [`crate::Store`] (its supertrait); the SQL is in
/// `journal_sql.rs`.
#[async_trait::async_trait]
pub trait JournalStore: Send + Sync + 'static {
    /// Appends lines to the audit log, all or none.
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<()>;

    /// Audit lines `query` selects, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// Deletes audit lines older than `before` (the retention sweep); how many.
    async fn sweep_audit(&self, before: i64) -> Result<u64>;

    /// Queues webhook deliveries, all or none, in the order given.
    async fn enqueue_webhooks(&self, entries: &[NewOutboxEntry]) -> Result<()>;

    /// Deliveries for `holder` (a node) to try now, each leased to it until `lease_until`: the
    /// oldest waiting entry of each (endpoint, stream), if it is due at `now` and not leased to
    /// another holder past `now`, oldest first, at most `limit`. A stream's later entries wait
    /// for its oldest, and while that is leased no other holder gets it, so nodes sharing the
    /// database never deliver one stream at once; a node that dies loses its leases when they
    /// run out. A holder asking again gets its own leased entries again.
    async fn claim_webhooks(
        &self,
        holder: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>>;

    /// Gives back every lease of `holder` (a node stopping), so other nodes take its streams
    /// at once; how many it held.
    async fn release_webhooks(&self, holder: &str) -> Result<u64>;

    /// When the earliest of those oldest entries is due, leased or not; `None` when the outbox is
    /// empty.
    async fn next_webhook_at(&self) -> Result<Option<i64>>;

    /// Removes an entry (delivered, or given up); whether it was there.
    async fn remove_webhook(&self, id: i64) -> Result<bool>;

    /// Counts a failed attempt of an entry `holder` leased, sets when to try it again, and gives
    /// back the lease (the retry goes to whichever node claims it first once it is due). Whether
    /// `holder` still held it: a holder whose lease ran out while it tried, and whose entry
    /// another holder claimed since, changes nothing, since the attempt and its schedule are now
    /// the other holder's.
    async fn retry_webhook(&self, holder: &str, id: i64, next_at: i64) -> Result<bool>;

    /// Entries waiting in the outbox.
    async fn webhook_depth(&self) -> Result<i64>;
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing with insertion order: the page cursor.
    pub id: i64,
    /// When it happened.
    pub at: i64,
    /// What happened (`join`, `leave`, `kick`, `login_failed`, ...).
    pub kind: String,
    /// The room it happened in, if any.
    pub room_id: Option<String>,
    /// Keyed hash of the user who acted or was acted on; never a raw user id.
    pub actor: Option<String>,
    /// What it happened to: a peer id, an invite id, a ticket.
    pub subject: Option<String>,
    /// Details as a JSON object (a reason, a mode), or empty.
    pub detail: String,
}

/// An audit line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// See [`AuditEntry::at`].
    pub at: i64,
    /// See [`AuditEntry::kind`].
    pub kind: String,
    /// See [`AuditEntry::room_id`].
    pub room_id: Option<String>,
    /// See [`AuditEntry::actor`].
    pub actor: Option<String>,
    /// See [`AuditEntry::subject`].
    pub subject: Option<String>,
    /// See [`AuditEntry::detail`].
    pub detail: String,
}

/// Which audit lines to read: newest first, every filter optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this room's.
    pub room_id: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only at or after this time.
    pub since: Option<i64>,
    /// Only before this time.
    pub until: Option<i64>,
    /// Only with an id below this (the previous page's last id).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// One webhook delivery waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Increasing with insertion order: deliveries of one stream go in this order.
    pub id: i64,
    /// The receiver's URL.
    pub endpoint: String,
    /// What orders deliveries: one stream's next waits until the one before is delivered or
    /// dropped (a room id, so a room's events arrive in order).
    pub stream: String,
    /// The `webhook-id`: the same on every retry, so the receiver can drop duplicates.
    pub event_id: String,
    /// The event's type.
    pub kind: String,
    /// The JSON body, as signed.
    pub body: String,
    /// When it was queued (its age decides when it is given up).
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Not to be tried before this.
    pub next_at: i64,
}

/// A webhook delivery to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxEntry {
    /// See [`OutboxEntry::endpoint`].
    pub endpoint: String,
    /// See [`OutboxEntry::stream`].
    pub stream: String,
    /// See [`OutboxEntry::event_id`].
    pub event_id: String,
    /// See [`OutboxEntry::kind`].
    pub kind: String,
    /// See [`OutboxEntry::body`].
    pub body: String,
    /// When it is queued; also its first `next_at`.
    pub now: i64,
}

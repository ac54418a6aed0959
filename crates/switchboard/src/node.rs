//! The node: the hub behind its lock, the settings, the token verifier and the lifecycle handles
//! every transport task shares.

use std::{
    net::IpAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use rand::SeedableRng;
use switchboard_core::{Attachment, MediaCommand, Now, RateScope, Transmit};
use switchboard_protocol::{ErrorCode, IceServer, SignalError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admission::Admission,
    auth::{Signer, Verifier},
    cluster::{Cluster, store::Write},
    config::Config,
    delivery::{Delivery, Hub, HubAccess},
    error::TooManyRequests,
    journal::Journal,
    metrics::Metrics,
    observe::{UserHasher, log_event},
    secret::Secret,
    sfu::MediaLink,
    timer::TimerSignal,
    turn::TurnMinter,
};

thread_local! {
    /// This thread's last reading of the wall clock, and the monotonic time it was taken at. A hub
    /// call needs both clocks (`ts` is wall time); deriving the wall time from the monotonic clock
    /// for a second halves the clock reads per relayed message, and a second is too short for the
    /// two clocks to drift apart by a millisecond (a stepped wall clock shows within a second).
    static WALL_CLOCK: std::cell::Cell<Option<(Instant, u64)>> = const { std::cell::Cell::new(None) };
}

/// How long a thread's wall-clock reading stands.
const WALL_CLOCK_REREAD: Duration = Duration::from_secs(1);

/// Unix time in milliseconds at `at` (a monotonic time of about now): the thread's last wall-clock
/// reading advanced by the monotonic time since, or a fresh reading once that is older than
/// [`WALL_CLOCK_REREAD`].
fn unix_ms_at(at: Instant) -> u64 {
    WALL_CLOCK.with(|wall| {
        if let Some((read_at, ms)) = wall.get() {
            let elapsed = at.saturating_duration_since(read_at);
            if elapsed < WALL_CLOCK_REREAD {
                return ms + elapsed.as_millis() as u64;
            }
        }
        let ms = wall_clock_ms();
        wall.set(Some((at, ms)));
        ms
    })
}

/// The wall clock, read now, in Unix milliseconds.
fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

struct Inner {
    /// The only copy of room and session state. The lock is held for synchronous hub calls only,
    /// never across an `.await`, so it is never contended for long.
    hub: Mutex<Hub>,
    /// Tells the timer task when the hub's next deadline comes earlier than it planned for.
    timer: TimerSignal,
    config: Config,
    verifier: Verifier,
    hasher: UserHasher,
    metrics: Metrics,
    admission: Admission,
    /// Signs guest tokens (`POST /v1/token`) with the server's own secret.
    signer: Signer,
    /// Mints per-session TURN credentials, when a TURN secret is configured.
    turn: Option<TurnMinter>,
    /// Fired once when the server starts shutting down.
    shutdown: CancellationToken,
    /// Every connection task holds a token of this tracker, so shutdown can wait for them.
    tasks: TaskTracker,
    accepting: AtomicBool,
    /// Cluster mode: the shared store and this node's tasks' queue. `None` on a single node.
    cluster: Option<Arc<Cluster>>,
    /// The SFU's queues, when the server runs one.
    media: Option<MediaLink>,
    /// Where the events the journal records go, once the control plane has set it up.
    journal: OnceLock<Journal>,
}

impl Node {
    /// A node with an empty hub.
    pub fn new(config: Config, secret: &Secret) -> Node {
        let verifier = Verifier::new(&secret.bytes);
        Node::with_verifier(config, secret, verifier)
    }

    /// A node with an empty hub that checks tokens with `verifier`.
    pub fn with_verifier(config: Config, secret: &Secret, verifier: Verifier) -> Node {
        Node::build(config, secret, verifier, None, None)
    }

    /// A node with an empty hub, a member of `cluster` when given (its hub then is clustered),
    /// whose SFU rooms' media commands go to `media` when the server runs an SFU.
    pub fn build(
        config: Config,
        secret: &Secret,
        verifier: Verifier,
        cluster: Option<Cluster>,
        media: Option<MediaLink>,
    ) -> Node {
        let mut hub = Hub::new(config.core(), rand::rngs::StdRng::from_os_rng());
        if cluster.is_some() {
            hub = hub.clustered();
        }
        let metrics = Metrics::default();
        if let Some(cluster) = &cluster {
            metrics.set_node(cluster.node_id());
        }
        Node(Arc::new(Inner {
            hub: Mutex::new(hub),
            timer: TimerSignal::default(),
            verifier,
            hasher: UserHasher::new(&secret.bytes),
            metrics,
            admission: Admission::new(&config),
            signer: Signer::new(&secret.bytes),
            turn: TurnMinter::new(config.turn()),
            config,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            accepting: AtomicBool::new(true),
            cluster: cluster.map(Arc::new),
            media,
            journal: OnceLock::new(),
        }))
    }

    /// The cluster this node is a member of, if any.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.0.cluster.as_ref()
    }

    /// Queues writes for the shared store after those of the hub calls made so far.
    pub fn submit_shared(&self, writes: Vec<Write>) {
        if let Some(cluster) = &self.0.cluster
            && !writes.is_empty()
            && cluster.submit(writes).is_err()
        {
            self.0.metrics.cluster_dropped();
            tracing::error!(
                event = "cluster.commit_dropped",
                node = %cluster.node_id(),
                "the commit queue is full: writes to the shared store were dropped"
            );
        }
    }

    /// The current time on both clocks. The wall clock is read at most once a second per thread
    /// and advanced by the monotonic clock in between (see [`WALL_CLOCK`]).
    pub fn now(&self) -> Now {
        let at = Instant::now();
        Now {
            at,
            unix_ms: unix_ms_at(at),
        }
    }

    /// Runs `f` on the hub with the current time and delivers its outputs at once: the sinks it
    /// signalled ([`Delivery`]), the first still under the call's lock; then its events are
    /// logged and counted, in the caller's span.
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub, Now) -> R) -> R {
        let mut delivery = Delivery::default();
        let (result, hub) = self.call(&mut delivery, f);
        delivery.deliver(HubAccess::new(&self.0.hub, Some(hub)), &self.0.metrics);
        self.observe(&mut delivery);
        result
    }

    /// Runs `f` on the hub like [`Node::with_hub`], but keeps the sinks it signalled in `delivery`
    /// for the caller to deliver with [`Node::deliver`] (a WebSocket connection delivers what one
    /// read produced once the read is handled). Events are still handled at once.
    pub fn with_hub_into<R>(
        &self,
        delivery: &mut Delivery,
        f: impl FnOnce(&mut Hub, Now) -> R,
    ) -> R {
        let (result, hub) = self.call(delivery, f);
        drop(hub);
        self.observe(delivery);
        result
    }

    /// Delivers what [`Node::with_hub_into`] gathered.
    pub fn deliver(&self, delivery: &mut Delivery) {
        delivery.deliver(HubAccess::new(&self.0.hub, None), &self.0.metrics);
    }

    /// Takes up to `max` messages for the transport holding `at` (a call that produces no
    /// outputs).
    pub fn transmit(&self, at: &Attachment, max: usize) -> Transmit {
        self.0.hub.lock().transmit(at, max)
    }

    /// One hub call: `f`, then its outputs gathered into `delivery` and the timer task told of an
    /// earlier deadline. Returns the lock still held, for the caller to deliver under or release.
    fn call<R>(
        &self,
        delivery: &mut Delivery,
        f: impl FnOnce(&mut Hub, Now) -> R,
    ) -> (R, parking_lot::MutexGuard<'_, Hub>) {
        let now = self.now();
        let mut hub = self.0.hub.lock();
        let result = f(&mut hub, now);
        delivery.gather(&mut hub, now.at);
        self.hand_to_sfu(&mut hub, delivery, now);
        self.hand_tokens(&mut hub, delivery, now);
        if let Some(cluster) = &self.0.cluster {
            // Queued with the hub still locked: the store gets the changes in the hub's order
            // (an admitted guest's `admitted`, for a guest of another node, among them).
            let shared = delivery.take_shared();
            self.submit_shared(shared.into_iter().map(Write::Shared).collect());
            cluster.ask_idle(delivery.take_idle());
        }
        self.0.timer.arm(delivery.deadline());
        (result, hub)
    }

    /// Hands the call's media commands to the SFU's worker (in cluster mode, to the router that
    /// takes them to the room's media node), each with the session of the member it is about;
    /// a message its queue refuses is answered `media_unavailable`, so the sender knows to try
    /// again.
    fn hand_to_sfu(&self, hub: &mut Hub, delivery: &mut Delivery, now: Now) {
        let commands = delivery.take_media();
        if commands.is_empty() {
            return;
        }
        let mut refused = false;
        for command in commands {
            let Some(link) = &self.0.media else {
                // Only SFU rooms make commands, and the configuration allows them only with an
                // SFU; a test node without one drops them.
                return;
            };
            let session = match &command {
                MediaCommand::Left { .. } => None,
                MediaCommand::Joined { room, peer }
                | MediaCommand::Signal { room, peer, .. }
                | MediaCommand::Subscribe { room, peer, .. }
                | MediaCommand::Mute { room, peer, .. } => hub.member_session(room, peer),
            };
            match link.send(command, session) {
                Ok(()) => {}
                Err((
                    MediaCommand::Signal { room, peer, .. }
                    | MediaCommand::Subscribe { room, peer, .. }
                    | MediaCommand::Mute { room, peer, .. },
                    _,
                )) => {
                    refused = true;
                    hub.media_error(
                        room.as_str(),
                        peer.as_str(),
                        None,
                        ErrorCode::MediaUnavailable,
                        "the media server is busy; send it again".into(),
                        now,
                    );
                }
                Err(_) => {}
            }
        }
        if refused {
            delivery.gather(hub, now.at);
        }
    }

    /// Mints the room token of each lobby guest the call admitted and hands it to the guest
    /// (`admitted`): the hub decides, but holds no keys.
    fn hand_tokens(&self, hub: &mut Hub, delivery: &mut Delivery, now: Now) {
        let admissions = delivery.take_admissions();
        if admissions.is_empty() {
            return;
        }
        for a in admissions {
            let ttl = crate::guest::GUEST_TOKEN_TTL;
            match (self.0.signer).mint(&a.user, a.room.as_str(), a.role, a.name, ttl) {
                Ok(token) => hub.admitted(&a.session, &a.room, token, now),
                // Claims from a verified token and a valid room id always sign.
                Err(e) => {
                    tracing::error!(event = "lobby.token_failed", error = %e, "cannot mint an admitted guest's token")
                }
            }
        }
        delivery.gather(hub, now.at);
    }

    /// Logs and counts the events a call gathered into `delivery`, with the hub released.
    fn observe(&self, delivery: &mut Delivery) {
        let events = delivery.events();
        crate::telemetry::name_span(events.as_slice());
        let journal = self.0.journal.get();
        for event in events {
            log_event(&self.0.hasher, &event);
            self.0.metrics.record(&event);
            if let Some(journal) = journal {
                journal.hub_event(&event, || unix_ms_at(Instant::now()) as i64);
            }
        }
    }

    /// Sends the events the journal records to `journal` from now on; the first call wins.
    pub fn set_journal(&self, journal: Journal) {
        let _ = self.0.journal.set(journal);
    }

    /// The journal, once set ([`Node::set_journal`]).
    pub fn journal(&self) -> Option<&Journal> {
        self.0.journal.get()
    }

    /// The keyed hash that stands for a user id in logs and the audit log.
    pub fn user_hasher(&self) -> &UserHasher {
        &self.0.hasher
    }

    /// Read access for gauges and health answers (calls that produce no outputs).
    pub fn hub(&self) -> parking_lot::MutexGuard<'_, Hub> {
        self.0.hub.lock()
    }

    /// The timer task's signal.
    pub(crate) fn timer(&self) -> &TimerSignal {
        &self.0.timer
    }

    /// Settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Admission control.
    pub fn admission(&self) -> &Admission {
        &self.0.admission
    }

    /// Charges a new session or token to the client's address budget; a refusal is counted as
    /// `rate_limited_total{scope="new_session"}` and answers 429 with `Retry-After`.
    pub fn admit_new_session(&self, address: Option<IpAddr>) -> Result<(), TooManyRequests> {
        self.0
            .admission
            .new_session(address, Instant::now())
            .inspect_err(|_| self.0.metrics.rate_limited(RateScope::NewSession))
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Token verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    /// Signer of the server's own (HS256) tokens.
    pub fn signer(&self) -> &Signer {
        &self.0.signer
    }

    /// ICE servers for a new session of `user` on top of the configured ones: TURN credentials
    /// minted for it, when a TURN secret is configured.
    pub fn session_ice_servers(&self, user: &str) -> Vec<IceServer> {
        let now = self.now().unix_ms / 1000;
        self.0
            .turn
            .iter()
            .map(|turn| turn.ice_server(user, now))
            .collect()
    }

    /// Fired when shutdown starts.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    /// Connection tasks.
    pub fn tasks(&self) -> &TaskTracker {
        &self.0.tasks
    }

    /// Whether new sessions are accepted (false once shutdown started).
    pub fn accepting(&self) -> bool {
        self.0.accepting.load(Ordering::Relaxed)
    }

    /// Why this node takes no new session nor resume now, if it does not: it is shutting down,
    /// or (cluster mode) it is fenced off the cluster until it rejoins. Answered `unavailable`
    /// (HTTP 503), so the client tries again, on another node behind a load balancer.
    pub fn refusal(&self) -> Option<SignalError> {
        if !self.accepting() {
            return Some(SignalError::Unavailable(
                "the server is shutting down".into(),
            ));
        }
        if self.0.cluster.as_ref().is_some_and(|c| c.fenced()) {
            return Some(SignalError::Unavailable(
                "this node is cut off from the cluster; connect to another node".into(),
            ));
        }
        None
    }

    pub(crate) fn stop_accepting(&self) {
        self.0.accepting.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_is_derived_from_the_monotonic_clock_for_a_second() {
        let at = Instant::now();
        let before = wall_clock_ms();
        let read = unix_ms_at(at);
        assert!(read >= before && read <= wall_clock_ms(), "a fresh reading");
        // Within the second the reading is advanced, not taken again: exactly the elapsed time.
        let later = at + Duration::from_millis(999);
        assert_eq!(unix_ms_at(later), read + 999);
        assert_eq!(unix_ms_at(at + Duration::from_millis(250)), read + 250);
        // After it the wall clock is read again (here: the real time, well before `much_later`'s
        // derived value).
        let much_later = at + Duration::from_secs(3600);
        let fresh = unix_ms_at(much_later);
        assert!(fresh <= wall_clock_ms() && fresh < read + 3_600_000);
    }
}

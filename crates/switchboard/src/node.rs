//! The node: the hub behind its lock, the settings, the token verifier and the lifecycle handles
//! every transport task shares.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use rand::SeedableRng;
use switchboard_core::{Hub, Now};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    auth::Verifier,
    config::Config,
    metrics::Metrics,
    observe::{UserHasher, log_event},
    secret::Secret,
};

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

struct Inner {
    /// The only copy of room and session state. The lock is held for synchronous hub calls only,
    /// never across an `.await`, so it is never contended for long.
    hub: Mutex<Hub>,
    config: Config,
    verifier: Verifier,
    hasher: UserHasher,
    metrics: Metrics,
    /// Fired once when the server starts shutting down.
    shutdown: CancellationToken,
    /// Every connection task holds a token of this tracker, so shutdown can wait for them.
    tasks: TaskTracker,
    accepting: AtomicBool,
}

impl Node {
    /// A node with an empty hub.
    pub fn new(config: Config, secret: &Secret) -> Node {
        let hub = Hub::new(config.core(), rand::rngs::StdRng::from_os_rng());
        Node(Arc::new(Inner {
            hub: Mutex::new(hub),
            verifier: Verifier::new(&secret.bytes),
            hasher: UserHasher::new(&secret.bytes),
            metrics: Metrics::default(),
            config,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            accepting: AtomicBool::new(true),
        }))
    }

    /// The current time on both clocks.
    pub fn now(&self) -> Now {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        Now {
            at: Instant::now(),
            unix_ms,
        }
    }

    /// Runs `f` on the hub with the current time, then logs and counts the events it produced
    /// (outside the lock).
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub, Now) -> R) -> R {
        let now = self.now();
        let mut hub = self.0.hub.lock();
        let result = f(&mut hub, now);
        let events: Vec<_> = hub.drain_events().collect();
        drop(hub);
        for event in &events {
            log_event(&self.0.hasher, event);
            self.0.metrics.record(event);
        }
        result
    }

    /// Direct access for calls that produce no events (polling for output).
    pub fn hub(&self) -> parking_lot::MutexGuard<'_, Hub> {
        self.0.hub.lock()
    }

    /// Settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Token verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
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

    pub(crate) fn stop_accepting(&self) {
        self.0.accepting.store(false, Ordering::Relaxed);
    }
}

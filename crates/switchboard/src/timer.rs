//! When the timer task runs: at the hub's next deadline, with nothing in between, so a node with
//! nothing due does no work at all (no periodic scan). The task itself is in [`crate::server`].
//!
//! Every hub call reports the hub's next deadline ([`crate::node::Node::with_hub`]); when that is
//! earlier than the one the task sleeps until (a session that just detached must expire after
//! `resume_ms`), the call wakes the task to sleep again until the new one.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How late the timers may run. Heartbeat, resume and idle deadlines are seconds long, so a tenth
/// of a second of lateness is immaterial, and it lets one run take up every deadline that falls
/// within it (sessions' heartbeat deadlines are spread over time).
const SLACK: Duration = Duration::from_millis(100);

/// The longest the task sleeps: the per-address admission budgets are pruned this often when the
/// hub has nothing due.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Where hub calls tell the timer task of their next deadline, and where the task sleeps.
pub struct TimerSignal {
    /// Deadlines are kept as nanoseconds since this moment, in an atomic.
    epoch: Instant,
    /// The earliest deadline reported since the task last ran, if earlier than the one it sleeps
    /// until; `u64::MAX` for none.
    armed: AtomicU64,
    notify: Notify,
}

impl Default for TimerSignal {
    fn default() -> Self {
        TimerSignal {
            epoch: Instant::now(),
            armed: AtomicU64::new(u64::MAX),
            notify: Notify::new(),
        }
    }
}

impl TimerSignal {
    /// Notes the hub's next deadline after a call; wakes the task if it is earlier than the one the
    /// task sleeps until. Cheap when it is not: one atomic load.
    pub fn arm(&self, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            return;
        };
        let at = self.ticks(deadline);
        if at < self.armed.load(Ordering::Relaxed) {
            self.armed.fetch_min(at, Ordering::Relaxed);
            self.notify.notify_waiters();
        }
    }

    fn ticks(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The armed deadline, as an instant.
    fn armed(&self) -> Option<Instant> {
        match self.armed.load(Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(self.epoch + Duration::from_nanos(nanos)),
        }
    }

    /// Forgets the armed deadline before a run of the timers, so the run reports the next one
    /// afresh.
    pub fn disarm(&self) {
        self.armed.store(u64::MAX, Ordering::Relaxed);
    }

    /// Sleeps after a run of the timers at `now` until the armed deadline (plus [`SLACK`]), an
    /// earlier one reported meanwhile, or [`PRUNE_EVERY`] at most. False once `shutdown` fired.
    pub async fn sleep(&self, now: Instant, shutdown: &CancellationToken) -> bool {
        // Enabled before the deadline is read: an earlier deadline reported after the read wakes
        // this; one reported before it is in the read.
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let wake_at = match self.armed() {
            Some(deadline) => (deadline + SLACK).min(now + PRUNE_EVERY),
            None => now + PRUNE_EVERY,
        };
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = notified => true,
            _ = tokio::time::sleep_until(wake_at.into()) => true,
        }
    }
}

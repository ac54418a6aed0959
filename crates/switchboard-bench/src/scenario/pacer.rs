//! How the open loop times its sends ([`Pacing`]), and the pacing thread that releases them one at
//! a time when they must leave apart.
//!
//! Each pair sends every `interval`, the pairs' schedules offset evenly within it, so the sends of
//! all pairs together are due every `interval / pairs`: every 100 µs at 20,000 relays/s over 100
//! pairs. Waiting on tokio's timer, which fires on 1 ms ticks, every send due within a millisecond
//! leaves at the same tick, ten at once there, and the server reads them in one wake-up. A load
//! generator that keeps its sends apart makes the server wake far more often, which costs a
//! server more per message; [`Pacing::Even`] produces that shape with one thread that sleeps until
//! each send is due and hands its due time to the pair's task.

use std::{num::NonZeroU64, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::stats::{Shared, now_ns};

/// How the open loop's sends are timed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// On tokio's timer, which fires on 1 ms ticks: the sends due within one millisecond leave
    /// together, and the server takes them in one wake-up.
    #[default]
    Tick,
    /// Each send at its own due time, released by a pacing thread: sends due within a millisecond
    /// leave apart, and the server takes them in separate wake-ups.
    Even,
}

impl Pacing {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Pacing::Tick => "tick",
            Pacing::Even => "even",
        }
    }
}

/// Sends a pair's task may fall behind its pacing before more are skipped (and counted as
/// skipped): the channel's bound.
const BEHIND: usize = 64;

/// Longest sleep between two looks at whether the run is draining, so a slow schedule (a low
/// rate) cannot hold the thread past the run.
const LONGEST_SLEEP: Duration = Duration::from_millis(10);

/// When every pair sends: pair `i` first at `start + interval * i / pairs`, then every `interval`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    /// The first send's due time ([`now_ns`]).
    pub start: u64,
    /// Nanoseconds between two sends of one pair.
    pub interval: u64,
    /// Pairs.
    pub pairs: usize,
}

impl Schedule {
    /// Pair `pair`'s first due time.
    pub fn first(&self, pair: usize) -> u64 {
        self.start + self.interval * pair as u64 / self.pairs as u64
    }

    /// The `k`th send of all pairs together, in due order: which pair sends it, and when.
    fn nth(&self, k: u64) -> (usize, u64) {
        let pairs = self.pairs as u64;
        let pair = (k % pairs) as usize;
        (pair, self.first(pair) + (k / pairs) * self.interval)
    }
}

/// The pacing thread of one run; it stops when the run drains or stops, or when every pair's task
/// has gone.
pub(super) struct Pacer {
    thread: tokio::task::JoinHandle<()>,
}

impl Pacer {
    /// Starts releasing `schedule`'s sends; pair `i` receives its due times on the `i`th receiver.
    pub fn start(schedule: Schedule, shared: Arc<Shared>) -> (Pacer, Vec<mpsc::Receiver<u64>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..schedule.pairs).map(|_| mpsc::channel(BEHIND)).unzip();
        let thread = tokio::task::spawn_blocking(move || release(schedule, &senders, &shared));
        (Pacer { thread }, receivers)
    }

    /// Waits for the thread to end (it notices a draining run within [`LONGEST_SLEEP`]).
    pub async fn join(self) {
        let _ = self.thread.await;
    }
}

fn release(schedule: Schedule, pairs: &[mpsc::Sender<u64>], shared: &Shared) {
    // The thread's sleeps end up to its timer slack late (50 µs by default), about the gap between
    // two sends at high rates; 1 ns keeps them apart. Without it (an old kernel) the pacing is
    // only coarser.
    let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
    let mut k = 0;
    while !shared.draining() && !shared.stop.is_cancelled() {
        let (pair, due) = schedule.nth(k);
        let now = now_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now).min(LONGEST_SLEEP));
            continue;
        }
        match pairs[pair].try_send(due) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                shared
                    .skipped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                if pairs.iter().all(mpsc::Sender::is_closed) {
                    return;
                }
            }
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_due_in_turn_and_evenly_apart() {
        let s = Schedule {
            start: 1_000,
            interval: 10_000_000,
            pairs: 100,
        };
        let due: Vec<(usize, u64)> = (0..250).map(|k| s.nth(k)).collect();
        for (k, &(pair, at)) in due.iter().enumerate() {
            assert_eq!(pair, k % 100);
            assert_eq!(at, 1_000 + k as u64 * 100_000, "send {k}");
        }
        // Each pair's own sends are `interval` apart, starting where its schedule starts.
        assert_eq!(s.nth(7).1, s.first(7));
        assert_eq!(s.nth(107).1 - s.nth(7).1, s.interval);
    }

    #[test]
    fn uneven_divisions_stay_in_order() {
        let s = Schedule {
            start: 0,
            interval: 1_000,
            pairs: 3,
        };
        let due: Vec<u64> = (0..9).map(|k| s.nth(k).1).collect();
        assert_eq!(due, [0, 333, 666, 1_000, 1_333, 1_666, 2_000, 2_333, 2_666]);
    }
}

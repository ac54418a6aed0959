//! The time the IO layer passes into every core call.

use std::time::{Duration, Instant};

/// A moment, as both clocks the core needs: a monotonic one for timers and the wall clock for the
/// `ts` field of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timeouts.
    pub at: Instant,
    /// Unix time in milliseconds, for `ts`.
    pub unix_ms: u64,
}

impl Now {
    /// This moment advanced by `d` on both clocks; for tests and simulations.
    pub fn after(self, d: Duration) -> Now {
        Now {
            at: self.at + d,
            unix_ms: self.unix_ms + d.as_millis() as u64,
        }
    }
}

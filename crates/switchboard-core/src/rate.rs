//! Rate limiting, sans IO: token buckets and the meter that tells a flood from a burst.
//!
//! Every method takes the current `Instant`, so limits are tested by advancing a virtual clock.

use std::time::{Duration, Instant};

/// The budget a dropped message or refused request was charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateScope {
    /// A session's budget for messages other than candidates.
    Session,
    /// A session's budget for ICE candidates.
    Candidate,
    /// A room's budget, shared by its members.
    Room,
    /// The joins of one client address.
    Address,
    /// New sessions and guest tokens of one client address (charged by the server, before the
    /// hub sees the request).
    NewSession,
}

impl RateScope {
    /// A stable name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RateScope::Session => "session",
            RateScope::Candidate => "candidate",
            RateScope::Room => "room",
            RateScope::Address => "address",
            RateScope::NewSession => "new_session",
        }
    }
}

/// What a budget allows: `burst` tokens at most, refilled at `per_sec` a second. Configuration,
/// so kept once (in [`crate::RateLimits`]) and passed to the bucket with every call rather than
/// stored in each bucket: there are two buckets per session and one per room.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second; zero or less turns the budget off (callers then skip the bucket).
    pub per_sec: f64,
    /// Tokens a full bucket holds.
    pub burst: f64,
}

impl Rate {
    /// Whether the budget is on: a rate of zero or less turns it off.
    pub fn is_on(self) -> bool {
        self.per_sec > 0.0
    }
}

/// A token bucket: its tokens and when they were counted. Every call takes the bucket's [`Rate`].
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket {
            tokens: rate.burst,
            last: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.last = self.last.max(now);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Sets the tokens as of `now`, below zero for a debt that the refill pays first: in cluster
    /// mode, a room's budget becomes what the whole cluster has left of it.
    pub fn set(&mut self, tokens: f64, now: Instant) {
        self.tokens = tokens;
        self.last = self.last.max(now);
    }

    /// How long until a token is available (zero if one is).
    pub fn wait(&mut self, rate: Rate, now: Instant) -> Duration {
        self.refill(rate, now);
        if self.tokens >= 1.0 || rate.per_sec <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec)
    }

    /// Whether the bucket is full, so forgetting it changes nothing.
    pub fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.burst
    }

    /// When the bucket will be full again if nothing more is taken (`now` if it is).
    pub fn full_at(&mut self, rate: Rate, now: Instant) -> Instant {
        self.refill(rate, now);
        if self.tokens >= rate.burst || rate.per_sec <= 0.0 {
            return now;
        }
        now + Duration::from_secs_f64((rate.burst - self.tokens) / rate.per_sec)
    }
}

/// Tells sustained abuse from a burst: counts dropped messages per second and reports abuse once
/// `window_secs` consecutive seconds each dropped at least `threshold`.
#[derive(Debug, Clone)]
pub(crate) struct AbuseMeter {
    second_start: Instant,
    drops: u32,
    abusive_seconds: u32,
    /// When the last `rate_limited` warning went out; at most one per second.
    pub(crate) last_warning: Option<Instant>,
}

impl AbuseMeter {
    pub(crate) fn new(now: Instant) -> Self {
        AbuseMeter {
            second_start: now,
            drops: 0,
            abusive_seconds: 0,
            last_warning: None,
        }
    }

    /// Records one dropped message; true when the drops amount to sustained abuse.
    pub(crate) fn dropped(&mut self, now: Instant, threshold: u32, window_secs: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.second_start);
        if elapsed >= Duration::from_secs(1) {
            let quiet_gap = elapsed >= Duration::from_secs(2);
            if self.drops >= threshold && !quiet_gap {
                self.abusive_seconds += 1;
            } else {
                self.abusive_seconds = 0;
            }
            self.second_start = now;
            self.drops = 0;
        }
        self.drops += 1;
        let this_second_counts = self.drops >= threshold;
        self.abusive_seconds + u32::from(this_second_counts) >= window_secs
    }

    /// Whether a warning may go out now, and if so records it.
    pub(crate) fn may_warn(&mut self, now: Instant) -> bool {
        match self.last_warning {
            Some(at) if now.saturating_duration_since(at) < Duration::from_secs(1) => false,
            _ => {
                self.last_warning = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let rate = Rate {
            per_sec: 10.0,
            burst: 5.0,
        };
        let mut b = TokenBucket::new(rate, t0);
        assert!((0..5).all(|_| b.try_take(rate, t0)));
        assert!(!b.try_take(rate, t0));
        assert_eq!(b.wait(rate, t0), Duration::from_millis(100));
        assert!(b.try_take(rate, t0 + Duration::from_millis(100)));
        assert!(!b.try_take(rate, t0 + Duration::from_millis(100)));
        assert!(b.is_full(rate, t0 + Duration::from_secs(10)));
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..5).all(|_| b.try_take(rate, later)));
        assert!(!b.try_take(rate, later));
    }

    #[test]
    fn a_bucket_set_below_zero_pays_the_debt_before_it_gives_again() {
        let t0 = Instant::now();
        let rate = Rate {
            per_sec: 10.0,
            burst: 5.0,
        };
        let mut b = TokenBucket::new(rate, t0);
        b.set(-2.0, t0);
        assert!(!b.try_take(rate, t0));
        // 0.3 s refill three tokens: the debt of two, then one to take.
        assert!(!b.try_take(rate, t0 + Duration::from_millis(250)));
        assert!(b.try_take(rate, t0 + Duration::from_millis(300)));
        assert!(!b.try_take(rate, t0 + Duration::from_millis(300)));
    }

    #[test]
    fn meter_needs_consecutive_abusive_seconds() {
        let t0 = Instant::now();
        let mut m = AbuseMeter::new(t0);
        let sec = |n: u64| t0 + Duration::from_secs(n);
        // 3 consecutive seconds with 10 drops each, window 3: abuse in the third.
        for s in 0..2 {
            for _ in 0..10 {
                assert!(!m.dropped(sec(s), 10, 3));
            }
        }
        for i in 0..10 {
            assert_eq!(m.dropped(sec(2), 10, 3), i == 9);
        }
    }

    #[test]
    fn meter_resets_after_a_quiet_second_or_a_light_one() {
        let t0 = Instant::now();
        let mut m = AbuseMeter::new(t0);
        let sec = |n: u64| t0 + Duration::from_secs(n);
        for _ in 0..10 {
            m.dropped(sec(0), 10, 3);
        }
        for _ in 0..10 {
            m.dropped(sec(1), 10, 3);
        }
        // Second 2 has no drops at all; second 3 starts a new run.
        for _ in 0..10 {
            assert!(!m.dropped(sec(3), 10, 3));
        }
        for _ in 0..2 {
            m.dropped(sec(4), 10, 3);
        }
        for _ in 0..10 {
            assert!(!m.dropped(sec(5), 10, 3));
        }
    }

    #[test]
    fn warnings_at_most_once_per_second() {
        let t0 = Instant::now();
        let mut m = AbuseMeter::new(t0);
        assert!(m.may_warn(t0));
        assert!(!m.may_warn(t0 + Duration::from_millis(999)));
        assert!(m.may_warn(t0 + Duration::from_secs(1)));
    }
}

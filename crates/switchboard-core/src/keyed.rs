//! Budgets and lockouts kept per key (a client address, an account name), sans IO: the server's
//! admission of new sessions and the control plane's login and share-code limits share them.
//!
//! Both forget a key once remembering it changes nothing (a full bucket, failures long past), so
//! a map only holds keys seen recently; `prune` is called on the owner's timer.

use std::{
    collections::HashMap,
    hash::Hash,
    time::{Duration, Instant},
};

use crate::{Rate, TokenBucket};

/// One token bucket per key, all with the same [`Rate`].
#[derive(Debug)]
pub struct KeyedBuckets<K> {
    rate: Rate,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: Hash + Eq> KeyedBuckets<K> {
    /// No key seen yet; every key starts with a full bucket of `rate`.
    pub fn new(rate: Rate) -> Self {
        KeyedBuckets {
            rate,
            buckets: HashMap::new(),
        }
    }

    /// Whether the budget is on at all (a rate of zero turns it off: everything passes).
    pub fn is_on(&self) -> bool {
        self.rate.is_on()
    }

    /// Takes a token from `key`'s bucket, or says how long until one is there.
    pub fn try_take(&mut self, key: K, now: Instant) -> Result<(), Duration> {
        if !self.rate.is_on() {
            return Ok(());
        }
        let rate = self.rate;
        let bucket = self
            .buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(rate, now));
        if bucket.try_take(rate, now) {
            Ok(())
        } else {
            Err(bucket.wait(rate, now))
        }
    }

    /// Forgets keys whose bucket is full again.
    pub fn prune(&mut self, now: Instant) {
        let rate = self.rate;
        self.buckets.retain(|_, b| !b.is_full(rate, now));
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// When repeated failures lock a key out, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockoutPolicy {
    /// The consecutive failure that brings the first lock (the first one if 0): with 5, five
    /// failures in a row lock the key, and the sixth attempt is refused.
    pub failures_to_lock: u32,
    /// The first lock's length; each further failure doubles it.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
    /// Failures older than this (with no lock running) are forgotten.
    pub forget_after: Duration,
}

/// Consecutive failures per key, and the lock they earned: exponential backoff after
/// [`LockoutPolicy::failures_to_lock`], reset by a success.
#[derive(Debug)]
pub struct Lockout<K> {
    policy: LockoutPolicy,
    keys: HashMap<K, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Instant,
}

impl<K: Hash + Eq> Lockout<K> {
    /// No failures yet.
    pub fn new(policy: LockoutPolicy) -> Self {
        Lockout {
            policy,
            keys: HashMap::new(),
        }
    }

    /// `Err(wait)` while `key` is locked.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.keys.get(key) {
            Some(f) if f.locked_until > now => Err(f.locked_until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key`; from the one that locks on, locks it for a doubling time.
    pub fn failed(&mut self, key: K, now: Instant) {
        let policy = self.policy;
        let entry = self.keys.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: now,
        });
        if now.saturating_duration_since(entry.last) > policy.forget_after {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        if let Some(over) = entry.count.checked_sub(policy.failures_to_lock.max(1)) {
            let lock = policy
                .base
                .checked_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
                .unwrap_or(policy.max)
                .min(policy.max);
            entry.locked_until = now + lock;
        }
    }

    /// A success: `key`'s failures are forgotten.
    pub fn succeeded(&mut self, key: &K) {
        self.keys.remove(key);
    }

    /// Forgets keys with no lock running and no failure within `forget_after`.
    pub fn prune(&mut self, now: Instant) {
        let forget = self.policy.forget_after;
        self.keys
            .retain(|_, f| f.locked_until > now || now.saturating_duration_since(f.last) <= forget);
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn buckets_are_per_key_and_forgotten_when_full() {
        let mut buckets = KeyedBuckets::new(Rate {
            per_sec: 1.0,
            burst: 2.0,
        });
        let t0 = Instant::now();
        assert_eq!(buckets.try_take("a", t0), Ok(()));
        assert_eq!(buckets.try_take("a", t0), Ok(()));
        assert_eq!(buckets.try_take("a", t0), Err(SEC));
        assert_eq!(buckets.try_take("b", t0), Ok(()), "another key's budget");
        assert_eq!(buckets.try_take("a", t0 + SEC), Ok(()));
        buckets.prune(t0 + 3 * SEC);
        assert!(buckets.is_empty());
        let mut off = KeyedBuckets::new(Rate {
            per_sec: 0.0,
            burst: 0.0,
        });
        assert!((0..100).all(|_| off.try_take("a", t0).is_ok()));
        assert!(off.is_empty());
    }

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            failures_to_lock: 4,
            base: SEC,
            max: 8 * SEC,
            forget_after: 60 * SEC,
        }
    }

    #[test]
    fn the_locking_failure_locks_and_later_ones_double_until_a_success() {
        let mut lockout = Lockout::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            lockout.failed("ann", t0);
            assert_eq!(lockout.check(&"ann", t0), Ok(()));
        }
        let mut expected = Vec::new();
        let mut seen = Vec::new();
        let mut now = t0;
        for lock in [1, 2, 4, 8, 8, 8] {
            lockout.failed("ann", now);
            seen.push(lockout.check(&"ann", now).unwrap_err());
            expected.push(lock * SEC);
            assert_eq!(lockout.check(&"bob", now), Ok(()), "other keys are free");
            now += lock * SEC;
            assert_eq!(lockout.check(&"ann", now), Ok(()), "the lock ends");
        }
        assert_eq!(seen, expected);
        lockout.succeeded(&"ann");
        lockout.failed("ann", now);
        assert_eq!(lockout.check(&"ann", now), Ok(()));
    }

    #[test]
    fn old_failures_are_forgotten() {
        let mut lockout = Lockout::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            lockout.failed("ann", t0);
        }
        let later = t0 + 61 * SEC;
        lockout.failed("ann", later);
        assert_eq!(
            lockout.check(&"ann", later),
            Ok(()),
            "the count started over"
        );
        lockout.prune(later + 61 * SEC);
        assert!(lockout.is_empty());
        lockout.failed("bob", later);
        lockout.prune(later);
        assert_eq!(lockout.len(), 1);
    }
}

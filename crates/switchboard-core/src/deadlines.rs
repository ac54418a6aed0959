//! The hub's timers, kept by deadline: a heap of (deadline, what) entries, so finding what is due
//! costs nothing per idle session and the next deadline is the heap's top.
//!
//! Entries are never updated in place. A session's heartbeat deadline moves with every frame it
//! sends; rather than touch the heap per frame, its entry stays where it was, and when it comes
//! due the hub looks at the session's real deadline and, if that is later, schedules a new entry
//! (once per `heartbeat_timeout` per idle session at most). An owner that needs an earlier
//! deadline than its entry's (a session that detaches) schedules a new entry; each owner keeps the
//! token of its live entry, so an entry whose token is no longer its owner's is stale and dropped.

use std::{
    cmp::{Ordering, Reverse},
    collections::BinaryHeap,
    time::Instant,
};

/// Names one entry of the timers; its owner keeps the token of its live entry. Tokens wrap after
/// 2^32 entries, far more than are ever live at once: an entry is due within an hour of being
/// scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerToken(u32);

/// One entry: `key` says what it is for.
struct Entry<K> {
    at: Instant,
    token: TimerToken,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K> Eq for Entry<K> {}

impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Entry<K> {
    /// By deadline; the token only makes the order total.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.token.0).cmp(&(other.at, other.token.0))
    }
}

/// See the module documentation. `K` says what an entry is for.
pub(crate) struct Deadlines<K> {
    heap: BinaryHeap<Reverse<Entry<K>>>,
    next_token: u32,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            next_token: 0,
        }
    }
}

impl<K> Deadlines<K> {
    /// Schedules `key` at `at`; the owner keeps the returned token.
    pub(crate) fn schedule(&mut self, key: K, at: Instant) -> TimerToken {
        let token = TimerToken(self.next_token);
        self.next_token = self.next_token.wrapping_add(1);
        self.heap.push(Reverse(Entry { at, token, key }));
        token
    }

    /// The earliest deadline of any entry, stale ones included (a stale entry only makes the
    /// caller come back early).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(K, TimerToken)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| (e.key, e.token))
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn room(id: &'static str) -> &'static str {
        id
    }

    #[test]
    fn entries_come_due_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let mut d = Deadlines::<&str>::default();
        assert_eq!(d.next(), None);
        let late = d.schedule(room("late"), t0 + Duration::from_secs(3));
        let early = d.schedule(room("early"), t0 + Duration::from_secs(1));
        let tie = d.schedule(room("tie"), t0 + Duration::from_secs(1));
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None, "nothing is due before its deadline");
        let now = t0 + Duration::from_secs(2);
        assert_eq!(d.pop_due(now), Some((room("early"), early)));
        assert_eq!(
            d.pop_due(now),
            Some((room("tie"), tie)),
            "ties in scheduling order"
        );
        assert_eq!(d.pop_due(now), None);
        assert_eq!(d.len(), 1);
        let now = t0 + Duration::from_secs(3);
        assert_eq!(d.pop_due(now), Some((room("late"), late)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn every_entry_gets_its_own_token() {
        let t0 = Instant::now();
        let mut d = Deadlines::<&str>::default();
        let a = d.schedule(room("r"), t0);
        let b = d.schedule(room("r"), t0);
        assert_ne!(
            a, b,
            "a rescheduled owner can tell its stale entry from its live one"
        );
    }
}

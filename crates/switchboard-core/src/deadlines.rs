//! The hub's timers, kept by deadline: one heap of (deadline, owner) entries per kind of owner, so
//! finding what is due costs nothing per idle session and the next deadline is the earliest of the
//! heaps' tops.
//!
//! Entries are never updated in place. A session's heartbeat deadline moves with every frame it
//! sends; rather than touch the heap per frame, its entry stays where it was, and when it comes
//! due the hub looks at the session's real deadline and, if that is later, schedules a new entry
//! (once per `heartbeat_timeout` per idle session at most). An owner that needs an earlier
//! deadline than its entry's (a session that detaches) schedules a new entry; each owner keeps the
//! token of its live entry, so an entry whose token is no longer its owner's is stale and dropped.
//!
//! An owner that goes (a session forgotten, a room closed) leaves its entry behind, stale until
//! it comes due: up to `heartbeat_timeout` later for a session, but up to `room_idle_timeout` (an
//! hour) for a room, so rooms opened and closed all the time would pile entries up for an hour
//! (the soak benchmark found the hub growing by 60 bytes per room closed). The hub sweeps a
//! heap whenever its entries outnumber twice its live owners by [`STALE_FLOOR`]
//! ([`Deadlines::sweep_rooms`]): amortized, a sweep costs O(1) per entry that went stale.
//!
//! Every session and every room has an entry, so an entry's size is memory per idle session: 32
//! bytes. Its deadline is kept as nanoseconds from the first one scheduled (8 bytes, where an
//! `Instant` takes 16), and the heap it is in says what kind of owner it names, so its key needs no
//! tag. (One heap of [`TimerKey`]s with `Instant`s took 48 bytes an entry.) The heaps share one
//! order, by deadline and then by token, so entries come due in the order they would from one heap.

use std::{
    cmp::{Ordering, Reverse},
    collections::BinaryHeap,
    net::IpAddr,
    time::{Duration, Instant},
};

use switchboard_protocol::RoomId;

use crate::SessionId;

/// Names one entry of the timers; its owner keeps the token of its live entry. Tokens wrap after
/// 2^32 entries, far more than are ever live at once: an entry is due within an hour of being
/// scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerToken(u32);

/// What a timer is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimerKey {
    /// A session's heartbeat or resume deadline.
    Session(SessionId),
    /// A room's idle deadline.
    Room(RoomId),
    /// When an address's join budget is full again and can be forgotten.
    JoinBudget(IpAddr),
    /// When the knock of a lobby session expires.
    Knock(SessionId),
}

/// Stale entries a heap may hold beyond twice its live owners before it is swept: small enough
/// to bound memory, large enough that a sweep is rare.
const STALE_FLOOR: usize = 1024;

/// One entry: `key` is due `at` nanoseconds from the timers' epoch.
struct Entry<K> {
    at: i64,
    token: TimerToken,
    key: K,
}

// The sizes promised above, for the owners every session and room has.
const _: () = {
    use std::mem::size_of;
    assert!(size_of::<Entry<SessionId>>() <= 32);
    assert!(size_of::<Entry<RoomId>>() <= 32);
};

impl<K> Entry<K> {
    /// By deadline; the token only makes the order total (ties in scheduling order).
    fn order(&self) -> (i64, TimerToken) {
        (self.at, self.token)
    }
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl<K> Eq for Entry<K> {}

impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

/// The entries for one kind of owner, earliest on top.
type Heap<K> = BinaryHeap<Reverse<Entry<K>>>;

/// Which heap an entry is in.
#[derive(Clone, Copy)]
enum Kind {
    Session,
    Room,
    JoinBudget,
    Knock,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Deadlines {
    /// What deadlines are counted from: the first one scheduled. A later one may be earlier (a
    /// join budget's, due within a second, after a session's), so they are signed.
    epoch: Option<Instant>,
    /// The earliest deadline of all, read after every call of the hub's: kept here rather than
    /// found among the heaps' tops each time.
    next: Option<Instant>,
    next_token: u32,
    sessions: Heap<SessionId>,
    rooms: Heap<RoomId>,
    join_budgets: Heap<IpAddr>,
    knocks: Heap<SessionId>,
}

impl Deadlines {
    /// Schedules `key` at `at`; the owner keeps the returned token.
    pub(crate) fn schedule(&mut self, key: TimerKey, at: Instant) -> TimerToken {
        let token = TimerToken(self.next_token);
        self.next_token = self.next_token.wrapping_add(1);
        self.next = Some(self.next.map_or(at, |next| next.min(at)));
        let at = nanos_since(*self.epoch.get_or_insert(at), at);
        match key {
            TimerKey::Session(key) => self.sessions.push(Reverse(Entry { at, token, key })),
            TimerKey::Room(key) => self.rooms.push(Reverse(Entry { at, token, key })),
            TimerKey::JoinBudget(key) => self.join_budgets.push(Reverse(Entry { at, token, key })),
            TimerKey::Knock(key) => self.knocks.push(Reverse(Entry { at, token, key })),
        }
        token
    }

    /// The earliest entry of all: its heap and its order.
    fn earliest(&self) -> Option<(Kind, (i64, TimerToken))> {
        fn top<K>(heap: &Heap<K>) -> Option<(i64, TimerToken)> {
            heap.peek().map(|Reverse(e)| e.order())
        }
        [
            (Kind::Session, top(&self.sessions)),
            (Kind::Room, top(&self.rooms)),
            (Kind::JoinBudget, top(&self.join_budgets)),
            (Kind::Knock, top(&self.knocks)),
        ]
        .into_iter()
        .filter_map(|(kind, order)| Some((kind, order?)))
        .min_by_key(|&(_, order)| order)
    }

    /// The earliest deadline of any entry, stale ones included (a stale entry only makes the
    /// caller come back early).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerKey, TimerToken)> {
        fn pop<K>(heap: &mut Heap<K>, key: fn(K) -> TimerKey) -> Option<(TimerKey, TimerToken)> {
            heap.pop().map(|Reverse(e)| (key(e.key), e.token))
        }
        if self.next? > now {
            return None;
        }
        let (kind, _) = self.earliest()?;
        let due = match kind {
            Kind::Session => pop(&mut self.sessions, TimerKey::Session),
            Kind::Room => pop(&mut self.rooms, TimerKey::Room),
            Kind::JoinBudget => pop(&mut self.join_budgets, TimerKey::JoinBudget),
            Kind::Knock => pop(&mut self.knocks, TimerKey::Knock),
        };
        self.find_next();
        due
    }

    /// Drops the room entries that no room owns any more, if they have piled up: `live` rooms
    /// exist, and `owns` says whether a room holds a token (see the module documentation).
    pub(crate) fn sweep_rooms(&mut self, live: usize, owns: impl Fn(&RoomId, TimerToken) -> bool) {
        if sweep(&mut self.rooms, live, owns) {
            self.find_next();
        }
    }

    /// [`Deadlines::sweep_rooms`] for sessions.
    pub(crate) fn sweep_sessions(
        &mut self,
        live: usize,
        owns: impl Fn(&SessionId, TimerToken) -> bool,
    ) {
        if sweep(&mut self.sessions, live, owns) {
            self.find_next();
        }
    }

    /// Sets `next` to the earliest entry's deadline.
    fn find_next(&mut self) {
        let earliest = self.earliest().map(|(_, (at, _))| at);
        self.next = earliest
            .zip(self.epoch)
            .map(|(at, epoch)| instant(epoch, at));
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.len() + self.rooms.len() + self.join_budgets.len() + self.knocks.len()
    }
}

/// Keeps only the entries of `heap` their owner holds, if it has more than twice `live` plus
/// [`STALE_FLOOR`]; whether it swept.
fn sweep<K>(heap: &mut Heap<K>, live: usize, owns: impl Fn(&K, TimerToken) -> bool) -> bool {
    if heap.len() <= 2 * live + STALE_FLOOR {
        return false;
    }
    heap.retain(|Reverse(e)| owns(&e.key, e.token));
    true
}

/// `at` in nanoseconds from `epoch`, negative before it. Exact within 292 years either way, and
/// saturated past that: such a deadline never comes anyway.
fn nanos_since(epoch: Instant, at: Instant) -> i64 {
    match at.checked_duration_since(epoch) {
        Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        None => i64::try_from(epoch.duration_since(at).as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The moment `at` nanoseconds from `epoch`: [`nanos_since`] undone.
fn instant(epoch: Instant, at: i64) -> Instant {
    let offset = Duration::from_nanos(at.unsigned_abs());
    if at >= 0 {
        epoch + offset
    } else {
        epoch - offset
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn room(id: &str) -> TimerKey {
        TimerKey::Room(RoomId::parse(id).unwrap())
    }

    #[test]
    fn entries_of_owners_gone_are_swept_once_they_pile_up() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut d = Deadlines::default();
        let kept = d.schedule(room("kept"), t0 + hour);
        // Rooms opened and closed: each leaves its entry, due in an hour.
        let owns = |id: &RoomId, token: TimerToken| id.as_str() == "kept" && token == kept;
        for i in 0..STALE_FLOOR + 2 {
            d.schedule(
                room(&format!("gone-{i}")),
                t0 + Duration::from_secs(i as u64 + 1),
            );
            d.sweep_rooms(1, owns);
        }
        assert_eq!(
            d.len(),
            1,
            "only the live room's entry is left after the sweep"
        );
        assert_eq!(
            d.next(),
            Some(t0 + hour),
            "the next deadline is the live entry's"
        );
        assert_eq!(d.pop_due(t0 + Duration::from_secs(5)), None);
        assert_eq!(d.pop_due(t0 + hour), Some((room("kept"), kept)));
    }

    #[test]
    fn entries_come_due_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
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
    fn every_kind_comes_due_in_one_order_to_the_nanosecond() {
        let t0 = Instant::now();
        let ns = Duration::from_nanos;
        let session = TimerKey::Session(SessionId::random(&mut StdRng::seed_from_u64(1)));
        let address = TimerKey::JoinBudget(IpAddr::from([192, 0, 2, 1]));
        let mut d = Deadlines::default();
        // The first deadline is the epoch; the others fall before and after it.
        let s = d.schedule(session.clone(), t0 + ns(5));
        let a = d.schedule(address.clone(), t0 + ns(2));
        let r = d.schedule(room("r"), t0 + ns(5));
        let a2 = d.schedule(address.clone(), t0 + ns(5) + Duration::from_secs(3600));
        assert_eq!(d.next(), Some(t0 + ns(2)), "before the epoch, exactly");
        assert_eq!(d.pop_due(t0 + ns(1)), None);
        assert_eq!(d.pop_due(t0 + ns(2)), Some((address.clone(), a)));
        assert_eq!(d.next(), Some(t0 + ns(5)));
        assert_eq!(d.pop_due(t0 + ns(4)), None);
        let now = t0 + ns(5);
        assert_eq!(d.pop_due(now), Some((session, s)));
        assert_eq!(
            d.pop_due(now),
            Some((room("r"), r)),
            "ties across kinds in scheduling order"
        );
        assert_eq!(d.pop_due(now), None);
        assert_eq!(d.next(), Some(now + Duration::from_secs(3600)));
        assert_eq!(
            d.pop_due(now + Duration::from_secs(3600)),
            Some((address, a2))
        );
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn every_entry_gets_its_own_token() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let a = d.schedule(room("r"), t0);
        let b = d.schedule(room("r"), t0);
        assert_ne!(
            a, b,
            "a rescheduled owner can tell its stale entry from its live one"
        );
    }
}

//! A session's numbered, bounded queue of server messages: what makes resume lossless.
//!
//! Every message gets the session's next `seq` when it is queued. Messages stay after they are
//! handed to a transport, until the client acknowledges them (`ack`, a resume's `last_seq`, a poll's
//! `after`), because a transport can die with messages in flight. The bound counts everything kept.
//! When it is reached, the oldest message already handed out is released (a resume that needs it
//! then fails loudly); if every kept message is still unsent, the client is not keeping up and the
//! push fails so the session can be ended rather than lose a message silently.

use std::{collections::VecDeque, sync::Arc, time::Instant};

use switchboard_protocol::renumber;

use crate::Now;

/// A kept message, as the JSON text sent, so handing it out (again) is a reference count.
struct Entry {
    kind: &'static str,
    /// When it was queued, so transports can measure the time to hand it over.
    queued_at: Instant,
    text: Arc<str>,
}

/// One encoded server message handed to a transport (an outbox entry on its way out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its seq in the recipient's session (SSE uses it as the event id).
    pub seq: u64,
    /// Its `type`, for metrics.
    pub kind: &'static str,
    /// When the core queued it (for a relayed message: when the sender's frame was handled).
    pub queued_at: Instant,
    /// The JSON text, identical on every transport; shared with the outbox, which keeps it until
    /// the client acknowledges it.
    pub text: Arc<str>,
}

/// See the module documentation. Seqs of kept entries are contiguous, ending at `next_seq - 1`,
/// so an entry's seq is its position and nothing needs searching.
pub(crate) struct Outbox {
    entries: VecDeque<Entry>,
    /// `seq` of the next queued message.
    next_seq: u64,
    /// Highest `seq` handed to a transport.
    sent_upto: u64,
    /// Highest `seq` no longer kept; a resume from below it cannot be served.
    released_upto: u64,
    limit: usize,
}

/// Every kept message is still unsent and the bound is reached.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

/// Why a resume position cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResumeGap {
    /// Messages after `last_seq` were already released.
    Released,
    /// `last_seq` is above anything sent.
    Ahead,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Outbox {
            entries: VecDeque::new(),
            next_seq: 1,
            sent_upto: 0,
            released_upto: 0,
            limit: limit.max(1),
        }
    }

    /// The outbox another node's session had, as its durable log describes it: `entries`
    /// (`(kind, text)`, each text carrying its seq) numbered from `first_seq`, all handed out
    /// already. Past `limit`, the oldest are released, as pushing them would have.
    pub(crate) fn adopted(
        limit: usize,
        first_seq: u64,
        entries: impl IntoIterator<Item = (&'static str, Arc<str>)>,
        now: Now,
    ) -> Self {
        let mut entries: VecDeque<Entry> = entries
            .into_iter()
            .map(|(kind, text)| Entry {
                kind,
                queued_at: now.at,
                text,
            })
            .collect();
        let next_seq = first_seq + entries.len() as u64;
        let limit = limit.max(1);
        while entries.len() > limit {
            entries.pop_front();
        }
        Outbox {
            released_upto: next_seq - 1 - entries.len() as u64,
            entries,
            next_seq,
            sent_upto: next_seq - 1,
            limit,
        }
    }

    /// The seq the next pushed message gets: its text must carry it.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn front_seq(&self) -> u64 {
        self.next_seq - self.entries.len() as u64
    }

    /// Queues a message of type `kind` encoded with [`Outbox::next_seq`].
    pub(crate) fn push(
        &mut self,
        kind: &'static str,
        text: Arc<str>,
        now: Now,
    ) -> Result<(), Overflow> {
        if self.entries.len() >= self.limit {
            let oldest = self.front_seq();
            if oldest > self.sent_upto {
                return Err(Overflow);
            }
            self.released_upto = oldest;
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            kind,
            queued_at: now.at,
            text,
        });
        self.next_seq += 1;
        Ok(())
    }

    /// The highest seq handed to a transport.
    pub(crate) fn sent_upto(&self) -> u64 {
        self.sent_upto
    }

    pub(crate) fn has_unsent(&self) -> bool {
        self.next_seq - 1 > self.sent_upto
    }

    /// Hands out up to `max` unsent messages and marks them sent.
    pub(crate) fn take_unsent(&mut self, max: usize) -> Vec<Outgoing> {
        let first_seq = self.sent_upto + 1;
        let first = (first_seq - self.front_seq()) as usize;
        let count = (self.entries.len() - first).min(max);
        let batch: Vec<Outgoing> = self
            .entries
            .range(first..first + count)
            .zip(first_seq..)
            .map(|(e, seq)| Outgoing {
                seq,
                kind: e.kind,
                queued_at: e.queued_at,
                text: e.text.clone(),
            })
            .collect();
        self.sent_upto += count as u64;
        batch
    }

    /// Releases everything up to `seq` (clamped to what was sent).
    pub(crate) fn ack(&mut self, seq: u64) {
        let seq = seq.min(self.sent_upto);
        let front = self.front_seq();
        if seq >= front {
            let released = (seq + 1 - front) as usize;
            // A released text's reference count sits on a line untouched since it was queued,
            // usually out of the cache by the time its ack comes (a client acknowledges every 32
            // messages). Dropped one by one, each locked decrement waits for its own miss; read
            // first, the misses overlap. About 1% more relays per server CPU-second at 20,000
            // relays/s (docs/benchmarks.md, round twelve).
            let counts =
                (self.entries.range(..released)).fold(0, |all, e| all ^ Arc::strong_count(&e.text));
            std::hint::black_box(counts);
            self.entries.drain(..released);
        }
        self.released_upto = self.released_upto.max(seq);
    }

    /// Restarts delivery after `last_seq`: releases what the client has, queues `hello` (encoded
    /// with seq `last_seq + 1`) as the next seq the client expects, and renumbers what it missed
    /// after it, so the client sees `hello` first and then every missed message once, in order,
    /// with no gap in `seq`.
    pub(crate) fn resume(
        &mut self,
        last_seq: u64,
        hello: Arc<str>,
        now: Now,
    ) -> Result<usize, ResumeGap> {
        self.rewind(last_seq)?;
        // The hello of an earlier resume whose answer the client never got is not a missed
        // message: this hello replaces it (replaying it would hand the client a stale one).
        let missed: Vec<Entry> = std::mem::take(&mut self.entries)
            .into_iter()
            .filter(|e| e.kind != HELLO)
            .collect();
        let replayed = missed.len();
        self.next_seq = last_seq + 1;
        let hello = Entry {
            kind: HELLO,
            queued_at: now.at,
            text: hello,
        };
        // The hello may put the outbox one over its bound until the transport takes it.
        self.entries.push_back(hello);
        self.next_seq += 1;
        for entry in missed {
            let text = renumber(&entry.text, self.next_seq).into();
            self.entries.push_back(Entry { text, ..entry });
            self.next_seq += 1;
        }
        Ok(replayed)
    }

    /// Restarts delivery after `last_seq` without renumbering: releases what the client has and
    /// marks the rest unsent, so the next transport sends it again with the same seqs. Returns how
    /// many messages will be sent again.
    pub(crate) fn rewind(&mut self, last_seq: u64) -> Result<usize, ResumeGap> {
        if last_seq < self.released_upto {
            return Err(ResumeGap::Released);
        }
        if last_seq > self.sent_upto {
            return Err(ResumeGap::Ahead);
        }
        self.ack(last_seq);
        let again = (self.sent_upto - last_seq) as usize;
        self.sent_upto = last_seq;
        Ok(again)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

const HELLO: &str = "hello";

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{ServerBody, ServerEnvelope, ServerMessage};

    fn now() -> Now {
        Now {
            at: Instant::now(),
            unix_ms: 0,
        }
    }

    fn msg(id: &str) -> ServerMessage {
        ServerMessage::new(ServerBody::Pong).with_id(Some(id.into()))
    }

    /// Queues a `pong` whose `id` is `n`, encoded as the hub does.
    fn push(o: &mut Outbox, n: u64) -> Result<(), Overflow> {
        let text = msg(&n.to_string()).encode(o.next_seq(), 0);
        o.push("pong", text.into(), now())
    }

    /// Resumes after `last_seq` with a hello whose `id` is `id`.
    fn resume(o: &mut Outbox, last_seq: u64, id: &str) -> Result<usize, ResumeGap> {
        o.resume(last_seq, msg(id).encode(last_seq + 1, 0).into(), now())
    }

    fn decode(batch: &[Outgoing]) -> Vec<(u64, String)> {
        batch
            .iter()
            .map(|f| {
                let e: ServerEnvelope = serde_json::from_str(&f.text).unwrap();
                assert_eq!(e.seq, f.seq);
                (e.seq, e.id.unwrap_or_default())
            })
            .collect()
    }

    #[test]
    fn numbers_without_gaps_and_sends_once() {
        let mut o = Outbox::new(10);
        for n in 1..=3 {
            push(&mut o, n).unwrap();
        }
        assert_eq!(
            decode(&o.take_unsent(2)),
            [(1, "1".into()), (2, "2".into())]
        );
        assert_eq!(decode(&o.take_unsent(10)), [(3, "3".into())]);
        assert!(o.take_unsent(10).is_empty());
        assert!(!o.has_unsent());
    }

    #[test]
    fn resume_replays_missed_after_hello_renumbered() {
        let mut o = Outbox::new(10);
        for n in 1..=4 {
            push(&mut o, n).unwrap();
        }
        o.take_unsent(10);
        // The client got 1 and 2; 3 and 4 were in flight when the transport died.
        assert_eq!(resume(&mut o, 2, "99"), Ok(2));
        assert_eq!(
            decode(&o.take_unsent(10)),
            [(3, "99".into()), (4, "3".into()), (5, "4".into())]
        );
        push(&mut o, 5).unwrap();
        assert_eq!(decode(&o.take_unsent(10)), [(6, "5".into())]);
    }

    #[test]
    fn a_resume_drops_the_hello_of_an_earlier_resume_the_client_never_got() {
        let mut o = Outbox::new(10);
        push(&mut o, 1).unwrap();
        o.take_unsent(10);
        assert_eq!(resume(&mut o, 0, "first"), Ok(1));
        o.take_unsent(10);
        // The first hello and the replayed 1 are lost with the transport.
        assert_eq!(resume(&mut o, 0, "second"), Ok(1));
        assert_eq!(
            decode(&o.take_unsent(10)),
            [(1, "second".into()), (2, "1".into())]
        );
    }

    #[test]
    fn resume_from_a_released_or_unsent_position_fails() {
        let mut o = Outbox::new(10);
        for n in 1..=4 {
            push(&mut o, n).unwrap();
        }
        o.take_unsent(3);
        o.ack(2);
        assert_eq!(resume(&mut o, 1, "0"), Err(ResumeGap::Released));
        assert_eq!(resume(&mut o, 4, "0"), Err(ResumeGap::Ahead));
        assert_eq!(resume(&mut o, 3, "0"), Ok(1));
    }

    #[test]
    fn full_outbox_releases_sent_messages_then_overflows_on_unsent() {
        let mut o = Outbox::new(3);
        for n in 1..=3 {
            push(&mut o, n).unwrap();
        }
        o.take_unsent(2);
        push(&mut o, 4).unwrap(); // releases 1
        push(&mut o, 5).unwrap(); // releases 2
        assert_eq!(o.len(), 3);
        assert_eq!(push(&mut o, 6), Err(Overflow));
        assert_eq!(resume(&mut o, 0, "0"), Err(ResumeGap::Released));
    }

    #[test]
    fn rewind_resends_with_the_same_seqs() {
        let mut o = Outbox::new(10);
        for n in 1..=4 {
            push(&mut o, n).unwrap();
        }
        o.take_unsent(10);
        assert_eq!(o.rewind(2), Ok(2));
        assert_eq!(
            decode(&o.take_unsent(10)),
            [(3, "3".into()), (4, "4".into())]
        );
        assert_eq!(o.rewind(1), Err(ResumeGap::Released));
        assert_eq!(o.rewind(5), Err(ResumeGap::Ahead));
        assert_eq!(o.rewind(4), Ok(0));
    }

    #[test]
    fn ack_never_releases_unsent_messages() {
        let mut o = Outbox::new(10);
        push(&mut o, 1).unwrap();
        push(&mut o, 2).unwrap();
        o.take_unsent(1);
        o.ack(50);
        assert_eq!(decode(&o.take_unsent(10)), [(2, "2".into())]);
    }

    proptest::proptest! {
        /// Whatever the interleaving of pushes, partial sends, acks and resumes, the client sees
        /// every message exactly once and in order, with `seq` rising by one each time.
        #[test]
        fn client_sees_each_message_once_in_order(ops in proptest::collection::vec(0u8..4, 1..200)) {
            let mut o = Outbox::new(1000);
            let mut pushed = 0u64;
            let mut received: Vec<String> = Vec::new();
            let mut last_seq = 0u64;
            let mut in_flight: Vec<Outgoing> = Vec::new();
            for op in ops {
                match op {
                    0 => { pushed += 1; push(&mut o, pushed).unwrap(); }
                    1 => in_flight.extend(o.take_unsent(3)),
                    2 => {
                        // The transport delivers what is in flight.
                        for (seq, id) in decode(&std::mem::take(&mut in_flight)) {
                            proptest::prop_assert_eq!(seq, last_seq + 1);
                            last_seq = seq;
                            if id != "hello" { received.push(id); }
                        }
                    }
                    _ => {
                        // The transport dies, losing what is in flight; the client resumes.
                        in_flight.clear();
                        resume(&mut o, last_seq, "hello").unwrap();
                    }
                }
            }
            in_flight.extend(o.take_unsent(usize::MAX));
            for (seq, id) in decode(&in_flight) {
                proptest::prop_assert_eq!(seq, last_seq + 1);
                last_seq = seq;
                if id != "hello" { received.push(id); }
            }
            let expected: Vec<String> = (1..=pushed).map(|n| n.to_string()).collect();
            proptest::prop_assert_eq!(received, expected);
        }
    }
}

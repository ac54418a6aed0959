//! A session's numbered, bounded queue of server messages: what makes resume lossless.
//!
//! Every message gets the session's next `seq` when it is queued. Messages stay after they are
//! handed to a transport, until the client acknowledges them (`ack`, a resume's `last_seq`, a poll's
//! `after`), because a transport can die with messages in flight. The bound counts everything kept.
//! When it is reached, the oldest message already handed out is released (a resume that needs it
//! then fails loudly); if every kept message is still unsent, the client is not keeping up and the
//! push fails so the session can be ended rather than lose a message silently.

use std::{collections::VecDeque, time::Instant};

use switchboard_protocol::{ServerBody, ServerMessage};

use crate::Now;

struct Entry {
    seq: u64,
    ts: u64,
    /// When it was queued, so transports can measure the time to hand it over.
    queued_at: Instant,
    message: ServerMessage,
}

/// One encoded server message, ready for a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its seq in the recipient's session (SSE uses it as the event id).
    pub seq: u64,
    /// Its `type`, for metrics.
    pub kind: &'static str,
    /// When the core queued it (for a relayed message: when the sender's frame was handled).
    pub queued_at: Instant,
    /// The JSON text, identical on every transport.
    pub text: String,
}

/// See the module documentation.
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

    pub(crate) fn push(&mut self, message: ServerMessage, now: Now) -> Result<(), Overflow> {
        if self.entries.len() >= self.limit {
            match self.entries.front() {
                Some(oldest) if oldest.seq <= self.sent_upto => {
                    self.released_upto = oldest.seq;
                    self.entries.pop_front();
                }
                _ => return Err(Overflow),
            }
        }
        self.entries.push_back(Entry {
            seq: self.next_seq,
            ts: now.unix_ms,
            queued_at: now.at,
            message,
        });
        self.next_seq += 1;
        Ok(())
    }

    pub(crate) fn has_unsent(&self) -> bool {
        self.next_seq - 1 > self.sent_upto
    }

    /// Encodes up to `max` unsent messages and marks them sent.
    pub(crate) fn take_unsent(&mut self, max: usize) -> Vec<Frame> {
        let first = self.entries.partition_point(|e| e.seq <= self.sent_upto);
        let batch: Vec<Frame> = self
            .entries
            .range(first..)
            .take(max)
            .map(|e| Frame {
                seq: e.seq,
                kind: e.message.body.type_name(),
                queued_at: e.queued_at,
                text: e.message.encode(e.seq, e.ts),
            })
            .collect();
        self.sent_upto += batch.len() as u64;
        batch
    }

    /// Releases everything up to `seq` (clamped to what was sent).
    pub(crate) fn ack(&mut self, seq: u64) {
        let seq = seq.min(self.sent_upto);
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            self.entries.pop_front();
        }
        self.released_upto = self.released_upto.max(seq);
    }

    /// Restarts delivery after `last_seq`: releases what the client has, queues `hello` as the next
    /// seq the client expects, and renumbers what it missed after it, so the client sees `hello`
    /// first and then every missed message once, in order, with no gap in `seq`.
    pub(crate) fn resume(
        &mut self,
        last_seq: u64,
        hello: ServerMessage,
        now: Now,
    ) -> Result<usize, ResumeGap> {
        self.rewind(last_seq)?;
        // The hello of an earlier resume whose answer the client never got is not a missed
        // message: this hello replaces it (replaying it would hand the client a stale one).
        let missed: Vec<Entry> = std::mem::take(&mut self.entries)
            .into_iter()
            .filter(|e| !matches!(*e.message.body, ServerBody::Hello(_)))
            .collect();
        let replayed = missed.len();
        self.sent_upto = last_seq;
        self.next_seq = last_seq + 1;
        let hello = Entry {
            seq: 0,
            ts: now.unix_ms,
            queued_at: now.at,
            message: hello,
        };
        // The hello may put the outbox one over its bound until the transport takes it.
        for entry in std::iter::once(hello).chain(missed) {
            self.entries.push_back(Entry {
                seq: self.next_seq,
                ..entry
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::ServerEnvelope;

    fn now() -> Now {
        Now {
            at: Instant::now(),
            unix_ms: 0,
        }
    }

    fn msg(n: u64) -> ServerMessage {
        ServerMessage::new(ServerBody::Pong).with_id(Some(n.to_string().into()))
    }

    fn decode(batch: &[Frame]) -> Vec<(u64, String)> {
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
            o.push(msg(n), now()).unwrap();
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
            o.push(msg(n), now()).unwrap();
        }
        o.take_unsent(10);
        // The client got 1 and 2; 3 and 4 were in flight when the transport died.
        assert_eq!(o.resume(2, msg(99), now()), Ok(2));
        assert_eq!(
            decode(&o.take_unsent(10)),
            [(3, "99".into()), (4, "3".into()), (5, "4".into())]
        );
        o.push(msg(5), now()).unwrap();
        assert_eq!(decode(&o.take_unsent(10)), [(6, "5".into())]);
    }

    #[test]
    fn resume_from_a_released_or_unsent_position_fails() {
        let mut o = Outbox::new(10);
        for n in 1..=4 {
            o.push(msg(n), now()).unwrap();
        }
        o.take_unsent(3);
        o.ack(2);
        assert_eq!(o.resume(1, msg(0), now()), Err(ResumeGap::Released));
        assert_eq!(o.resume(4, msg(0), now()), Err(ResumeGap::Ahead));
        assert_eq!(o.resume(3, msg(0), now()), Ok(1));
    }

    #[test]
    fn full_outbox_releases_sent_messages_then_overflows_on_unsent() {
        let mut o = Outbox::new(3);
        for n in 1..=3 {
            o.push(msg(n), now()).unwrap();
        }
        o.take_unsent(2);
        o.push(msg(4), now()).unwrap(); // releases 1
        o.push(msg(5), now()).unwrap(); // releases 2
        assert_eq!(o.len(), 3);
        assert_eq!(o.push(msg(6), now()), Err(Overflow));
        assert_eq!(o.resume(0, msg(0), now()), Err(ResumeGap::Released));
    }

    #[test]
    fn rewind_resends_with_the_same_seqs() {
        let mut o = Outbox::new(10);
        for n in 1..=4 {
            o.push(msg(n), now()).unwrap();
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
        o.push(msg(1), now()).unwrap();
        o.push(msg(2), now()).unwrap();
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
            let mut in_flight: Vec<Frame> = Vec::new();
            for op in ops {
                match op {
                    0 => { pushed += 1; o.push(msg(pushed), now()).unwrap(); }
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
                        let hello = ServerMessage::new(ServerBody::Pong).with_id(Some("hello".into()));
                        o.resume(last_seq, hello, now()).unwrap();
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

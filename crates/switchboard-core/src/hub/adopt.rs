//! Cluster mode: a session moving between nodes. A client whose transport was lost may resume on
//! any node; the node it comes to adopts the session from its record in the shared store
//! ([`Hub::adopt`]), and the node it was on lets it go without a word to its peers
//! ([`Hub::moved`]). A node that drains or is cut off from the cluster lets all its sessions go
//! at once, their clients told to resume elsewhere ([`Hub::hand_over`]).
//!
//! What makes the move lossless is the session's durable log: every message a clustered hub
//! queues for its own session is written to the store with its seq and the position of the last
//! message from other nodes handed over before it ([`SharedOp::Logged`]), and every resume with
//! its `hello` ([`SharedOp::Resumed`]). Messages from other nodes are in a log of their own, by
//! position. [`replay`] puts the two back together into the outbox the session had, with the seqs
//! its client saw, so a resume after the client's `last_seq` works as on the node it was on.

use std::{collections::VecDeque, sync::Arc};

use switchboard_protocol::{PeerLeftReason, SignalError, renumber};

use super::{Attachment, Hub, durable};
use crate::{
    CloseReason, Event, Identity, LogRecord, Now, SessionId, SessionRecord, SharedOp,
    outbox::Outbox,
    session::{Link, Session},
};

/// A message as an outbox keeps it: its `type` and its text, which carries its seq.
pub type Kept = (&'static str, Arc<str>);

/// The session's log does not reach back far enough, or does not add up: it cannot be adopted.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreplayable;

/// The outbox a session's record describes: its messages in order, the first with seq
/// `first_seq`, as `(kind, text)` with each text carrying its seq. The messages from other nodes
/// go in where they were handed over, and after the last record those not yet handed over (or
/// handed over after it) follow in position order, as the node the session was on would have
/// queued them.
pub fn replay(record: &SessionRecord) -> Result<(u64, Vec<Kept>), Unreplayable> {
    let mut replay = Replay {
        record,
        entries: VecDeque::new(),
        first_seq: 0,
        handed: None,
    };
    for entry in &record.outbox {
        match entry {
            LogRecord::Queued {
                seq,
                inbound,
                kind,
                text,
            } => {
                replay.catch_up(*inbound)?;
                if replay.handed.is_none() {
                    replay.start(*seq, *inbound);
                }
                if *seq != replay.next_seq() {
                    return Err(Unreplayable);
                }
                replay.entries.push_back((kind, text.clone()));
            }
            LogRecord::Resumed {
                last_seq,
                inbound,
                hello,
            } => {
                replay.catch_up(*inbound)?;
                if replay.handed.is_none() {
                    replay.start(last_seq + 1, *inbound);
                }
                replay.resume(*last_seq, hello.clone())?;
            }
        }
    }
    if replay.handed.is_none() {
        // A session's log starts with its hello: an empty one is gone.
        return Err(Unreplayable);
    }
    let top = record.inbound_first + record.inbound.len() as u64;
    replay.catch_up(top.saturating_sub(1))?;
    let first = replay.first_seq;
    Ok((first, replay.entries.into_iter().collect()))
}

struct Replay<'a> {
    record: &'a SessionRecord,
    entries: VecDeque<Kept>,
    first_seq: u64,
    /// The inbound position handed over last; `None` before the first record.
    handed: Option<u64>,
}

impl Replay<'_> {
    fn start(&mut self, first_seq: u64, inbound: u64) {
        self.first_seq = first_seq;
        self.handed = Some(inbound);
    }

    fn next_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    /// Queues the messages from other nodes up to position `upto`, as they were handed over.
    fn catch_up(&mut self, upto: u64) -> Result<(), Unreplayable> {
        let Some(handed) = self.handed else {
            return Ok(());
        };
        for position in handed + 1..=upto {
            let i = position
                .checked_sub(self.record.inbound_first)
                .ok_or(Unreplayable)?;
            let (kind, text) = self.record.inbound.get(i as usize).ok_or(Unreplayable)?;
            let seq = self.next_seq();
            self.entries.push_back((kind, renumber(text, seq).into()));
        }
        self.handed = Some(handed.max(upto));
        Ok(())
    }

    /// What [`Outbox::resume`] did: `hello` after `last_seq`, then the rest renumbered.
    fn resume(&mut self, last_seq: u64, hello: Arc<str>) -> Result<(), Unreplayable> {
        if last_seq + 1 < self.first_seq || last_seq >= self.next_seq() {
            return Err(Unreplayable);
        }
        let keep = (last_seq + 1 - self.first_seq) as usize;
        let missed: Vec<_> = self.entries.drain(keep..).collect();
        self.entries.clear();
        self.first_seq = last_seq + 1;
        self.entries.push_back(("hello", hello));
        for (kind, text) in missed.into_iter().filter(|(k, _)| *k != "hello") {
            let seq = self.next_seq();
            self.entries.push_back((kind, renumber(&text, seq).into()));
        }
        Ok(())
    }
}

impl<S: Clone> Hub<S> {
    /// Takes over `id`, a session of another node, for a client that resumes it here after
    /// `last_seq`, with `identity` from its token. `record` is the session as the store holds
    /// it (claimed for this node, so its old node no longer acts for it). The client gets a new
    /// `hello`, then every message after `last_seq` once, in order, as from [`Hub::resume`]; its
    /// rooms' mirrors come from the record's views, and its peers notice nothing.
    pub fn adopt(
        &mut self,
        id: SessionId,
        identity: Identity,
        record: SessionRecord,
        last_seq: u64,
        now: Now,
    ) -> Result<Attachment, SignalError> {
        if self.sessions.contains_key(&id) {
            return Err(SignalError::Internal);
        }
        let inbound = (record.inbound_first + record.inbound.len() as u64).saturating_sub(1);
        let mut session = self.take_in(&id, identity, &record, now);
        let hello: Arc<str> = self
            .hello(&id, &session, true)
            .encode(last_seq + 1, now.unix_ms)
            .into();
        let resumed = replay(&record).ok().and_then(|(first_seq, entries)| {
            let mut outbox = Outbox::adopted(self.config.outbox_limit, first_seq, entries, now);
            let replayed = outbox.resume(last_seq, hello.clone(), now).ok()?;
            Some((outbox, replayed))
        });
        let Some((outbox, replayed)) = resumed else {
            // The logs do not hold what the client is missing (or hold less than it has): the
            // session can never be served, and ends now, as on the node it was on.
            self.end_taken_in(id, session, now);
            return Err(SignalError::SessionExpired(format!(
                "messages after seq {last_seq} are no longer kept"
            )));
        };
        session.outbox = outbox;
        self.events.push(Event::SessionResumed {
            session: id.clone(),
            user: session.identity.user.clone(),
            replayed,
        });
        let mut logging = durable::Logging::default();
        logging.inbound = inbound;
        self.shared.push(SharedOp::Resumed {
            session: id.clone(),
            index: logging.rewrite(last_seq + 1),
            last_seq,
            inbound,
            hello,
        });
        self.logging.insert(id.clone(), logging);
        self.sessions.insert(id.clone(), Box::new(session));
        Ok(Attachment {
            session: id,
            generation: 1,
        })
    }

    /// Ends `id`, a session of a node that is gone and whose client did not come back within
    /// its resume window, claimed by this node for it: its peers see `peer_left` `timeout`, as
    /// when a session of this node times out. `identity` is its user's (its only part used).
    pub fn expire(&mut self, id: SessionId, identity: Identity, record: &SessionRecord, now: Now) {
        if self.sessions.contains_key(&id) {
            return;
        }
        let session = self.take_in(&id, identity, record, now);
        self.end_taken_in(id, session, now);
    }

    /// A session of `record` as this hub's: in the rooms whose views still list it (a kick may
    /// have come meanwhile), mirrored before the session is this hub's so it enters them as it is
    /// in the view; counted without the caps (it was admitted where it started).
    fn take_in(
        &mut self,
        id: &SessionId,
        identity: Identity,
        record: &SessionRecord,
        now: Now,
    ) -> Session<S> {
        let mut rooms = Vec::new();
        for (room_id, view) in &record.rooms {
            if view.members.iter().any(|m| &m.session == id) {
                self.mirror_room(room_id, view.clone(), now);
                rooms.push(room_id.clone());
            }
        }
        self.count_moved_session(&identity);
        let mut session = self.attached_session(id, identity, Outbox::new(1), now);
        session.peer = record.peer.clone();
        session.rooms = rooms.into_boxed_slice();
        session.last_client_seq = record.last_client_seq;
        session
    }

    /// Ends a session [`Hub::take_in`] made, with no transport: its peers see `timeout`.
    fn end_taken_in(&mut self, id: SessionId, mut session: Session<S>, now: Now) {
        session.link = Link::Detached {
            since: now.at,
            reason: CloseReason::Expired,
        };
        self.sessions.insert(id.clone(), Box::new(session));
        self.close_session(&id, CloseReason::Expired, PeerLeftReason::Timeout, now);
        self.settle(now);
    }

    /// `id` was adopted by another node: it goes from this hub without a word to its peers (it
    /// is still in its rooms, on the other node), and a transport still holding it closes.
    pub fn moved(&mut self, id: &SessionId, now: Now) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        Self::signal(&mut self.ready, s);
        let rooms = std::mem::take(&mut s.rooms);
        let user = s.identity.user.clone();
        self.events.push(Event::SessionClosed {
            session: id.clone(),
            user,
            reason: CloseReason::Superseded,
        });
        self.forget(id);
        // It stays a member of its rooms, now of another node: what this node's members send
        // it is forwarded there. Mirrors no member of this node is in any more go.
        for room_id in rooms.iter() {
            self.release_mirror(room_id);
        }
        self.settle(now);
    }

    /// Lets every session of this hub go for its client to resume on another node: the node is
    /// draining, or it lost its lease and must not act on its view any more. Nothing is said to
    /// any peer and nothing is written to the shared store (the sessions stay members of their
    /// rooms there, and what they had is in their logs); each transport closes at once with
    /// [`CloseReason::Handover`], dropping what it had not sent (the logs have it, and a resume
    /// replays it). Every mirror goes with them. Returns how many sessions went.
    pub fn hand_over(&mut self, now: Now) -> usize {
        let ids: Vec<SessionId> = self.sessions.keys().cloned().collect();
        for id in &ids {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            // Unsent messages wait for commits that may never come (a fenced node's are
            // refused): the transport is not to wait for them.
            s.outbox = Outbox::new(1);
            self.logging.remove(id);
            if s.closing.is_some() {
                // Already ended, for the other nodes too: its transport closes as it was to.
                continue;
            }
            s.rooms = Box::default();
            let user = s.identity.user.clone();
            let attached = s.is_attached();
            if attached {
                s.closing = Some(CloseReason::Handover);
                Self::signal(&mut self.ready, s);
            }
            self.events.push(Event::SessionClosed {
                session: id.clone(),
                user,
                reason: CloseReason::Handover,
            });
            if !attached {
                self.forget(id);
            }
        }
        let rooms: Vec<_> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.remove_room(&room);
        }
        self.settle(now);
        ids.len()
    }
}

#[cfg(test)]
mod tests;

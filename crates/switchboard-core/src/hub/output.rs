//! What the hub hands back: messages go into their recipients' outboxes, the recipients' sinks are
//! signalled, transports take their messages ([`Hub::transmit`]), and the IO layer drains the
//! outputs ([`Hub::drain_outputs`]) after every call.
//!
//! A sink is signalled once per batch of work: the first message queued for a session after its
//! transport last took from the outbox signals it, later ones find it signalled. So a broadcast
//! to a busy recipient costs one output, and a transport that writes on the spot takes everything
//! queued by the same call at once.

use std::{sync::Arc, time::Instant};

use switchboard_protocol::{PeerLeftReason, RoomId, ServerMessage};

use super::{Attachment, Hub, durable::Logging};
use crate::{
    CloseReason, Event, MediaCommand, Now, SessionId, SharedOp, outbox::Outgoing, session::Session,
};

/// What the transport holding an attachment should do next ([`Hub::transmit`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Send these messages, in order. `more` says that more are queued, or a close follows: the
    /// transport comes back for them without being signalled again.
    Messages {
        /// The messages, encoded, with their seqs.
        batch: Vec<Outgoing>,
        /// Whether to call again at once.
        more: bool,
    },
    /// Close the transport; nothing more will come.
    Close(CloseReason),
    /// Nothing now; the sink is signalled when there is.
    Idle,
}

/// What the hub's inputs produced, drained with [`Hub::drain_outputs`] after every input.
#[derive(Debug)]
pub struct Outputs<S> {
    /// Sinks whose sessions have messages to take or must close: each one's transport calls
    /// [`Hub::transmit`]. A sink appears once however many messages wait for it.
    pub ready: Vec<S>,
    /// What happened, for the IO layer to log and count.
    pub events: Vec<Event>,
    /// What the media worker of SFU rooms must learn, in order (see [`MediaCommand`]).
    pub media: Vec<MediaCommand>,
    /// Lobby guests a host admitted: each needs a room token ([`Hub::admitted`]).
    pub admissions: Vec<super::Admission>,
    /// When to call [`Hub::handle_timeout`] next (`None`: no timers at all). An input may bring
    /// it forward; the next drain shows it.
    pub deadline: Option<Instant>,
    /// In cluster mode, what the calls changed in shared state and the messages for other nodes'
    /// sessions, in the order made, for the IO layer to commit to the shared store. Always empty
    /// for a hub that is not clustered.
    pub shared: Vec<SharedOp>,
    /// In cluster mode, rooms with members on other nodes that look idle by what this node
    /// knows: the IO layer reads their members' activity on every node and calls
    /// [`Hub::idle_check`]. Always empty for a hub that is not clustered.
    pub idle: Vec<RoomId>,
}

impl<S> Default for Outputs<S> {
    fn default() -> Self {
        Outputs {
            ready: Vec::new(),
            events: Vec::new(),
            media: Vec::new(),
            admissions: Vec::new(),
            deadline: None,
            shared: Vec::new(),
            idle: Vec::new(),
        }
    }
}

impl<S: Clone> Hub<S> {
    /// Moves what the calls since the last drain produced into `outputs` (appending to what it
    /// holds, so a caller may gather the outputs of several calls), and sets its deadline.
    pub fn drain_outputs(&mut self, outputs: &mut Outputs<S>) {
        outputs.ready.append(&mut self.ready);
        outputs.events.append(&mut self.events);
        outputs.media.append(&mut self.media);
        outputs.admissions.append(&mut self.admissions);
        if !self.shared.is_empty() {
            outputs.shared.append(&mut self.shared);
        }
        if !self.idle.is_empty() {
            outputs.idle.append(&mut self.idle);
        }
        outputs.deadline = self.timers.next();
    }

    /// Takes up to `max` messages for the transport holding `at`, or tells it to close. A
    /// transport that a newer one superseded is told [`CloseReason::Superseded`]; one whose
    /// session ended gets what was queued before the end, then the close.
    pub fn transmit(&mut self, at: &Attachment, max: usize) -> Transmit {
        let max = max.max(1);
        let Some(s) = self.sessions.get_mut(&at.session) else {
            return Transmit::Close(CloseReason::Expired);
        };
        if !at.is_latest(s) {
            return Transmit::Close(CloseReason::Superseded);
        }
        if let crate::session::Link::Detached { reason, .. } = s.link {
            return Transmit::Close(reason);
        }
        s.signalled = false;
        let mut max = max;
        // In cluster mode, only what is durable (`durable.rs`); its commit signals the sink.
        let mut capped = false;
        if self.clustered
            && let Some(durable) = durable_room(self.logging.get(&at.session), s.outbox.sent_upto())
        {
            if durable == 0 && s.outbox.has_unsent() {
                return Transmit::Idle;
            }
            capped = durable <= max;
            max = max.min(durable);
        }
        if !s.outbox.has_unsent() {
            if let Some(reason) = s.closing {
                self.forget(&at.session);
                return Transmit::Close(reason);
            }
            return Transmit::Idle;
        }
        let batch = s.outbox.take_unsent(max);
        let more = !capped && (s.outbox.has_unsent() || s.closing.is_some());
        // The transport comes back by itself while there is more: no signal needed till then.
        s.signalled = more;
        Transmit::Messages { batch, more }
    }

    /// Hands `s`'s sink out as ready unless it already is, or the session has none yet.
    pub(super) fn signal(ready: &mut Vec<S>, s: &mut Session<S>) {
        if !s.signalled
            && let Some(sink) = &s.sink
        {
            s.signalled = true;
            ready.push(sink.clone());
        }
    }

    /// Queues `message` for `to`.
    pub(super) fn push(&mut self, to: &SessionId, message: &ServerMessage, now: Now) {
        let kind = message.body.type_name();
        self.push_with(to, kind, now, |out, seq, ts| {
            message.encode_into(out, seq, ts)
        });
    }

    /// Queues a message of type `kind` that `encode` writes for a given `seq` and `ts`, and
    /// signals the recipient's sink.
    pub(super) fn push_with(
        &mut self,
        to: &SessionId,
        kind: &'static str,
        now: Now,
        encode: impl FnOnce(&mut String, u64, u64),
    ) {
        let Some(s) = self.sessions.get_mut(to) else {
            // Not a session of this node: in cluster mode, a member on another node.
            if self.clustered {
                self.scratch.clear();
                encode(&mut self.scratch, 0, now.unix_ms);
                self.shared.push(SharedOp::Forward {
                    to: to.clone(),
                    kind,
                    text: Arc::from(self.scratch.as_str()),
                });
            }
            return;
        };
        if s.closing.is_some() {
            return;
        }
        // Encoded into a reused buffer, so the text kept costs one allocation of its exact size.
        self.scratch.clear();
        let seq = s.outbox.next_seq();
        encode(&mut self.scratch, seq, now.unix_ms);
        let text: Arc<str> = Arc::from(self.scratch.as_str());
        // In cluster mode its durable copy goes to the store with the call's other writes.
        let logged = (self.clustered && !self.handing).then(|| text.clone());
        match s.outbox.push(kind, text, now) {
            Ok(()) => {
                Self::signal(&mut self.ready, s);
                if let Some(text) = logged {
                    let logging = self.logging.entry(to.clone()).or_default();
                    self.shared.push(SharedOp::Logged {
                        session: to.clone(),
                        index: logging.write(seq),
                        seq,
                        inbound: logging.inbound,
                        kind,
                        text,
                    });
                }
            }
            Err(_) => {
                if !self.overflowed.contains(to) {
                    self.overflowed.push(to.clone());
                }
            }
        }
    }

    /// Ends the sessions whose outbox overflowed during the call now ending: a client that does
    /// not take its messages is disconnected rather than silently lose one. In cluster mode, then
    /// drops the mirrors that no member of this node is in any more.
    pub(super) fn settle(&mut self, now: Now) {
        while let Some(id) = self.overflowed.pop() {
            self.close_session(
                &id,
                CloseReason::Overflow,
                PeerLeftReason::Disconnected,
                now,
            );
        }
        while let Some(room) = self.unmirrored.pop() {
            self.release_mirror(&room);
        }
    }
}

/// How many more messages after `sent_upto` are durable (`None`: all), for a session's
/// `logging`. Out of line, so the transmit path of a single node stays as small as it was.
#[inline(never)]
fn durable_room(logging: Option<&Logging>, sent_upto: u64) -> Option<usize> {
    let upto = logging?.sendable()?;
    Some(upto.saturating_sub(sent_upto) as usize)
}

#[cfg(test)]
mod tests;

//! Cluster mode: nothing reaches a client before it is durable. A message a clustered hub queues
//! for its own session is written to the session's outbox log in Redis by the next commit
//! ([`SharedOp::Logged`]); until that commit is done the transport does not take it (nor
//! anything queued after it). So whatever a client has, another node can rebuild after this one
//! dies (SIGKILL), and a sender whose message was lost with the node resends it, since the same
//! commit records the sender's `last_client_seq`. Messages from other nodes are durable when they
//! arrive (they come from the session's log).
//!
//! Hellos are the exception: a `hello` is sent at once, so `POST /v1/sessions` can answer with it.
//! A session whose first writes never reached Redis does not exist there (a resume elsewhere is
//! `session_expired`); after a resume's `hello` the replayed messages wait for the resume's record.

use std::collections::VecDeque;

use super::Hub;
use crate::SessionId;

/// What a clustered hub tracks of one of its sessions' logs.
#[derive(Debug, Default)]
pub(super) struct Logging {
    /// The position in its log of messages from other nodes of the last one handed over.
    pub(super) inbound: u64,
    /// Log writes made for it on this node (their index, from 1).
    written: u64,
    /// Writes not yet committed, oldest first: `(index, seq)`, where messages from `seq` on wait
    /// for the write `index`.
    waiting: VecDeque<(u64, u64)>,
}

impl Logging {
    /// A new log write that messages from `seq` on must wait for; its index.
    pub(super) fn write(&mut self, seq: u64) -> u64 {
        self.written += 1;
        self.waiting.push_back((self.written, seq));
        self.written
    }

    /// A resume renumbered the outbox: everything after its `hello` (seq `hello_seq`) waits
    /// for its record, which comes after every earlier write.
    pub(super) fn rewrite(&mut self, hello_seq: u64) -> u64 {
        self.waiting.clear();
        self.write(hello_seq + 1)
    }

    /// The highest seq the transport may take (`None`: any).
    pub(super) fn sendable(&self) -> Option<u64> {
        self.waiting.front().map(|(_, seq)| seq - 1)
    }
}

impl<S: Clone> Hub<S> {
    /// The log writes of `session` up to `index` are committed: what waited for them may go.
    pub fn durable(&mut self, session: &SessionId, index: u64) {
        let Some(logging) = self.logging.get_mut(session) else {
            return;
        };
        let before = logging.waiting.len();
        while logging.waiting.front().is_some_and(|(i, _)| *i <= index) {
            logging.waiting.pop_front();
        }
        if logging.waiting.len() != before
            && let Some(s) = self.sessions.get_mut(session)
        {
            Self::signal(&mut self.ready, s);
        }
    }
}

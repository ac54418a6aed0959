//! Sessions carried over HTTP: a stream (SSE or long-poll) attaches to a session that already
//! exists, and client messages arrive on separate requests that act for the session whichever
//! stream is attached.

use switchboard_protocol::{ServerMessage, SignalError};

use super::{Attachment, Hub, Refusal, sessions::Restart};
use crate::{Now, session::Link};

impl<S: Clone> Hub<S> {
    /// Attaches a new stream to `session` for `user`, delivering every message after `after` (the
    /// SSE `Last-Event-ID` or the poll's `after`) again with its own seq. The previous stream, if
    /// any, is superseded. Unlike [`Hub::resume`] no `hello` is sent: the client is continuing a
    /// stream, not announcing itself.
    pub fn attach(
        &mut self,
        session: &str,
        user: &str,
        after: u64,
        now: Now,
    ) -> Result<Attachment, SignalError> {
        self.restart(session, user, Restart::Continue { after }, now)
    }

    /// Checks that `session` exists, lives and belongs to `user`, before an HTTP request acts for
    /// it.
    pub fn check_owner(&self, session: &str, user: &str) -> Result<(), SignalError> {
        self.owned(session, user).map(|_| ())
    }

    /// Handles one client message that arrived on its own request (`POST .../messages`), exactly
    /// as a WebSocket message would be handled. Call [`Hub::check_owner`] first; a session that is gone
    /// drops the frame.
    pub fn receive_posted(
        &mut self,
        session: &str,
        user: &str,
        text: &str,
        now: Now,
    ) -> Result<(), Refusal> {
        let Some(id) = self.session_id(session) else {
            return Ok(());
        };
        self.handle_text(&id, text, now, |s| {
            let owned = &*s.identity.user == user && s.closing.is_none();
            if owned && s.is_attached() {
                s.link = Link::Attached { last_seen: now.at };
            }
            owned
        })
    }

    /// Queues `message` for `session` whichever stream is attached (the `error` answering a posted
    /// message goes on the stream too, as it would on a WebSocket).
    pub fn reply_to(&mut self, session: &str, message: ServerMessage, now: Now) {
        let Some(id) = self.session_id(session) else {
            return;
        };
        self.push(&id, &message, now);
        self.settle(now);
    }
}

#[cfg(test)]
mod tests;

//! Sessions: opening one, resuming it on a new transport, transports leaving, and ending it.
//!
//! A session outlives its transports: a lost transport leaves it detached for `resume_window`,
//! during which a new transport may take it over ([`Hub::resume`], or [`Hub::attach`] for HTTP
//! streams) and gets every message it missed, once and in order. Each transport holds an
//! [`Attachment`], so a transport that a newer one superseded can no longer act for the session.
//!
//! [`Hub::attach`]: crate::Hub::attach

use std::sync::Arc;

use switchboard_protocol::{Hello, PeerLeftReason, ServerBody, ServerMessage, SignalError};

use super::Hub;
use crate::{
    CloseReason, Event, Identity, Now, SessionId, SharedOp,
    deadlines::TimerKey,
    outbox::{Outbox, ResumeGap},
    rate::{AbuseMeter, TokenBucket},
    session::{Link, Session},
};

/// A transport's claim on a session. Calls with an attachment that a newer transport superseded are
/// ignored, so a dying connection can never act for the session after it resumed elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The session.
    pub session: SessionId,
    pub(super) generation: u64,
}

impl Attachment {
    /// Whether `s` may still act through this attachment: not superseded, attached, not ending.
    pub(super) fn is_current<S>(&self, s: &Session<S>) -> bool {
        s.generation == self.generation && s.is_attached() && s.closing.is_none()
    }

    /// Whether this attachment is the session's latest, whatever its state.
    pub(super) fn is_latest<S>(&self, s: &Session<S>) -> bool {
        s.generation == self.generation
    }
}

/// How a transport ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The client closed it on purpose: the session ends and its peers see `disconnected`.
    Closed,
    /// It broke: the session waits `resume_window` for the client to come back.
    Lost,
}

/// How a new transport takes over a session.
#[derive(Debug, Clone, Copy)]
pub(super) enum Restart {
    /// The client announces itself again: new `hello`, missed messages renumbered after it.
    Resume { last_seq: u64 },
    /// The client continues a stream: messages after `after` again, with their seqs.
    Continue { after: u64 },
}

impl Restart {
    /// The last server seq the client has.
    fn position(self) -> u64 {
        match self {
            Restart::Resume { last_seq } => last_seq,
            Restart::Continue { after } => after,
        }
    }
}

impl<S: Clone> Hub<S> {
    /// Starts a session for an authenticated identity; its first message is `hello`. Refused with
    /// `rate_limited` when the user or its address already holds its maximum of sessions.
    pub fn open(&mut self, identity: Identity, now: Now) -> Result<Attachment, SignalError> {
        self.count_session(&identity)?;
        let id = loop {
            let id = SessionId::random(&mut self.rng);
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let outbox = Outbox::new(self.config.outbox_limit);
        let mut session = self.attached_session(&id, identity, outbox, now);
        let hello: Arc<str> = self
            .hello(&id, &session, false)
            .encode(session.outbox.next_seq(), now.unix_ms)
            .into();
        // A fresh outbox has room for its first message.
        let _ = session.outbox.push("hello", hello.clone(), now);
        self.events.push(Event::SessionOpened {
            session: id.clone(),
            user: session.identity.user.clone(),
        });
        if self.clustered {
            self.shared.push(SharedOp::Attached {
                session: id.clone(),
                user: session.identity.user.clone(),
            });
            // Its hello goes out at once (see `durable.rs`): nothing waits for this write.
            self.shared.push(SharedOp::Logged {
                session: id.clone(),
                index: 0,
                seq: 1,
                inbound: 0,
                kind: "hello",
                text: hello,
            });
        }
        self.sessions.insert(id.clone(), Box::new(session));
        Ok(Attachment {
            session: id,
            generation: 1,
        })
    }

    /// A session of `identity` with `outbox`, attached to a new transport from `now`, with its
    /// heartbeat deadline scheduled, in no room yet.
    pub(super) fn attached_session(
        &mut self,
        id: &SessionId,
        identity: Identity,
        outbox: Outbox,
        now: Now,
    ) -> Session<S> {
        let rate = &self.config.rate;
        Session {
            identity,
            peer: None,
            rooms: Box::default(),
            last_client_seq: 0,
            outbox,
            link: Link::Attached { last_seen: now.at },
            last_active: now.at,
            generation: 1,
            closing: None,
            signalled: false,
            sink: None,
            timer: self.timers.schedule(
                TimerKey::Session(id.clone()),
                now.at + self.config.heartbeat_timeout,
            ),
            messages: TokenBucket::new(rate.messages(), now.at),
            candidates: TokenBucket::new(rate.candidates(), now.at),
            abuse: AbuseMeter::new(now.at),
        }
    }

    /// Gives the transport holding `at` its sink: the hub hands it out in [`crate::Outputs::ready`]
    /// whenever the session has frames to take or a close to act on. Signalled at once, so the
    /// transport takes what is already queued (a `hello`, a resume's replay). Ignored for an
    /// attachment that is no longer the session's latest.
    pub fn connect(&mut self, at: &Attachment, sink: S) {
        let Some(s) = self.sessions.get_mut(&at.session) else {
            return;
        };
        if !at.is_latest(s) {
            return;
        }
        s.sink = Some(sink);
        s.signalled = false;
        Self::signal(&mut self.ready, s);
    }

    /// Removes a session that has ended and whose transport is gone.
    pub(super) fn forget(&mut self, id: &SessionId) {
        if let Some(s) = self.sessions.remove(id) {
            if self.clustered {
                self.logging.remove(id);
            }
            self.uncount_session(&s.identity);
            let sessions = &self.sessions;
            self.timers.sweep_sessions(sessions.len(), |id, token| {
                sessions.get(id).is_some_and(|s| s.timer == token)
            });
        }
    }

    /// Resumes `session` for `user` on a new transport. The client has every server message up to
    /// `last_seq`; it gets a new `hello`, then everything after `last_seq` once, in order.
    pub fn resume(
        &mut self,
        session: &str,
        user: &str,
        last_seq: u64,
        now: Now,
    ) -> Result<Attachment, SignalError> {
        self.restart(session, user, Restart::Resume { last_seq }, now)
    }

    /// Puts a new transport on `session`, superseding the previous one. A refusal is recorded, and
    /// a session whose client needs messages that are no longer kept can never be served, so it
    /// ends now rather than linger until its window passes.
    pub(super) fn restart(
        &mut self,
        session: &str,
        user: &str,
        how: Restart,
        now: Now,
    ) -> Result<Attachment, SignalError> {
        let result = self.try_restart(session, user, how, now);
        if let Err(e) = &result {
            self.events.push(Event::ResumeFailed { code: e.code() });
            let unservable = matches!(e, SignalError::SessionExpired(_))
                && self
                    .sessions
                    .get(session)
                    .is_some_and(|s| !s.is_attached() && s.closing.is_none());
            if unservable && let Some(id) = self.session_id(session) {
                self.close_session(&id, CloseReason::Expired, PeerLeftReason::Timeout, now);
                self.settle(now);
            }
        }
        result
    }

    fn try_restart(
        &mut self,
        session: &str,
        user: &str,
        how: Restart,
        now: Now,
    ) -> Result<Attachment, SignalError> {
        let from = how.position();
        let hello: Option<Arc<str>> = match how {
            // The hello becomes the next seq after the client's position.
            Restart::Resume { .. } => {
                let (id, s) = self.owned(session, user)?;
                Some(self.hello(id, s, true).encode(from + 1, now.unix_ms).into())
            }
            Restart::Continue { .. } => None,
        };
        let id = self.owned(session, user)?.0.clone();
        let s = self.sessions.get_mut(&id).ok_or(SignalError::Internal)?;
        let was_detached = !s.is_attached();
        let replayed = match &hello {
            Some(hello) => s.outbox.resume(from, hello.clone(), now),
            None => s.outbox.rewind(from),
        }
        .map_err(|gap| gap_error(gap, from))?;
        if self.clustered
            && let Some(hello) = hello
        {
            let logging = self.logging.entry(id.clone()).or_default();
            self.shared.push(SharedOp::Resumed {
                session: id.clone(),
                index: logging.rewrite(from + 1),
                last_seq: from,
                inbound: logging.inbound,
                hello,
            });
        }
        s.generation += 1;
        // The superseded transport hears of it and closes; the new one brings its own sink.
        Self::signal(&mut self.ready, s);
        s.sink = None;
        s.link = Link::Attached { last_seen: now.at };
        let attachment = Attachment {
            session: id,
            generation: s.generation,
        };
        let user = s.identity.user.clone();
        if matches!(how, Restart::Resume { .. }) || was_detached {
            self.events.push(Event::SessionResumed {
                session: attachment.session.clone(),
                user,
                replayed,
            });
        }
        Ok(attachment)
    }

    /// Whether this hub holds `session` (in cluster mode, another node may).
    pub fn holds(&self, session: &str) -> bool {
        self.sessions.contains_key(session)
    }

    /// `session`, with its own id, if it exists, has not ended and belongs to `user`.
    pub(super) fn owned(
        &self,
        session: &str,
        user: &str,
    ) -> Result<(&SessionId, &Session<S>), SignalError> {
        let (id, s) = self.sessions.get_key_value(session).ok_or_else(|| {
            SignalError::SessionExpired("no such session; it may have expired".into())
        })?;
        if &*s.identity.user != user {
            return Err(SignalError::Forbidden(
                "the session belongs to another user".into(),
            ));
        }
        if s.closing.is_some() {
            return Err(SignalError::SessionExpired("the session has ended".into()));
        }
        Ok((id, s))
    }

    pub(super) fn hello(&self, id: &SessionId, s: &Session<S>, resumed: bool) -> ServerMessage {
        ServerMessage::new(ServerBody::Hello(Hello {
            session: id.to_string(),
            peer: s.peer.clone(),
            heartbeat_ms: self.config.heartbeat_interval.as_millis() as u64,
            resume_ms: self.config.resume_window.as_millis() as u64,
            limits: self.config.limits.clone(),
            last_client_seq: s.last_client_seq,
            resumed,
        }))
    }

    /// The session's own id for its text (as an HTTP path names it), for the calls that take a
    /// `SessionId`.
    pub(super) fn session_id(&self, text: &str) -> Option<SessionId> {
        self.sessions.get_key_value(text).map(|(id, _)| id.clone())
    }

    pub(super) fn current(&mut self, at: &Attachment) -> Option<&mut Session<S>> {
        self.sessions
            .get_mut(&at.session)
            .map(|s| &mut **s)
            .filter(|s| at.is_current(s))
    }

    /// Records that the transport is alive (a heartbeat answer or any frame).
    pub fn heard_from(&mut self, at: &Attachment, now: Now) {
        if let Some(s) = self.current(at) {
            s.link = Link::Attached { last_seen: now.at };
        }
    }

    /// The transport ended.
    pub fn disconnect(&mut self, at: &Attachment, how: Disconnect, now: Now) {
        let Some(s) = self.sessions.get_mut(&at.session) else {
            return;
        };
        if !at.is_latest(s) || !s.is_attached() {
            return;
        }
        s.sink = None;
        if s.closing.is_some() {
            self.forget(&at.session);
            return;
        }
        match how {
            Disconnect::Closed => {
                // The transport is gone, so nothing is left to drain: the session ends now.
                s.link = Link::Detached {
                    since: now.at,
                    reason: CloseReason::ClientClosed,
                };
                self.close_session(
                    &at.session,
                    CloseReason::ClientClosed,
                    PeerLeftReason::Disconnected,
                    now,
                );
            }
            Disconnect::Lost => self.detach(&at.session, CloseReason::TransportLost, now),
        }
        self.settle(now);
    }

    /// The session's transport is gone (or must go): it waits `resume_window` for a new one.
    pub(super) fn detach(&mut self, id: &SessionId, reason: CloseReason, now: Now) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        s.link = Link::Detached {
            since: now.at,
            reason,
        };
        Self::signal(&mut self.ready, s);
        // The resume deadline may come before the heartbeat deadline the timer holds.
        s.timer = self.timers.schedule(
            TimerKey::Session(id.clone()),
            now.at + self.config.resume_window,
        );
        self.events.push(Event::SessionDetached {
            session: id.clone(),
            reason,
        });
        if self.config.resume_window.is_zero() {
            self.close_session(id, CloseReason::Expired, PeerLeftReason::Timeout, now);
        }
    }

    /// Ends a session: it leaves its rooms (peers see `left_as`), and its transport drains what is
    /// queued and closes with `reason`; a session with no transport is removed at once.
    pub(super) fn close_session(
        &mut self,
        id: &SessionId,
        reason: CloseReason,
        left_as: PeerLeftReason,
        now: Now,
    ) {
        let Some(s) = self.sessions.get(id) else {
            return;
        };
        if s.closing.is_some() {
            return;
        }
        for room in s.rooms.clone() {
            self.leave_room(id, &room, left_as, None, now);
            self.mirror_may_go(room);
        }
        self.withdraw_knock(id, now);
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        self.events.push(Event::SessionClosed {
            session: id.clone(),
            user: s.identity.user.clone(),
            reason,
        });
        if self.clustered {
            // Ended for the other nodes now, while its transport drains what is queued: nothing
            // more is queued for a closing session.
            self.shared.push(SharedOp::Ended {
                session: id.clone(),
            });
        }
        if s.is_attached() {
            s.closing = Some(reason);
            Self::signal(&mut self.ready, s);
        } else {
            self.forget(id);
        }
    }

    /// Closes every room and session for a server shutdown: members get `room_closed`, then every
    /// transport drains and closes with [`CloseReason::Shutdown`].
    ///
    /// A clustered hub closes no room, since other nodes' members stay: its sessions leave their
    /// rooms (their peers see `disconnected`) and their transports close.
    pub fn shutdown(&mut self, now: Now) {
        let left_as = if self.clustered {
            PeerLeftReason::Disconnected
        } else {
            let rooms: Vec<_> = self.rooms.keys().cloned().collect();
            for room in rooms {
                self.close_room(&room, switchboard_protocol::RoomClosedReason::Shutdown, now);
            }
            PeerLeftReason::RoomClosed
        };
        let ids: Vec<SessionId> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.close_session(&id, CloseReason::Shutdown, left_as, now);
        }
        self.settle(now);
    }
}

fn gap_error(gap: ResumeGap, last_seq: u64) -> SignalError {
    match gap {
        ResumeGap::Released => {
            SignalError::SessionExpired(format!("messages after seq {last_seq} are no longer kept"))
        }
        ResumeGap::Ahead => SignalError::invalid(format!("seq {last_seq} is above any seq sent")),
    }
}

#[cfg(test)]
mod tests;

//! The hub: every session and room of a node, and every rule of the contract that needs state.
//!
//! One owner holds the hub (the server keeps it behind a lock taken only for synchronous calls),
//! so membership, outboxes and rooms can never disagree. Each public method takes the current
//! [`Now`]; messages for clients go into the recipients' outboxes and wake their transports; what
//! happened is queued as [`Event`]s.

use std::{
    collections::HashMap,
    sync::Arc,
    task::{Poll, Waker},
};

use std::net::IpAddr;

use rand::RngCore;
use switchboard_protocol::{
    ClientFrame, ClientMessage, Envelope, ErrorBody, ErrorCode, Hello, Joined, Left, Mode,
    ModeChanged, Notice, Payload, PeerId, PeerInfo, PeerLeft, PeerLeftReason, PeerRef, Replaced,
    Role, RoomClosed, RoomId, RoomRef, ServerBody, ServerMessage, SignalError, SignalKind,
    parse_client_frame,
};

use crate::{
    CloseReason, CoreConfig, Event, Identity, Now, RateLimits, SessionId,
    outbox::{Frame, Outbox, ResumeGap},
    rate::{AbuseMeter, TokenBucket},
    room::{Member, Room},
    session::{Link, Session, Sessions},
};

/// A transport's claim on a session. Calls with an attachment that a newer transport superseded are
/// ignored, so a dying connection can never act for the session after it resumed elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The session.
    pub session: SessionId,
    generation: u64,
}

impl Attachment {
    /// Whether `s` may still act through this attachment: not superseded, attached, not ending.
    fn is_current(&self, s: &Session) -> bool {
        s.generation == self.generation && s.is_attached() && s.closing.is_none()
    }
}

/// What a transport should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Send these frames, in order.
    Messages(Vec<Frame>),
    /// Close the transport; nothing more will come.
    Close(CloseReason),
}

/// Why a client frame was not acted on.
#[derive(Debug)]
pub enum Refusal {
    /// Refused: answer the sender with this `error`.
    Reply(Box<ServerMessage>),
    /// Dropped by a rate limit. Nothing is answered for the message itself (a flood must not be
    /// echoed); the hub warns the sender at most once a second on its own.
    Dropped,
}

impl From<Box<ServerMessage>> for Refusal {
    fn from(reply: Box<ServerMessage>) -> Self {
        Refusal::Reply(reply)
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

/// Counts for gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Sessions, attached or waiting for a resume.
    pub sessions: usize,
    /// Sessions with a transport attached.
    pub attached: usize,
    /// Rooms.
    pub rooms: usize,
    /// Room memberships.
    pub members: usize,
}

/// See the module documentation.
pub struct Hub {
    config: CoreConfig,
    sessions: Sessions,
    /// Boxed, like the sessions, so the table's spare capacity stays small.
    rooms: HashMap<RoomId, Box<Room>>,
    rng: Box<dyn RngCore + Send>,
    events: Vec<Event>,
    /// Sessions whose outbox overflowed during the current call; ended once the call's own work is
    /// done, so a broadcast never changes the membership it is iterating.
    overflowed: Vec<SessionId>,
    /// Live sessions per user and per client address, for the session caps.
    sessions_by_user: HashMap<Arc<str>, usize>,
    sessions_by_address: HashMap<IpAddr, usize>,
    /// Join budgets per client address; full buckets are forgotten by the timers.
    joins_by_address: HashMap<IpAddr, TokenBucket>,
    /// Where messages are encoded before their text is moved into an outbox.
    scratch: String,
}

impl std::borrow::Borrow<str> for SessionId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hub {
    /// A hub with no sessions. `rng` makes session and peer ids; pass a seeded one in tests.
    pub fn new(config: CoreConfig, rng: impl RngCore + Send + 'static) -> Self {
        Hub {
            config,
            sessions: Sessions::default(),
            rooms: HashMap::new(),
            rng: Box::new(rng),
            events: Vec::new(),
            overflowed: Vec::new(),
            sessions_by_user: HashMap::new(),
            sessions_by_address: HashMap::new(),
            joins_by_address: HashMap::new(),
            scratch: String::new(),
        }
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Starts a session for an authenticated identity; its first message is `hello`. Refused with
    /// `rate_limited` when the user or its address already holds its maximum of sessions.
    pub fn open(&mut self, identity: Identity, now: Now) -> Result<Attachment, SignalError> {
        let per_user = self.sessions_by_user.get(&identity.user).copied();
        if per_user.unwrap_or(0) >= self.config.max_sessions_per_user {
            return Err(SignalError::RateLimited(format!(
                "this user already has {} sessions",
                self.config.max_sessions_per_user
            )));
        }
        if let Some(address) = identity.address {
            let per_address = self.sessions_by_address.get(&address).copied();
            if per_address.unwrap_or(0) >= self.config.max_sessions_per_address {
                return Err(SignalError::RateLimited(format!(
                    "this address already has {} sessions",
                    self.config.max_sessions_per_address
                )));
            }
            *self.sessions_by_address.entry(address).or_default() += 1;
        }
        *self
            .sessions_by_user
            .entry(identity.user.clone())
            .or_default() += 1;
        let id = loop {
            let id = SessionId::random(&mut self.rng);
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let rate = &self.config.rate;
        let mut session = Session {
            id: id.clone(),
            identity,
            peer: None,
            rooms: Vec::new(),
            last_client_seq: 0,
            outbox: Outbox::new(self.config.outbox_limit),
            link: Link::Attached { last_seen: now.at },
            last_active: now.at,
            generation: 1,
            closing: None,
            waker: None,
            messages: TokenBucket::new(rate.messages_per_sec, rate.message_burst, now.at),
            candidates: TokenBucket::new(rate.candidates_per_sec, rate.candidate_burst, now.at),
            abuse: AbuseMeter::new(now.at),
        };
        let hello = self
            .hello(&session, false)
            .encode(session.outbox.next_seq(), now.unix_ms);
        // A fresh outbox has room for its first message.
        let _ = session.outbox.push("hello", hello.into(), now);
        self.events.push(Event::SessionOpened {
            session: id.clone(),
            user: session.identity.user.clone(),
        });
        self.sessions.insert(id.clone(), Box::new(session));
        Ok(Attachment {
            session: id,
            generation: 1,
        })
    }

    /// Removes a session that has ended and whose transport is gone.
    fn forget(&mut self, id: &SessionId) {
        let Some(s) = self.sessions.remove(id) else {
            return;
        };
        if let Some(n) = self.sessions_by_user.get_mut(&s.identity.user) {
            *n -= 1;
            if *n == 0 {
                self.sessions_by_user.remove(&s.identity.user);
            }
        }
        if let Some(address) = s.identity.address
            && let Some(n) = self.sessions_by_address.get_mut(&address)
        {
            *n -= 1;
            if *n == 0 {
                self.sessions_by_address.remove(&address);
            }
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
    fn restart(
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
        let hello = match how {
            // The hello becomes the next seq after the client's position.
            Restart::Resume { .. } => Some(
                self.hello(self.owned(session, user)?, true)
                    .encode(from + 1, now.unix_ms),
            ),
            Restart::Continue { .. } => None,
        };
        let s = self.owned_mut(session, user)?;
        let was_detached = !s.is_attached();
        let replayed = match hello {
            Some(hello) => s.outbox.resume(from, hello.into(), now),
            None => s.outbox.rewind(from),
        }
        .map_err(|gap| gap_error(gap, from))?;
        s.generation += 1;
        s.wake();
        s.link = Link::Attached { last_seen: now.at };
        let attachment = Attachment {
            session: s.id.clone(),
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

    /// `session`, if it exists, has not ended and belongs to `user`.
    fn owned(&self, session: &str, user: &str) -> Result<&Session, SignalError> {
        let s = self.sessions.get(session).ok_or_else(|| {
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
        Ok(s)
    }

    fn owned_mut(&mut self, session: &str, user: &str) -> Result<&mut Session, SignalError> {
        self.owned(session, user)?;
        self.sessions
            .get_mut(session)
            .map(|s| &mut **s)
            .ok_or(SignalError::Internal)
    }

    fn hello(&self, s: &Session, resumed: bool) -> ServerMessage {
        ServerMessage::new(ServerBody::Hello(Hello {
            session: s.id.to_string(),
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
    fn session_id(&self, text: &str) -> Option<SessionId> {
        self.sessions.get(text).map(|s| s.id.clone())
    }

    fn current(&mut self, at: &Attachment) -> Option<&mut Session> {
        self.sessions
            .get_mut(&at.session)
            .map(|s| &mut **s)
            .filter(|s| at.is_current(s))
    }

    /// Handles one client frame. `Err` is the `error` to answer with (the caller queues it with
    /// [`Hub::reply`], or returns it in an HTTP answer). Frames from a superseded transport are
    /// dropped.
    pub fn receive(&mut self, at: &Attachment, text: &str, now: Now) -> Result<(), Refusal> {
        self.handle_text(&at.session, text, now, |s| {
            let current = at.is_current(s);
            if current {
                s.link = Link::Attached { last_seen: now.at };
            }
            current
        })
    }

    /// The one path every client frame takes, whatever carried it: parse and validate, apply the
    /// `seq` guard and the clock window, then act. `accept` decides whether the session may send
    /// it (a frame it refuses is dropped), and notes the transport's activity: one lookup serves
    /// both.
    ///
    /// The session is named by a `SessionId` rather than its text: the attachment's is the
    /// session's own `Arc`, so the lookup's key comparison is a pointer comparison and nothing
    /// touches the id's text, a cold line on every message.
    fn handle_text(
        &mut self,
        session_id: &SessionId,
        text: &str,
        now: Now,
        accept: impl FnOnce(&mut Session) -> bool,
    ) -> Result<(), Refusal> {
        let limits = &self.config.limits;
        let Some(session) = self.sessions.get_mut(session_id) else {
            return Ok(());
        };
        if !accept(session) {
            return Ok(());
        }
        let parsed = parse_client_frame(text, limits);
        let window = limits.ts_skew_ms;
        let last = session.last_client_seq;
        let (frame, id, leave) = match parsed {
            Ok(frame) => {
                let id = frame.header.id.clone();
                let seq = frame.header.seq;
                if seq <= last {
                    let e = SignalError::DuplicateSeq { seq, last };
                    return Err(self
                        .rejection(e, id, Some(frame.message.type_name()), Some(seq))
                        .into());
                }
                session.last_client_seq = seq;
                let skew_ms = frame.header.ts.abs_diff(now.unix_ms);
                if skew_ms > window {
                    let e = SignalError::StaleTs {
                        skew_ms,
                        window_ms: window,
                    };
                    return Err(self
                        .rejection(e, id, Some(frame.message.type_name()), Some(seq))
                        .into());
                }
                // A valid message, whatever becomes of it, keeps the member's rooms from idling
                // out. It is noted on the session alone, so a message costs no room lookups: a
                // room takes up its members' activity when it looks idle, and a member's when it
                // leaves (so a `leave` is noted only once it is done: it is no activity in the room
                // it leaves).
                let leave = matches!(frame.message, ClientMessage::Leave { .. });
                if !leave {
                    session.last_active = now.at;
                }
                (frame, id, leave)
            }
            Err(rejected) => {
                let seq = rejected.header.as_ref().map(|h| h.seq);
                let error = match seq {
                    Some(seq) if seq <= last => SignalError::DuplicateSeq { seq, last },
                    Some(seq) => {
                        session.last_client_seq = seq;
                        rejected.error
                    }
                    None => rejected.error,
                };
                let type_name = rejected.type_name.as_deref();
                return Err(self.rejection(error, rejected.id, type_name, seq).into());
            }
        };
        let admitted = Self::admit(
            session,
            &self.config.rate,
            &mut self.joins_by_address,
            &mut self.rooms,
            &frame.message,
            now,
        );
        let type_name = frame.message.type_name();
        let room = frame.message.room().cloned();
        let seq = frame.header.seq;
        let dispatched = match admitted {
            Ok(()) => Some(self.dispatch(session_id, frame, now)),
            Err(scope) => {
                self.throttled(session_id, scope, now);
                None
            }
        };
        if leave {
            self.mark_active(session_id, now);
        }
        self.settle(now);
        let Some(result) = dispatched else {
            return Err(Refusal::Dropped);
        };
        match result {
            Ok(()) => {
                self.events.push(Event::Received { kind: type_name });
                Ok(())
            }
            Err(e) => {
                let mut reply = self.rejection(e, id, Some(type_name), Some(seq));
                reply.room = room.as_ref().map(RoomRef::owned);
                Err(reply.into())
            }
        }
    }

    /// Charges `message` to the budgets it draws on; `Err` names the one that is spent.
    /// Takes the session and the tables it draws on apart from the hub, so the caller's lookup
    /// of the sender serves.
    fn admit(
        s: &mut Session,
        rate: &RateLimits,
        joins_by_address: &mut HashMap<IpAddr, TokenBucket>,
        rooms: &mut HashMap<RoomId, Box<Room>>,
        message: &ClientMessage,
        now: Now,
    ) -> Result<(), &'static str> {
        let own = match message {
            ClientMessage::Signal {
                kind: SignalKind::Candidate,
                ..
            } => (&mut s.candidates, rate.candidates_per_sec, "candidate"),
            _ => (&mut s.messages, rate.messages_per_sec, "session"),
        };
        if own.1 > 0.0 && !own.0.try_take(now.at) {
            return Err(own.2);
        }
        match message {
            ClientMessage::Join { .. } => {
                if let Some(address) = s.identity.address
                    && rate.joins_per_sec_per_address > 0.0
                {
                    let bucket = joins_by_address.entry(address).or_insert_with(|| {
                        TokenBucket::new(
                            rate.joins_per_sec_per_address,
                            rate.join_burst_per_address,
                            now.at,
                        )
                    });
                    if !bucket.try_take(now.at) {
                        return Err("address");
                    }
                }
            }
            ClientMessage::Signal { room, .. } | ClientMessage::Message { room, .. } => {
                // Only members spend a room's budget: anyone else is refused `not_in_room` by
                // `dispatch`, and must not be able to drain the budget of a room it is not in.
                if rate.room_messages_per_sec > 0.0
                    && let Some(r) = rooms.get_mut(room.as_str())
                    && r.member_of_session(&s.id).is_some()
                    && !r.budget.try_take(now.at)
                {
                    return Err("room");
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A message of `id` was dropped: warn it at most once a second, and end it once the drops
    /// show sustained abuse.
    fn throttled(&mut self, id: &SessionId, scope: &'static str, now: Now) {
        let rate = &self.config.rate;
        let budget = match scope {
            "candidate" => rate.candidates_per_sec,
            _ => rate.messages_per_sec,
        };
        let threshold = (budget * (rate.abuse_factor - 1.0)).max(1.0) as u32;
        let window = (rate.abuse_window_ms / 1000).max(1) as u32;
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let abusive = s.abuse.dropped(now.at, threshold, window);
        let warned = !abusive && s.abuse.may_warn(now.at);
        self.events.push(Event::RateLimited {
            scope,
            session: id.clone(),
            warned,
        });
        if abusive {
            self.close_session(id, CloseReason::Abuse, PeerLeftReason::Disconnected, now);
        } else if warned {
            let notice = ServerBody::Warning(Notice {
                code: ErrorCode::RateLimited,
                message: format!("messages over the {scope} budget are being dropped; slow down"),
            });
            self.push(id, &ServerMessage::new(notice), now);
        }
    }

    /// Notes a `leave` as activity once it is done (see [`Hub::handle_text`]).
    fn mark_active(&mut self, id: &SessionId, now: Now) {
        if let Some(s) = self.sessions.get_mut(id) {
            s.last_active = now.at;
        }
    }

    fn rejection(
        &mut self,
        error: SignalError,
        id: Option<Arc<str>>,
        type_name: Option<&str>,
        client_seq: Option<u64>,
    ) -> Box<ServerMessage> {
        self.events.push(Event::Rejected { code: error.code() });
        let mut body = ErrorBody::from_error(&error);
        body.type_name = type_name.map(str::to_owned);
        body.client_seq = client_seq;
        Box::new(ServerMessage::new(ServerBody::Error(body)).with_id(id))
    }

    /// Queues `message` for the attached session (a rejection, or a transport-level warning).
    pub fn reply(&mut self, at: &Attachment, message: ServerMessage, now: Now) {
        if self.current(at).is_some() {
            self.push(&at.session, &message, now);
            self.settle(now);
        }
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
        if s.generation != at.generation || !s.is_attached() {
            return;
        }
        s.waker = None;
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

    /// What the transport holding `at` should send next. Pending means nothing yet. `waker` is
    /// woken when more is queued or the transport must close; it also stays registered when
    /// messages are handed out (and is woken at once if more remain after the batch), so a
    /// transport that writes them from another task (see the WebSocket transport) hears of the
    /// next ones without polling again.
    pub fn poll_transmit(&mut self, at: &Attachment, waker: &Waker, max: usize) -> Poll<Transmit> {
        let max = max.max(1);
        let Some(s) = self.sessions.get_mut(&at.session) else {
            return Poll::Ready(Transmit::Close(CloseReason::Expired));
        };
        if s.generation != at.generation {
            return Poll::Ready(Transmit::Close(CloseReason::Superseded));
        }
        if let Link::Detached { reason, .. } = s.link {
            return Poll::Ready(Transmit::Close(reason));
        }
        if let Some(reason) = s.closing.filter(|_| !s.outbox.has_unsent()) {
            self.forget(&at.session);
            return Poll::Ready(Transmit::Close(reason));
        }
        match &s.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => s.waker = Some(waker.clone()),
        }
        if s.outbox.has_unsent() {
            let frames = s.outbox.take_unsent(max);
            if s.outbox.has_unsent() || s.closing.is_some() {
                // More to do after this batch: said at once, so a transport that does not poll
                // again right away still gets to it.
                s.wake();
            }
            return Poll::Ready(Transmit::Messages(frames));
        }
        Poll::Pending
    }

    /// Runs the timers: lost transports, expired resume windows, idle rooms. Call it regularly
    /// (the server does every few hundred milliseconds); all deadlines are relative to `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        let heartbeat = self.config.heartbeat_timeout;
        let resume = self.config.resume_window;
        let mut silent = Vec::new();
        let mut expired = Vec::new();
        let mut finished = Vec::new();
        for s in self.sessions.values() {
            if s.closing.is_some() {
                // An ended session whose transport took everything but never came back for the
                // close (a long-poll client stops polling after `replaced`) is forgotten once it
                // has been silent as long as a lost transport would be.
                if let Link::Attached { last_seen } = s.link
                    && !s.outbox.has_unsent()
                    && now.at.duration_since(last_seen) >= heartbeat
                {
                    finished.push(s.id.clone());
                }
                continue;
            }
            match s.link {
                Link::Attached { last_seen } if now.at.duration_since(last_seen) >= heartbeat => {
                    silent.push(s.id.clone());
                }
                Link::Detached { since, .. } if now.at.duration_since(since) >= resume => {
                    expired.push(s.id.clone());
                }
                _ => {}
            }
        }
        for id in silent {
            self.detach(&id, CloseReason::HeartbeatTimeout, now);
        }
        for id in expired {
            self.close_session(&id, CloseReason::Expired, PeerLeftReason::Timeout, now);
        }
        for id in finished {
            self.forget(&id);
        }
        let idle = self.config.room_idle_timeout;
        let sessions = &self.sessions;
        let idle_rooms: Vec<RoomId> = self
            .rooms
            .values_mut()
            .filter_map(|r| {
                if now.at.duration_since(r.last_activity) < idle {
                    return None;
                }
                let members = r.members.iter().filter_map(|m| sessions.get(&m.session));
                if let Some(last) = members.map(|s| s.last_active).max() {
                    r.last_activity = r.last_activity.max(last);
                }
                (now.at.duration_since(r.last_activity) >= idle).then(|| r.id.clone())
            })
            .collect();
        for room in idle_rooms {
            self.close_room(&room, "idle", now);
        }
        self.joins_by_address
            .retain(|_, bucket| !bucket.is_full(now.at));
        self.settle(now);
    }

    /// Closes every room and session for a server shutdown: members get `room_closed`, then every
    /// transport drains and closes with [`CloseReason::Shutdown`].
    pub fn shutdown(&mut self, now: Now) {
        let rooms: Vec<RoomId> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.close_room(&room, "shutdown", now);
        }
        let ids: Vec<SessionId> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.close_session(&id, CloseReason::Shutdown, PeerLeftReason::RoomClosed, now);
        }
        self.settle(now);
    }

    /// Takes the events queued since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        Stats {
            sessions: self.sessions.len(),
            attached: self.sessions.values().filter(|s| s.is_attached()).count(),
            rooms: self.rooms.len(),
            members: self.rooms.values().map(|r| r.members.len()).sum(),
        }
    }

    /// How many members `room` has (0 when it does not exist).
    pub fn room_size(&self, room: &RoomId) -> usize {
        self.rooms.get(room).map_or(0, |r| r.members.len())
    }

    fn push(&mut self, to: &SessionId, message: &ServerMessage, now: Now) {
        let kind = message.body.type_name();
        self.push_with(to, kind, now, |out, seq, ts| {
            message.encode_into(out, seq, ts)
        });
    }

    /// Queues a message of type `kind` that `encode` writes for a given `seq` and `ts`, and wakes
    /// the recipient's transport.
    fn push_with(
        &mut self,
        to: &SessionId,
        kind: &'static str,
        now: Now,
        encode: impl FnOnce(&mut String, u64, u64),
    ) {
        let Some(s) = self.sessions.get_mut(to) else {
            return;
        };
        if s.closing.is_some() {
            return;
        }
        // Encoded into a reused buffer, so the text kept costs one allocation of its exact size.
        self.scratch.clear();
        encode(&mut self.scratch, s.outbox.next_seq(), now.unix_ms);
        match s.outbox.push(kind, Arc::from(self.scratch.as_str()), now) {
            Ok(()) => s.wake(),
            Err(_) => {
                if !self.overflowed.contains(to) {
                    self.overflowed.push(to.clone());
                }
            }
        }
    }

    fn settle(&mut self, now: Now) {
        while let Some(id) = self.overflowed.pop() {
            self.close_session(
                &id,
                CloseReason::Overflow,
                PeerLeftReason::Disconnected,
                now,
            );
        }
    }

    fn detach(&mut self, id: &SessionId, reason: CloseReason, now: Now) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        s.link = Link::Detached {
            since: now.at,
            reason,
        };
        s.wake();
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
    fn close_session(
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
        }
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        self.events.push(Event::SessionClosed {
            session: id.clone(),
            user: s.identity.user.clone(),
            reason,
        });
        if s.is_attached() {
            s.closing = Some(reason);
            s.wake();
        } else {
            self.forget(id);
        }
    }

    /// Removes `id` from `room`; the others get `peer_left` (`echo` names the member whose copy
    /// carries the correlation id of the request that caused it).
    fn leave_room(
        &mut self,
        id: &SessionId,
        room_id: &RoomId,
        reason: PeerLeftReason,
        echo: Option<(&SessionId, Option<Arc<str>>)>,
        now: Now,
    ) {
        let last_active = self.sessions.get(id).map(|s| s.last_active);
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let Some(member) = room.remove_session(id) else {
            return;
        };
        // What the member did while in the room still counts for it.
        if let Some(at) = last_active {
            room.last_activity = room.last_activity.max(at);
        }
        let others: Vec<SessionId> = room.members.iter().map(|m| m.session.clone()).collect();
        let members = room.members.len();
        if members == 0 {
            self.rooms.remove(room_id);
            self.events.push(Event::RoomClosed {
                room: room_id.clone(),
                reason: "empty",
            });
        }
        if let Some(s) = self.sessions.get_mut(id) {
            s.rooms.retain(|r| r != room_id);
        }
        let mut notice = ServerMessage::new(ServerBody::PeerLeft(PeerLeft {
            peer: member.info.peer.clone(),
            reason,
        }))
        .in_room(room_id);
        for other in others {
            notice.id = match &echo {
                Some((echo_to, echo_id)) if *echo_to == &other => echo_id.clone(),
                _ => None,
            };
            self.push(&other, &notice, now);
        }
        self.events.push(Event::Left {
            room: room_id.clone(),
            peer: member.info.peer,
            user: member.user,
            reason,
            members,
        });
    }

    fn close_room(&mut self, room_id: &RoomId, reason: &'static str, now: Now) {
        let Some(room) = self.rooms.remove(room_id) else {
            return;
        };
        let notice = ServerMessage::new(ServerBody::RoomClosed(RoomClosed {
            reason: reason.to_owned(),
        }))
        .in_room(room_id);
        for member in room.members {
            if let Some(s) = self.sessions.get_mut(&member.session) {
                s.rooms.retain(|r| r != room_id);
            }
            self.push(&member.session, &notice, now);
            self.events.push(Event::Left {
                room: room_id.clone(),
                peer: member.info.peer,
                user: member.user,
                reason: PeerLeftReason::RoomClosed,
                members: 0,
            });
        }
        self.events.push(Event::RoomClosed {
            room: room_id.clone(),
            reason,
        });
    }

    fn dispatch(
        &mut self,
        id: &SessionId,
        frame: ClientFrame,
        now: Now,
    ) -> Result<(), SignalError> {
        let echo = frame.header.id.clone();
        if let Some(claimed) = &frame.header.claimed_from {
            let own = self.sessions.get(id).and_then(|s| s.peer.as_ref());
            if own.map(PeerId::as_str) != Some(claimed.as_str()) {
                return Err(SignalError::Forbidden(
                    "`from` is set by the server and may not name another peer".into(),
                ));
            }
        }
        match frame.message {
            ClientMessage::Join { room, peer, meta } => {
                let meta = meta.map(|m| Arc::from(m.to_owned()));
                self.join(id, room.owned(), peer.map(|p| p.owned()), meta, echo, now)
            }
            ClientMessage::Leave { room } => {
                let room = room.owned();
                let member = self
                    .rooms
                    .get(&room)
                    .is_some_and(|r| r.member_of_session(id).is_some());
                if member {
                    self.leave_room(id, &room, PeerLeftReason::Left, None, now);
                }
                let left = ServerBody::Left(Left {
                    reason: PeerLeftReason::Left,
                    by: None,
                });
                self.push(
                    id,
                    &ServerMessage::new(left).in_room(&room).with_id(echo),
                    now,
                );
                Ok(())
            }
            ClientMessage::Signal {
                kind,
                room,
                to,
                payload,
            } => {
                let relayed = Relayed {
                    kind: kind.as_str(),
                    to: Some(to),
                    payload,
                };
                self.relay(id, &room, relayed, echo, now)
            }
            ClientMessage::Message { room, to, payload } => {
                let relayed = Relayed {
                    kind: "message",
                    to,
                    payload,
                };
                self.relay(id, &room, relayed, echo, now)
            }
            ClientMessage::Mode { room, mode } => self.set_mode(id, &room.owned(), mode, echo, now),
            ClientMessage::Kick { room, peer } => {
                self.kick(id, &room.owned(), &peer.owned(), echo, now)
            }
            ClientMessage::Ping => {
                self.push(id, &ServerMessage::new(ServerBody::Pong).with_id(echo), now);
                Ok(())
            }
            ClientMessage::Ack { seq } => {
                if let Some(s) = self.sessions.get_mut(id) {
                    s.outbox.ack(seq);
                }
                Ok(())
            }
        }
    }

    fn join(
        &mut self,
        id: &SessionId,
        room_id: RoomId,
        requested: Option<PeerId>,
        meta: Option<Arc<serde_json::value::RawValue>>,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let s = self.sessions.get(id).ok_or(SignalError::Internal)?;
        if !s.identity.grant.allows(&room_id) {
            return Err(SignalError::Forbidden(format!(
                "the token does not grant room `{room_id}`"
            )));
        }
        let user = s.identity.user.clone();
        let role = s.identity.role;
        let already = self
            .rooms
            .get(&room_id)
            .is_some_and(|r| r.member_of_session(id).is_some());
        if already {
            let joined = self.joined_body(id, &room_id);
            self.push(id, &joined.in_room(&room_id).with_id(echo), now);
            return Ok(());
        }
        if s.rooms.len() >= self.config.max_rooms_per_session {
            return Err(SignalError::Forbidden(format!(
                "a session may be in at most {} rooms",
                self.config.max_rooms_per_session
            )));
        }
        let peer = match (s.peer.clone(), requested) {
            (Some(own), Some(req)) if own != req => {
                return Err(SignalError::invalid(format!(
                    "this session's peer id is `{own}`; it cannot change"
                )));
            }
            (Some(own), _) => own,
            (None, Some(req)) => req,
            (None, None) => self.random_peer_id(),
        };
        let mut replaced = None;
        if let Some(room) = self.rooms.get(&room_id) {
            if room.banned.contains(&user) {
                return Err(SignalError::Forbidden(
                    "a host removed you from this room".into(),
                ));
            }
            replaced = room
                .members
                .iter()
                .find(|m| m.user == user)
                .map(|m| m.session.clone());
            let taken = room.member(peer.as_str()).is_some_and(|m| m.user != user);
            if taken {
                return Err(SignalError::PeerTaken(peer));
            }
            let staying = room.members.len() - usize::from(replaced.is_some());
            if staying >= self.config.max_peers {
                return Err(SignalError::RoomFull {
                    room: room_id,
                    max: self.config.max_peers,
                });
            }
        }
        if let Some(old) = replaced {
            let notice = ServerBody::Replaced(Replaced {
                reason: "a newer session of the same user joined this room".into(),
            });
            self.push(&old, &ServerMessage::new(notice).in_room(&room_id), now);
            self.events.push(Event::Replaced {
                room: room_id.clone(),
                user: user.clone(),
                old: old.clone(),
                new: id.clone(),
            });
            // The room outlives a replaced last member: a host reloading its page keeps the
            // room's mode and bans.
            let (mode, banned) = self
                .rooms
                .get(&room_id)
                .map(|r| (r.mode, r.banned.clone()))
                .unwrap_or_default();
            self.close_session(&old, CloseReason::Replaced, PeerLeftReason::Replaced, now);
            if !self.rooms.contains_key(&room_id) {
                let mut room = Room::new(room_id.clone(), &self.config.rate, now.at);
                room.mode = mode;
                room.banned = banned;
                self.rooms.insert(room_id.clone(), Box::new(room));
                self.events.push(Event::RoomOpened {
                    room: room_id.clone(),
                });
            }
        }
        let s = self.sessions.get_mut(id).ok_or(SignalError::Internal)?;
        s.peer = Some(peer.clone());
        // Most sessions stay in one room: no spare capacity.
        s.rooms.reserve_exact(1);
        s.rooms.push(room_id.clone());
        let info = PeerInfo {
            peer: peer.clone(),
            role,
            name: s.identity.name.clone(),
            meta,
        };
        let room = self.rooms.entry(room_id.clone()).or_insert_with(|| {
            self.events.push(Event::RoomOpened {
                room: room_id.clone(),
            });
            Box::new(Room::new(room_id.clone(), &self.config.rate, now.at))
        });
        let others: Vec<SessionId> = room.members.iter().map(|m| m.session.clone()).collect();
        // Most rooms hold two members: grown one at a time, since joins are rare and idle members
        // many.
        room.members.reserve_exact(1);
        room.members.push(Member {
            session: id.clone(),
            user: user.clone(),
            info: info.clone(),
        });
        let members = room.members.len();
        let joined = self.joined_body(id, &room_id);
        self.push(id, &joined.in_room(&room_id).with_id(echo), now);
        let announce = ServerMessage::new(ServerBody::PeerJoined(info)).in_room(&room_id);
        for other in others {
            self.push(&other, &announce, now);
        }
        self.events.push(Event::Joined {
            room: room_id,
            peer,
            user,
            members,
        });
        Ok(())
    }

    fn random_peer_id(&mut self) -> PeerId {
        let id = SessionId::random(&mut self.rng);
        // 22 base62 characters are a valid peer id; 12 of them (71 bits) are unique enough in a room.
        PeerId::parse(&id.as_str()[..12]).expect("base62 is a valid peer id")
    }

    fn joined_body(&self, id: &SessionId, room_id: &RoomId) -> ServerMessage {
        let room = &self.rooms[room_id];
        let me = room
            .member_of_session(id)
            .expect("joined_body is called for members");
        ServerMessage::new(ServerBody::Joined(Joined {
            peer: me.info.peer.clone(),
            role: me.info.role,
            mode: room.mode,
            peers: room
                .members
                .iter()
                .filter(|m| &m.session != id)
                .map(|m| m.info.clone())
                .collect(),
            ice_servers: self
                .config
                .ice_servers
                .iter()
                .chain(&self.sessions[id].identity.ice_servers)
                .cloned()
                .collect(),
        }))
    }

    /// The room and the sender's own member entry, or `not_in_room`.
    fn membership(
        &self,
        id: &SessionId,
        room_id: &RoomRef,
    ) -> Result<(&Room, &Member), SignalError> {
        self.rooms
            .get(room_id.as_str())
            .and_then(|r| r.member_of_session(id).map(|m| (&**r, m)))
            .ok_or_else(|| SignalError::NotInRoom(room_id.owned()))
    }

    fn relay(
        &mut self,
        id: &SessionId,
        room_id: &RoomRef,
        Relayed { kind, to, payload }: Relayed,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let (room, me) = self.membership(id, room_id)?;
        let guest_limited = room.mode == Mode::HostOnly && me.info.role == Role::Guest;
        // A targeted message, the common case, needs no list of recipients.
        let (target, others): (Option<SessionId>, Vec<SessionId>) = match &to {
            Some(peer) => {
                let target =
                    room.member(peer.as_str())
                        .ok_or_else(|| SignalError::UnknownPeer {
                            room: room_id.owned(),
                            peer: peer.owned(),
                        })?;
                if &target.session == id {
                    return Err(SignalError::invalid("a message cannot be sent to yourself"));
                }
                if guest_limited && target.info.role != Role::Host {
                    return Err(SignalError::Forbidden(
                        "in host_only mode a guest may signal only hosts".into(),
                    ));
                }
                (Some(target.session.clone()), Vec::new())
            }
            None => {
                if guest_limited {
                    return Err(SignalError::Forbidden(
                        "in host_only mode a guest may not broadcast".into(),
                    ));
                }
                let others = room.members.iter().filter(|m| &m.session != id);
                (None, others.map(|m| m.session.clone()).collect())
            }
        };
        let from = me.info.peer.clone();
        let envelope = Envelope {
            kind,
            room: Some(room_id.text()),
            from: Some(from.text()),
            id: echo.as_deref(),
            payload: Payload::Raw(payload),
        };
        let count = usize::from(target.is_some()) + others.len();
        for r in target.into_iter().chain(others) {
            self.push_with(&r, kind, now, |out, seq, ts| {
                envelope.encode_into(out, seq, ts)
            });
        }
        self.events.push(Event::Relayed {
            kind,
            recipients: count,
        });
        Ok(())
    }

    fn host_membership(
        &self,
        id: &SessionId,
        room_id: &RoomId,
        action: &str,
    ) -> Result<PeerId, SignalError> {
        let (_, me) = self.membership(id, &room_id.borrowed())?;
        if me.info.role != Role::Host {
            return Err(SignalError::Forbidden(format!("only a host may {action}")));
        }
        Ok(me.info.peer.clone())
    }

    fn set_mode(
        &mut self,
        id: &SessionId,
        room_id: &RoomId,
        mode: Mode,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let by = self.host_membership(id, room_id, "change the mode")?;
        let room = self.rooms.get_mut(room_id).ok_or(SignalError::Internal)?;
        let changed = room.mode != mode;
        room.mode = mode;
        let mut notice =
            ServerMessage::new(ServerBody::ModeChanged(ModeChanged { mode, by })).in_room(room_id);
        let recipients: Vec<SessionId> = if changed {
            room.members.iter().map(|m| m.session.clone()).collect()
        } else {
            vec![id.clone()]
        };
        for r in recipients {
            notice.id = if &r == id { echo.clone() } else { None };
            self.push(&r, &notice, now);
        }
        if changed {
            self.events.push(Event::ModeChanged {
                room: room_id.clone(),
                mode,
            });
        }
        Ok(())
    }

    fn kick(
        &mut self,
        id: &SessionId,
        room_id: &RoomId,
        peer: &PeerId,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let by = self.host_membership(id, room_id, "kick")?;
        let room = self.rooms.get_mut(room_id).ok_or(SignalError::Internal)?;
        let target = room
            .member(peer.as_str())
            .ok_or_else(|| SignalError::UnknownPeer {
                room: room_id.clone(),
                peer: peer.clone(),
            })?;
        if &target.session == id {
            return Err(SignalError::invalid(
                "a host cannot kick itself; send leave",
            ));
        }
        let (target_session, target_user) = (target.session.clone(), target.user.clone());
        room.banned.insert(target_user);
        let left = ServerBody::Left(Left {
            reason: PeerLeftReason::Kicked,
            by: Some(by),
        });
        self.push(
            &target_session,
            &ServerMessage::new(left).in_room(room_id),
            now,
        );
        self.leave_room(
            &target_session,
            room_id,
            PeerLeftReason::Kicked,
            Some((id, echo)),
            now,
        );
        Ok(())
    }
}

/// A message to relay, as its sender wrote it.
struct Relayed<'a> {
    kind: &'static str,
    /// The recipient, or everybody else in the room.
    to: Option<PeerRef<'a>>,
    payload: &'a str,
}

/// How a new transport takes over a session.
#[derive(Debug, Clone, Copy)]
enum Restart {
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

fn gap_error(gap: ResumeGap, last_seq: u64) -> SignalError {
    match gap {
        ResumeGap::Released => {
            SignalError::SessionExpired(format!("messages after seq {last_seq} are no longer kept"))
        }
        ResumeGap::Ahead => SignalError::invalid(format!("seq {last_seq} is above any seq sent")),
    }
}

mod streams;
#[cfg(test)]
mod tests;

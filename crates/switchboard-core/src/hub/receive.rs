//! The one path every client message takes, whatever carried it: parse and validate, apply the
//! `seq` replay guard and the clock window, charge the budgets, then act on it.

use std::sync::Arc;

use switchboard_protocol::{
    ClientMessage, ErrorBody, ParsedMessage, PeerId, RoomRef, SFU_PEER, ServerBody, ServerMessage,
    SignalError, parse_client_message,
};

use super::{Attachment, Hub, relay::Relayed};
use crate::{Event, Now, SessionId, SharedOp, session::Link, session::Session};

/// Why a client message was not acted on.
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

impl<S: Clone> Hub<S> {
    /// Handles one client message. `Err` is the `error` to answer with (the caller queues it with
    /// [`Hub::reply`], or returns it in an HTTP answer). Messages from a superseded transport are
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

    /// Queues `message` for the attached session (a rejection, or a transport-level warning).
    pub fn reply(&mut self, at: &Attachment, message: ServerMessage, now: Now) {
        if self.current(at).is_some() {
            self.push(&at.session, &message, now);
            self.settle(now);
        }
    }

    /// The one path: `accept` decides whether the session may send it (a message it refuses is
    /// dropped), and notes the transport's activity: one lookup serves both.
    ///
    /// The session is named by a `SessionId` rather than its text: the attachment's is the
    /// session's own `Arc`, so the lookup's key comparison is a pointer comparison and nothing
    /// touches the id's text, a cold line on every message.
    pub(super) fn handle_text(
        &mut self,
        session_id: &SessionId,
        text: &str,
        now: Now,
        accept: impl FnOnce(&mut Session<S>) -> bool,
    ) -> Result<(), Refusal> {
        let limits = &self.config.limits;
        let Some(session) = self.sessions.get_mut(session_id) else {
            return Ok(());
        };
        if !accept(session) {
            return Ok(());
        }
        let parsed = parse_client_message(text, limits);
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
                let stale = skew_ms > window;
                // A valid message, whatever becomes of it, keeps the member's rooms from idling
                // out. It is noted on the session alone, so a message costs no room lookups: a
                // room takes up its members' activity when it looks idle, and a member's when it
                // leaves (so a `leave` is noted only once it is done: it is no activity in the room
                // it leaves).
                let leave = matches!(frame.message, ClientMessage::Leave { .. });
                let active = !stale && !leave;
                if active {
                    session.last_active = now.at;
                }
                if self.clustered {
                    self.shared.push(SharedOp::ClientSeq {
                        session: session_id.clone(),
                        seq,
                        active,
                    });
                }
                if stale {
                    let e = SignalError::StaleTs {
                        skew_ms,
                        window_ms: window,
                    };
                    return Err(self
                        .rejection(e, id, Some(frame.message.type_name()), Some(seq))
                        .into());
                }
                (frame, id, leave)
            }
            Err(rejected) => {
                let seq = rejected.header.as_ref().map(|h| h.seq);
                let error = match seq {
                    Some(seq) if seq <= last => SignalError::DuplicateSeq { seq, last },
                    Some(seq) => {
                        session.last_client_seq = seq;
                        if self.clustered {
                            self.shared.push(SharedOp::ClientSeq {
                                session: session_id.clone(),
                                seq,
                                active: false,
                            });
                        }
                        rejected.error
                    }
                    None => rejected.error,
                };
                let type_name = rejected.type_name.as_deref();
                return Err(self.rejection(error, rejected.id, type_name, seq).into());
            }
        };
        let admitted = Self::admit(
            (session_id, session),
            &self.config.rate,
            self.clustered,
            &mut self.joins_by_address,
            &mut self.timers,
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
        if leave && let Some(s) = self.sessions.get_mut(session_id) {
            s.last_active = now.at;
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

    /// Acts on an admitted message: each type goes to the module whose rule it is.
    fn dispatch(
        &mut self,
        id: &SessionId,
        frame: ParsedMessage,
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
                self.leave(id, room.owned(), echo, now);
                Ok(())
            }
            ClientMessage::Signal {
                kind,
                room,
                to,
                payload,
            } if to.as_str() == SFU_PEER => self.signal_sfu(id, &room, kind, payload),
            ClientMessage::Subscribe {
                room,
                tracks,
                subscribe,
                view,
            } => self.subscribe(
                id,
                &room,
                super::media::owned_tracks(tracks),
                subscribe,
                view,
            ),
            ClientMessage::Mute { room, track, muted } => self.mute(id, &room, &track, muted),
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
            ClientMessage::SetMedia { room, media } => {
                self.set_media(id, &room.owned(), media, echo, now)
            }
            ClientMessage::Knock { room } => self.knock(id, room.owned(), echo, now),
            ClientMessage::Decide {
                room,
                ticket,
                admit,
            } => self.decide(Some(id), &room.owned(), &ticket.owned(), admit, echo, now),
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
}

#[cfg(test)]
mod tests;

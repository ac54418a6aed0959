//! The lobby ("knock to enter"): a session opened with a lobby token (a share code of a room
//! whose lobby is on) may only `knock` on its room. Every host in the room gets `knock` (the
//! ticket and the guest's name), also hosts who join while it waits; a host's `admit` or `deny`
//! (or the room owner's, over the control API) ends it. An admitted guest's session may `join`
//! at once, and gets `admitted` with a room token, which the IO layer mints from the hub's
//! [`Admission`] output (the hub holds no keys). A denied guest gets `denied`; so does one nobody
//! answered within `knock_timeout`. Every host learns how each knock ended (`knock_ended`).
//!
//! In cluster mode the same rules serve every node. A knock is kept by the node of the guest's
//! session (its expiry, the answer to the guest) and shared through the store
//! ([`SharedOp::Knocked`], ended by [`SharedOp::KnockEnded`]): a view of the room carries its
//! knocks ([`RoomView::knocks`](crate::RoomView)), so a host joining on any node is shown them
//! and a host on any node can answer them. What every host must hear (`knock`, `knock_ended`)
//! goes to this node's hosts here and to the others' through the store
//! ([`SharedOp::ToHosts`]), which picks the room's hosts as they are when it commits. A host's
//! answer to a guest of another node goes there as any message between nodes does: `denied`, or
//! `admitted` with the room token minted on the host's node; the guest's node, hearing it, ends
//! its own copy of the knock ([`Hub::forwarded`]). The IO layer decides knocks and answers under
//! the room's join lock, against a fresh view, so two hosts on two nodes cannot both answer one
//! knock. The per-room limit counts the guests waiting through every node: the view a knock is
//! decided against holds the other nodes' guests.

use std::{collections::HashMap, sync::Arc};

use switchboard_protocol::{
    Admitted, Denied, Knock as KnockBody, KnockEnd, KnockEnded, Knocking, PeerId, Role, RoomId,
    ServerBody, ServerMessage, SignalError,
};

use super::Hub;
use crate::{
    Event, Now, SessionId, SharedKnock, SharedOp,
    deadlines::{TimerKey, TimerToken},
};

/// Guests waiting in one room's lobby at most (in cluster mode, through every node together);
/// the next knock is refused with `rate_limited`.
pub const MAX_KNOCKS_PER_ROOM: usize = 32;

/// A guest a host admitted: the IO layer mints its room token and hands it back with
/// [`Hub::admitted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The guest's session.
    pub session: SessionId,
    /// The room it may join.
    pub room: RoomId,
    /// Its user id (its lobby token's `sub`).
    pub user: Arc<str>,
    /// The role its token gave it.
    pub role: Role,
    /// Its display name.
    pub name: Option<String>,
}

/// One waiting guest.
struct Knock {
    ticket: PeerId,
    session: SessionId,
    user: Arc<str>,
    role: Role,
    name: Option<String>,
    /// When it expires unanswered, Unix ms.
    expires_at: u64,
    /// Its live entry in the hub's timers (its expiry) for a guest of this node; `None` for a
    /// guest of another node (cluster mode), whose node keeps its expiry.
    timer: Option<TimerToken>,
}

impl Knock {
    fn shared(&self) -> SharedKnock {
        SharedKnock {
            ticket: self.ticket.clone(),
            session: self.session.clone(),
            user: self.user.clone(),
            role: self.role,
            name: self.name.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// Every knock the node knows of, by room, and this node's guests by session (a lobby session
/// knocks on one room). In cluster mode a room's list also holds the knocks of other nodes'
/// guests as the room's last view showed them.
#[derive(Default)]
pub(super) struct Lobby {
    rooms: HashMap<RoomId, Vec<Knock>>,
    sessions: HashMap<SessionId, RoomId>,
}

impl Lobby {
    fn take(&mut self, room: &RoomId, found: impl Fn(&Knock) -> bool) -> Option<Knock> {
        let knocks = self.rooms.get_mut(room)?;
        let knock = knocks.remove(knocks.iter().position(found)?);
        if knocks.is_empty() {
            self.rooms.remove(room);
        }
        self.sessions.remove(&knock.session);
        Some(knock)
    }

    /// The knock of `session`, taken out.
    fn take_session(&mut self, session: &SessionId) -> Option<(RoomId, Knock)> {
        let room = self.sessions.get(session)?.clone();
        let knock = self.take(&room, |k| &k.session == session)?;
        Some((room, knock))
    }

    /// Drops the knocks of other nodes' guests in `room` (this node's are its own truth).
    fn forget_remote(&mut self, room: &RoomId) {
        if let Some(knocks) = self.rooms.get_mut(room) {
            knocks.retain(|k| k.timer.is_some());
            if knocks.is_empty() {
                self.rooms.remove(room);
            }
        }
    }
}

impl<S: Clone> Hub<S> {
    /// A `knock`: the lobby session `id` asks the hosts of `room_id` to let it in.
    pub(super) fn knock(
        &mut self,
        id: &SessionId,
        room_id: RoomId,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let s = self.sessions.get(id).ok_or(SignalError::Internal)?;
        if !s.identity.lobby {
            return Err(SignalError::invalid(
                "only a lobby token's session knocks; send join",
            ));
        }
        if !s.identity.grant.allows(&room_id) {
            return Err(SignalError::Forbidden(format!(
                "the token does not grant room `{room_id}`"
            )));
        }
        let name = s.identity.name.clone();
        let user = s.identity.user.clone();
        let role = s.identity.role;
        let expires_ms = self.config.knock_timeout.as_millis() as u64;
        let waiting = self.lobby.sessions.get(id).map(|room| {
            let knocks = &self.lobby.rooms[room];
            let ticket = knocks.iter().find(|k| &k.session == id).map(|k| &k.ticket);
            (room.clone(), ticket.cloned())
        });
        let ticket = match waiting {
            // Knocking again answers the same: the knock and its expiry stand.
            Some((room, Some(ticket))) if room == room_id => ticket,
            Some(_) => {
                return Err(SignalError::Forbidden(
                    "this session is knocking on another room".into(),
                ));
            }
            None => {
                // This node's guests, and in cluster mode the other nodes' as the room's view
                // shows them: a knock is decided under the room's lock, against a fresh view.
                let waiting = (self.lobby.rooms.get(&room_id).into_iter().flatten())
                    .filter(|k| k.timer.is_some() || k.expires_at > now.unix_ms)
                    .count();
                if waiting >= MAX_KNOCKS_PER_ROOM {
                    return Err(SignalError::RateLimited(format!(
                        "{MAX_KNOCKS_PER_ROOM} guests are waiting to enter room `{room_id}`; \
                         try again later"
                    )));
                }
                let ticket = self.random_peer_id();
                let timer = self.timers.schedule(
                    TimerKey::Knock(id.clone()),
                    now.at + self.config.knock_timeout,
                );
                let knock = Knock {
                    ticket: ticket.clone(),
                    session: id.clone(),
                    user: user.clone(),
                    role,
                    name: name.clone(),
                    expires_at: now.unix_ms + expires_ms,
                    timer: Some(timer),
                };
                if self.clustered {
                    self.shared.push(SharedOp::Knocked {
                        room: room_id.clone(),
                        knock: knock.shared(),
                    });
                }
                self.lobby.sessions.insert(id.clone(), room_id.clone());
                self.lobby
                    .rooms
                    .entry(room_id.clone())
                    .or_default()
                    .push(knock);
                self.events.push(Event::Knocked {
                    room: room_id.clone(),
                    ticket: ticket.clone(),
                    user,
                    name: name.clone(),
                });
                let notice = ServerBody::Knock(KnockBody {
                    ticket: ticket.clone(),
                    name,
                });
                let notice = ServerMessage::new(notice).in_room(&room_id);
                for host in self.hosts(&room_id) {
                    self.push(&host, &notice, now);
                }
                self.tell_remote_hosts(&room_id, &notice, now);
                ticket
            }
        };
        let answer = ServerBody::Knocking(Knocking { ticket, expires_ms });
        let answer = ServerMessage::new(answer).in_room(&room_id).with_id(echo);
        self.push(id, &answer, now);
        Ok(())
    }

    /// An `admit` or `deny` by the host session `id`, or by the room's owner over the control
    /// API (`id` none).
    pub(super) fn decide(
        &mut self,
        id: Option<&SessionId>,
        room_id: &RoomId,
        ticket: &PeerId,
        admit: bool,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let by = match id {
            Some(id) => Some(self.host_membership(id, room_id, "admit or deny guests")?),
            None => None,
        };
        let knock = (self.lobby)
            .take(room_id, |k| &k.ticket == ticket)
            .ok_or_else(|| {
                SignalError::NotFound(format!("no guest `{ticket}` is waiting to enter"))
            })?;
        self.knock_gone(room_id, &knock.ticket);
        let outcome = if admit {
            // A guest of another node is let in by its node when the `admitted` it is sent
            // arrives there (`Hub::forwarded`).
            if let Some(guest) = self.sessions.get_mut(&knock.session) {
                guest.identity.lobby = false;
            }
            self.admissions.push(Admission {
                session: knock.session.clone(),
                room: room_id.clone(),
                user: knock.user.clone(),
                role: knock.role,
                name: knock.name.clone(),
            });
            KnockEnd::Admitted
        } else {
            self.tell_guest(&knock.session, room_id, KnockEnd::Denied, now);
            KnockEnd::Denied
        };
        self.knock_ended(
            room_id,
            knock.ticket,
            outcome,
            by,
            id.map(|id| (id, echo)),
            now,
        );
        Ok(())
    }

    /// The room owner's `admit` or `deny` over the control API.
    pub fn decide_knock(
        &mut self,
        room: &RoomId,
        ticket: &PeerId,
        admit: bool,
        now: Now,
    ) -> Result<(), SignalError> {
        let decided = self.decide(None, room, ticket, admit, None, now);
        self.settle(now);
        decided
    }

    /// Hands an admitted guest (an [`Admission`]) its room token: `admitted`.
    pub fn admitted(&mut self, session: &SessionId, room: &RoomId, token: String, now: Now) {
        let body = ServerBody::Admitted(Admitted { token });
        self.push(session, &ServerMessage::new(body).in_room(room), now);
        self.settle(now);
    }

    /// A knock's expiry came due: unless it was answered since, the guest is told it expired.
    pub(super) fn knock_due(&mut self, id: &SessionId, token: TimerToken, now: Now) {
        let Some(room) = self.lobby.sessions.get(id).cloned() else {
            return;
        };
        let Some(knock) = self
            .lobby
            .take(&room, |k| &k.session == id && k.timer == Some(token))
        else {
            return;
        };
        self.knock_gone(&room, &knock.ticket);
        self.tell_guest(id, &room, KnockEnd::Expired, now);
        self.knock_ended(&room, knock.ticket, KnockEnd::Expired, None, None, now);
    }

    /// The session `id` is going: its knock, if any, ends (`left`).
    pub(super) fn withdraw_knock(&mut self, id: &SessionId, now: Now) {
        if let Some((room, knock)) = self.lobby.take_session(id) {
            self.knock_gone(&room, &knock.ticket);
            self.knock_ended(&room, knock.ticket, KnockEnd::Left, None, None, now);
        }
    }

    /// `room`'s stored room is gone: every guest waiting to enter it through this node is told
    /// so (in cluster mode each node tells its own, on hearing of the deletion).
    pub(super) fn close_lobby(&mut self, room: &RoomId, now: Now) {
        for knock in self.lobby.rooms.remove(room).unwrap_or_default() {
            if knock.timer.is_none() {
                continue;
            }
            self.lobby.sessions.remove(&knock.session);
            self.knock_gone(room, &knock.ticket);
            self.tell_guest(&knock.session, room, KnockEnd::Deleted, now);
        }
    }

    /// Brings the knocks of other nodes' guests in `room` up to a view of the room (cluster
    /// mode): this node's own guests stay as it has them, and a knock past its expiry (left by a
    /// node that died) is not shown.
    pub(super) fn mirror_knocks(&mut self, room: &RoomId, knocks: Vec<SharedKnock>, now: Now) {
        self.lobby.forget_remote(room);
        let sessions = &self.sessions;
        let remote = knocks
            .into_iter()
            .filter(|k| !sessions.contains_key(&k.session) && k.expires_at > now.unix_ms)
            .map(|k| Knock {
                ticket: k.ticket,
                session: k.session,
                user: k.user,
                role: k.role,
                name: k.name,
                expires_at: k.expires_at,
                timer: None,
            })
            .collect::<Vec<_>>();
        if !remote.is_empty() {
            self.lobby
                .rooms
                .entry(room.clone())
                .or_default()
                .extend(remote);
        }
    }

    /// Forgets the knocks of other nodes' guests in `room`: this node no longer mirrors it.
    pub(super) fn forget_remote_knocks(&mut self, room: &RoomId) {
        self.lobby.forget_remote(room);
    }

    /// A host on another node answered the knock of `guest`, a session of this node, which
    /// gets `admitted` or `denied` from there: its knock here ends without a word (the deciding
    /// node told every host), and an admitted guest may join.
    pub(super) fn answered_elsewhere(&mut self, guest: &SessionId, admitted: bool) {
        if self.lobby.take_session(guest).is_none() {
            return;
        }
        if admitted && let Some(s) = self.sessions.get_mut(guest) {
            s.identity.lobby = false;
        }
    }

    /// A host that just joined `room` learns of every guest waiting.
    pub(super) fn show_knocks(&mut self, host: &SessionId, room: &RoomId, now: Now) {
        let knocks: Vec<_> = (self.lobby.rooms.get(room).into_iter().flatten())
            .filter(|k| k.expires_at > now.unix_ms)
            .map(|k| {
                let body = ServerBody::Knock(KnockBody {
                    ticket: k.ticket.clone(),
                    name: k.name.clone(),
                });
                ServerMessage::new(body).in_room(room)
            })
            .collect();
        for knock in knocks {
            self.push(host, &knock, now);
        }
    }

    fn tell_guest(&mut self, guest: &SessionId, room: &RoomId, reason: KnockEnd, now: Now) {
        let body = ServerBody::Denied(Denied { reason });
        self.push(guest, &ServerMessage::new(body).in_room(room), now);
    }

    /// Every host in `room` learns how the knock `ticket` ended; `echo` names the deciding host,
    /// whose copy answers its `admit` or `deny`.
    fn knock_ended(
        &mut self,
        room: &RoomId,
        ticket: PeerId,
        outcome: KnockEnd,
        by: Option<PeerId>,
        echo: Option<(&SessionId, Option<Arc<str>>)>,
        now: Now,
    ) {
        self.events.push(Event::KnockEnded {
            room: room.clone(),
            ticket: ticket.clone(),
            outcome,
            by: by.clone(),
        });
        let mut notice = ServerMessage::new(ServerBody::KnockEnded(KnockEnded {
            ticket,
            outcome,
            by,
        }))
        .in_room(room);
        for host in self.hosts(room) {
            notice.id = match &echo {
                Some((decider, id)) if *decider == &host => id.clone(),
                _ => None,
            };
            self.push(&host, &notice, now);
        }
        notice.id = None;
        self.tell_remote_hosts(room, &notice, now);
    }

    /// In cluster mode, `message` for every host of `room` on the other nodes (this node's hosts
    /// got theirs from the caller).
    fn tell_remote_hosts(&mut self, room: &RoomId, message: &ServerMessage, now: Now) {
        if !self.clustered {
            return;
        }
        self.scratch.clear();
        message.encode_into(&mut self.scratch, 0, now.unix_ms);
        self.shared.push(SharedOp::ToHosts {
            room: room.clone(),
            kind: message.body.type_name(),
            text: Arc::from(self.scratch.as_str()),
        });
    }

    /// In cluster mode, the store forgets the knock `ticket`.
    fn knock_gone(&mut self, room: &RoomId, ticket: &PeerId) {
        if self.clustered {
            self.shared.push(SharedOp::KnockEnded {
                room: room.clone(),
                ticket: ticket.clone(),
            });
        }
    }

    /// The room the session `id` is knocking on.
    pub(super) fn lobby_room_of(&self, id: &SessionId) -> Option<&RoomId> {
        self.lobby.sessions.get(id)
    }

    /// The sessions of `room`'s hosts on this node.
    fn hosts(&self, room: &RoomId) -> Vec<SessionId> {
        (self.rooms.get(room).into_iter())
            .flat_map(|r| r.members.iter())
            .filter(|m| m.info.role == Role::Host && self.sessions.contains_key(&m.session))
            .map(|m| m.session.clone())
            .collect()
    }
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod tests;

//! Rooms and membership: joining (grants, caps, peer ids, one session per user), leaving, and
//! closing a room under its members.

use std::sync::Arc;

use switchboard_protocol::{
    Joined, Left, Media, Mode, PeerId, PeerInfo, PeerLeft, PeerLeftReason, Replaced, Role,
    RoomClosed, RoomClosedReason, RoomId, RoomRef, SFU_PEER, ServerBody, ServerMessage,
    SignalError,
};

use super::Hub;
use crate::{
    CloseReason, Event, MediaCommand, Now, RoomEnd, SessionId, SharedMember, SharedOp,
    deadlines::TimerKey,
    room::{Member, Room},
};

impl<S: Clone> Hub<S> {
    pub(super) fn join(
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
        if s.identity.lobby {
            return Err(SignalError::Forbidden(
                "a lobby token enters only once a host admits it: send knock".into(),
            ));
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
            (None, Some(req)) if req.as_str() == SFU_PEER => {
                return Err(SignalError::invalid(format!(
                    "the peer id `{SFU_PEER}` is reserved for the server's SFU"
                )));
            }
            (None, Some(req)) => req,
            (None, None) => self.random_peer_id(),
        };
        let max = self.max_peers(&room_id, now);
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
            if staying >= max {
                return Err(SignalError::RoomFull { room: room_id, max });
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
            let (mode, media_mode, banned) = self
                .rooms
                .get(&room_id)
                .map(|r| (r.mode, r.media_mode, r.banned.clone()))
                .unwrap_or_default();
            self.close_session(&old, CloseReason::Replaced, PeerLeftReason::Replaced, now);
            if self.clustered && !self.sessions.contains_key(&old) {
                // A session of another node: it leaves this room here, and its node ends it when
                // the `replaced` reaches it.
                self.leave_room(&old, &room_id, PeerLeftReason::Replaced, None, now);
            }
            if !self.rooms.contains_key(&room_id) {
                if self.clustered {
                    // The shared store deleted the emptied room: it gets them back too.
                    self.shared.push(SharedOp::Mode {
                        room: room_id.clone(),
                        mode,
                    });
                    for user in &banned {
                        self.shared.push(SharedOp::Banned {
                            room: room_id.clone(),
                            user: user.clone(),
                        });
                    }
                }
                let room = self.open_room(&room_id, now);
                room.mode = mode;
                room.media_mode = media_mode;
                room.banned = banned;
            }
        }
        let s = self.sessions.get_mut(id).ok_or(SignalError::Internal)?;
        s.peer = Some(peer.clone());
        s.add_room(room_id.clone());
        let info = PeerInfo {
            peer: peer.clone(),
            role,
            name: s.identity.name.clone(),
            meta,
        };
        if !self.rooms.contains_key(&room_id) {
            self.open_room(&room_id, now);
        }
        let room = self.rooms.get_mut(&room_id).ok_or(SignalError::Internal)?;
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
        let was_sfu = room.media == Media::Sfu;
        let mode = room.mode;
        let moved = self.media_after_join(&room_id);
        if was_sfu {
            self.media.push(MediaCommand::Joined {
                room: room_id.clone(),
                peer: peer.clone(),
            });
        }
        if self.clustered && others.is_empty() && mode != Mode::default() {
            // The first member: the other nodes learn the mode the room's policy started it in.
            self.shared.push(SharedOp::Mode {
                room: room_id.clone(),
                mode,
            });
        }
        if self.clustered {
            self.shared.push(SharedOp::Joined {
                room: room_id.clone(),
                member: SharedMember {
                    session: id.clone(),
                    user: user.clone(),
                    info: info.clone(),
                },
            });
        }
        let joined = self.joined_body(id, &room_id);
        self.push(id, &joined.in_room(&room_id).with_id(echo), now);
        if role == Role::Host {
            self.show_knocks(id, &room_id, now);
        }
        let announce = ServerMessage::new(ServerBody::PeerJoined(info)).in_room(&room_id);
        for other in others {
            self.push(&other, &announce, now);
        }
        if moved {
            self.announce_media(&room_id, None, None, Some(id), now);
        }
        self.events.push(Event::Joined {
            room: room_id,
            peer,
            user,
            members,
        });
        Ok(())
    }

    /// Creates `room_id` with no members, its idle timer running from now.
    pub(super) fn open_room(&mut self, room_id: &RoomId, now: Now) -> &mut Room {
        self.events.push(Event::RoomOpened {
            room: room_id.clone(),
        });
        self.new_room(room_id, now)
    }

    /// [`Hub::open_room`] without the `RoomOpened` event: in cluster mode, the mirror of a room
    /// that another node opened (its call started there, once).
    pub(super) fn new_room(&mut self, room_id: &RoomId, now: Now) -> &mut Room {
        let idle_at = now.at + self.config.room_idle_timeout;
        let timer = self
            .timers
            .schedule(TimerKey::Room(room_id.clone()), idle_at);
        let (mode, media_mode) = self.opening(room_id, now);
        let mut room = Room::new(
            &self.config.rate,
            media_mode,
            self.config.sfu,
            now.at,
            timer,
        );
        room.mode = mode;
        self.rooms
            .entry(room_id.clone())
            .insert_entry(Box::new(room))
            .into_mut()
    }

    /// A `leave`: answered `left` whether or not the session was in the room.
    pub(super) fn leave(&mut self, id: &SessionId, room: RoomId, echo: Option<Arc<str>>, now: Now) {
        let member = self
            .rooms
            .get(&room)
            .is_some_and(|r| r.member_of_session(id).is_some());
        if member {
            self.leave_room(id, &room, PeerLeftReason::Left, None, now);
            self.mirror_may_go(room.clone());
        }
        if self.lobby_room_of(id) == Some(&room) {
            self.withdraw_knock(id, now);
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
    }

    pub(super) fn random_peer_id(&mut self) -> PeerId {
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
            media: room.media,
            media_mode: room.media_mode,
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
    pub(super) fn membership(
        &self,
        id: &SessionId,
        room_id: &RoomRef,
    ) -> Result<(&Room, &Member), SignalError> {
        self.rooms
            .get(room_id.as_str())
            .and_then(|r| r.member_of_session(id).map(|m| (&**r, m)))
            .ok_or_else(|| SignalError::NotInRoom(room_id.owned()))
    }

    /// Removes `id` from `room`; the others get `peer_left` (`echo` names the member whose copy
    /// carries the correlation id of the request that caused it).
    pub(super) fn leave_room(
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
        if room.media == Media::Sfu {
            self.media.push(MediaCommand::Left {
                room: room_id.clone(),
                peer: member.info.peer.clone(),
            });
        }
        if self.clustered {
            self.shared.push(SharedOp::Left {
                room: room_id.clone(),
                peer: member.info.peer.clone(),
            });
        }
        if members > 0 {
            self.media_after_leave(room_id, now);
        }
        if members == 0 {
            self.remove_room(room_id);
        }
        if let Some(s) = self.sessions.get_mut(id) {
            s.remove_room(room_id);
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
        // After the last leave, not before it: the events' order is what webhooks deliver.
        if members == 0 {
            self.events.push(Event::RoomClosed {
                room: room_id.clone(),
                reason: RoomEnd::Empty,
            });
        }
    }

    /// Removes `room_id`; its timer entry goes stale, and is swept with others once they pile up
    /// ([`crate::deadlines`]).
    pub(super) fn remove_room(&mut self, room_id: &RoomId) -> Option<Box<Room>> {
        let room = self.rooms.remove(room_id)?;
        let rooms = &self.rooms;
        self.timers.sweep_rooms(rooms.len(), |id, token| {
            rooms.get(id).is_some_and(|r| r.timer == token)
        });
        Some(room)
    }

    /// Closes `room_id` under its members: each gets `room_closed` and is no longer in it.
    pub(super) fn close_room(&mut self, room_id: &RoomId, reason: RoomClosedReason, now: Now) {
        let Some(room) = self.remove_room(room_id) else {
            return;
        };
        let notice =
            ServerMessage::new(ServerBody::RoomClosed(RoomClosed { reason })).in_room(room_id);
        for member in room.members {
            if let Some(s) = self.sessions.get_mut(&member.session) {
                s.remove_room(room_id);
            }
            if room.media == Media::Sfu {
                self.media.push(MediaCommand::Left {
                    room: room_id.clone(),
                    peer: member.info.peer.clone(),
                });
            }
            if self.clustered {
                self.shared.push(SharedOp::Left {
                    room: room_id.clone(),
                    peer: member.info.peer.clone(),
                });
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
            reason: RoomEnd::Closed(reason),
        });
    }
}

#[cfg(test)]
mod tests;

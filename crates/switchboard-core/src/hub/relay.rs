//! Relaying and the host's actions: signals and app messages to one peer or the whole room, under
//! the room's mode, and a host changing the mode or kicking a member.

use std::sync::Arc;

use switchboard_protocol::{
    Envelope, Left, Mode, ModeChanged, Payload, PeerId, PeerLeftReason, PeerRef, Role, RoomId,
    RoomRef, ServerBody, ServerMessage, SignalError,
};

use super::Hub;
use crate::{Event, Now, SessionId, SharedOp};

/// A message to relay, as its sender wrote it.
pub(super) struct Relayed<'a> {
    pub(super) kind: &'static str,
    /// The recipient, or everybody else in the room.
    pub(super) to: Option<PeerRef<'a>>,
    pub(super) payload: &'a str,
}

impl<S: Clone> Hub<S> {
    pub(super) fn relay(
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

    /// The sender's peer id if it is a host of `room_id`; `forbidden` naming `action` if not.
    pub(super) fn host_membership(
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

    pub(super) fn set_mode(
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
        if changed && self.clustered {
            self.shared.push(SharedOp::Mode {
                room: room_id.clone(),
                mode,
            });
        }
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

    pub(super) fn kick(
        &mut self,
        id: &SessionId,
        room_id: &RoomId,
        peer: &PeerId,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let by = self.host_membership(id, room_id, "kick")?;
        let room = self.rooms.get(room_id).ok_or(SignalError::Internal)?;
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
        let target = (target.session.clone(), target.user.clone());
        self.expel(room_id, target, Some(by), Some((id, echo)), now);
        Ok(())
    }

    /// Removes the member `target` (its session and user) from `room_id` and bans its user: it
    /// gets `left` (`kicked`, `by` the host that kicked, if a host did), the others `peer_left`
    /// (the copy to `echo`'s session carries its correlation id).
    pub(super) fn expel(
        &mut self,
        room_id: &RoomId,
        (target_session, target_user): (SessionId, Arc<str>),
        by: Option<PeerId>,
        echo: Option<(&SessionId, Option<Arc<str>>)>,
        now: Now,
    ) {
        if self.clustered {
            self.shared.push(SharedOp::Banned {
                room: room_id.clone(),
                user: target_user.clone(),
            });
        }
        if let Some(room) = self.rooms.get_mut(room_id) {
            room.banned.insert(target_user);
        }
        let left = ServerBody::Left(Left {
            reason: PeerLeftReason::Kicked,
            by,
        });
        self.push(
            &target_session,
            &ServerMessage::new(left).in_room(room_id),
            now,
        );
        self.leave_room(&target_session, room_id, PeerLeftReason::Kicked, echo, now);
    }
}

#[cfg(test)]
mod tests;

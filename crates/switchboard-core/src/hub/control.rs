//! What the control plane does to live rooms on behalf of an API caller: list the members, remove
//! one as a host's kick would, send the room a message of the server's own, and close a room whose
//! stored room was deleted.
//!
//! These calls come from the server itself, not from a session: nothing here checks a member's
//! role or budget (the API authorized the caller), but the effects on members are exactly those
//! of the session-driven rules they mirror.

use std::sync::Arc;

use switchboard_protocol::{
    Envelope, Payload, PeerId, PeerInfo, RoomClosedReason, RoomId, SignalError,
};

use super::Hub;
use crate::{Event, Now};

/// A member of a live room, as the control API lists it.
#[derive(Debug, Clone)]
pub struct Participant {
    /// The user id of the member's token.
    pub user: Arc<str>,
    /// What the other members know of it.
    pub info: PeerInfo,
}

/// The wire type of a message the server itself sends a room.
const ANNOUNCEMENT: &str = "announcement";

impl<S: Clone> Hub<S> {
    /// `room`'s members in join order; empty when nobody is in it.
    pub fn participants(&self, room: &RoomId) -> Vec<Participant> {
        self.rooms.get(room).map_or_else(Vec::new, |room| {
            (room.members.iter())
                .map(|m| Participant {
                    user: m.user.clone(),
                    info: m.info.clone(),
                })
                .collect()
        })
    }

    /// Removes `peer` from `room` as a host's `kick` does (it gets `left`, reason `kicked`, with no
    /// `by`; the others `peer_left`; its user cannot rejoin while the room lives).
    pub fn remove_peer(
        &mut self,
        room: &RoomId,
        peer: &PeerId,
        now: Now,
    ) -> Result<(), SignalError> {
        let target = (self.rooms.get(room))
            .and_then(|r| r.member(peer.as_str()))
            .map(|m| (m.session.clone(), m.user.clone()))
            .ok_or_else(|| SignalError::UnknownPeer {
                room: room.clone(),
                peer: peer.clone(),
            })?;
        self.expel(room, target, None, None, now);
        self.mirror_may_go(room.clone());
        self.settle(now);
        Ok(())
    }

    /// Sends every member of `room` an `announcement` whose payload is `payload` (JSON text the
    /// caller checked); how many members it reached.
    pub fn announce(&mut self, room: &RoomId, payload: &str, now: Now) -> usize {
        let recipients: Vec<_> = (self.rooms.get(room))
            .map(|r| r.members.iter().map(|m| m.session.clone()).collect())
            .unwrap_or_default();
        let envelope = Envelope {
            kind: ANNOUNCEMENT,
            room: Some(room.text()),
            from: None,
            id: None,
            payload: Payload::Raw(payload),
        };
        for to in &recipients {
            self.push_with(to, ANNOUNCEMENT, now, |out, seq, ts| {
                envelope.encode_into(out, seq, ts)
            });
        }
        self.events.push(Event::Relayed {
            kind: ANNOUNCEMENT,
            recipients: recipients.len(),
        });
        self.settle(now);
        recipients.len()
    }

    /// Closes `room` under its members (`room_closed`, reason `deleted`) and forgets its policy:
    /// its stored room was deleted.
    pub fn close_deleted(&mut self, room: &RoomId, now: Now) {
        self.forget_policy(room);
        self.close_lobby(room, now);
        self.close_room(room, RoomClosedReason::Deleted, now);
        self.settle(now);
    }
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod tests;

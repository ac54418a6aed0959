//! Rooms whose media goes through the server's SFU: what the hub hands the SFU, and the SFU's
//! messages to members.
//!
//! In a room whose media goes through the SFU (`sfu`, or `auto` from three members) the SFU is the reserved peer `sfu`. It is not a session: the
//! hub checks the sender's messages to it by the same rules as any relay (membership, budgets,
//! limits) and hands them out as [`MediaCommand`]s in [`Outputs::media`], with the room's joins
//! and leaves, for the IO layer to pass to the media worker. The SFU's answers come back through
//! [`Hub::media_message`] and reach the member's outbox like any relayed message, `from: "sfu"`,
//! so resume, ordering and delivery are the same as for every other message.
//!
//! [`Outputs::media`]: super::Outputs::media

use switchboard_protocol::{
    Envelope, ErrorBody, ErrorCode, Media, Payload, PeerId, PeerRef, Role, RoomId, RoomRef,
    SFU_PEER, ServerBody, ServerMessage, SignalError, SignalKind, View,
};

use super::Hub;
use crate::{Event, Now, SessionId};

/// What the SFU of a room must learn, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// `peer` joined the SFU room `room`.
    Joined {
        /// The room.
        room: RoomId,
        /// The new member.
        peer: PeerId,
    },
    /// `peer` is no longer in `room` (left, kicked, replaced, timed out, or the room closed).
    Left {
        /// The room.
        room: RoomId,
        /// The member gone.
        peer: PeerId,
    },
    /// `peer` sent `offer`, `answer` or `candidate` to `sfu`.
    Signal {
        /// The room.
        room: RoomId,
        /// The sender.
        peer: PeerId,
        /// Which message.
        kind: SignalKind,
        /// Its payload, validated by the protocol's parser.
        payload: Box<str>,
    },
    /// `peer` sent `subscribe`.
    Subscribe {
        /// The room.
        room: RoomId,
        /// The sender.
        peer: PeerId,
        /// The tracks named.
        tracks: Vec<Box<str>>,
        /// Receive (`true`) or stop.
        subscribe: bool,
        /// How the sender shows them, if it said.
        view: Option<View>,
    },
    /// `peer` sent `mute`.
    Mute {
        /// The room.
        room: RoomId,
        /// The sender.
        peer: PeerId,
        /// The track named.
        track: Box<str>,
        /// Mute (`true`) or unmute.
        muted: bool,
        /// The sender is a host: the SFU, which knows who publishes what, lets a host mute
        /// another member's track.
        host: bool,
    },
}

impl<S: Clone> Hub<S> {
    /// The member's peer id in an SFU room; `unknown_peer` (no peer `sfu`) in a mesh room.
    fn sfu_member(&self, id: &SessionId, room_id: &RoomRef) -> Result<PeerId, SignalError> {
        let (room, me) = self.membership(id, room_id)?;
        if room.media != Media::Sfu {
            return Err(SignalError::UnknownPeer {
                room: room_id.owned(),
                peer: PeerId::parse(SFU_PEER).expect("a valid peer id"),
            });
        }
        Ok(me.info.peer.clone())
    }

    /// A signal to `sfu`: checked, then handed to the SFU.
    pub(super) fn signal_sfu(
        &mut self,
        id: &SessionId,
        room_id: &RoomRef,
        kind: SignalKind,
        payload: &str,
    ) -> Result<(), SignalError> {
        let peer = self.sfu_member(id, room_id)?;
        if matches!(kind, SignalKind::CallStart | SignalKind::CallEnd) {
            return Err(SignalError::invalid(
                "the SFU takes only offer, answer and candidate",
            ));
        }
        self.media.push(MediaCommand::Signal {
            room: room_id.owned(),
            peer,
            kind,
            payload: payload.into(),
        });
        Ok(())
    }

    /// A `subscribe`: only in SFU rooms.
    pub(super) fn subscribe(
        &mut self,
        id: &SessionId,
        room_id: &RoomRef,
        tracks: Vec<Box<str>>,
        subscribe: bool,
        view: Option<View>,
    ) -> Result<(), SignalError> {
        let peer = self.sfu_member(id, room_id)?;
        self.media.push(MediaCommand::Subscribe {
            room: room_id.owned(),
            peer,
            tracks,
            subscribe,
            view,
        });
        Ok(())
    }

    /// A `mute`: only in SFU rooms.
    pub(super) fn mute(
        &mut self,
        id: &SessionId,
        room_id: &RoomRef,
        track: &str,
        muted: bool,
    ) -> Result<(), SignalError> {
        let peer = self.sfu_member(id, room_id)?;
        let (_, me) = self.membership(id, room_id)?;
        let host = me.info.role == Role::Host;
        self.media.push(MediaCommand::Mute {
            room: room_id.owned(),
            peer,
            track: track.into(),
            muted,
            host,
        });
        Ok(())
    }

    /// A message from the SFU to `peer` in `room`: `kind` with `payload` (a JSON object),
    /// `from: "sfu"`. Dropped if `peer` is no longer a member (its leave is on its way to the
    /// SFU). In cluster mode the SFU runs on the room's media node, which may hold none of the
    /// room's members: `route` is the session the member's node named with its commands, and a
    /// member of another node is reached through it as any message for another node is.
    pub fn media_message(
        &mut self,
        room: &str,
        peer: &str,
        route: Option<&SessionId>,
        kind: &'static str,
        payload: &str,
        now: Now,
    ) {
        let Some((room_id, to)) = self.sfu_recipient(room, peer, route) else {
            return;
        };
        let sfu = PeerRef::parse(SFU_PEER).expect("a valid peer id");
        let envelope = Envelope {
            kind,
            room: Some(room_id.text()),
            from: Some(sfu.text()),
            id: None,
            payload: Payload::Raw(payload),
        };
        self.push_with(&to, kind, now, |out, seq, ts| {
            envelope.encode_into(out, seq, ts)
        });
        self.events.push(Event::Relayed {
            kind,
            recipients: 1,
        });
        self.settle(now);
    }

    /// An `error` from the SFU to `peer` in `room`: a refused message or a dropped media
    /// connection.
    pub fn media_error(
        &mut self,
        room: &str,
        peer: &str,
        route: Option<&SessionId>,
        code: ErrorCode,
        message: String,
        now: Now,
    ) {
        let Some((room_id, to)) = self.sfu_recipient(room, peer, route) else {
            return;
        };
        let body = ErrorBody {
            code,
            message,
            type_name: None,
            client_seq: None,
        };
        self.events.push(Event::Rejected { code });
        let error = ServerMessage::new(ServerBody::Error(body)).in_room(&room_id);
        self.push(&to, &error, now);
        self.settle(now);
    }

    /// The room and the session of `peer`, if it is a member of the SFU room `room`; in cluster
    /// mode, failing that, `route` when it is a session of another node (this node's mirror of
    /// the room, if it has one, may be a moment behind: the SFU's view decides).
    fn sfu_recipient(
        &self,
        room: &str,
        peer: &str,
        route: Option<&SessionId>,
    ) -> Option<(RoomId, SessionId)> {
        if let Some((room_id, r)) = self.rooms.get_key_value(room)
            && r.media == Media::Sfu
            && let Some(member) = r.member(peer)
        {
            return Some((room_id.clone(), member.session.clone()));
        }
        let route = route.filter(|s| self.clustered && !self.sessions.contains_key(*s))?;
        Some((RoomId::parse(room).ok()?, route.clone()))
    }

    /// The members of the SFU room `room` whose sessions are this node's, with their sessions:
    /// in cluster mode, those this node hands to the room's media node (a new one, when the
    /// one it had went away).
    pub fn local_sfu_members(&self, room: &RoomId) -> Vec<(PeerId, SessionId)> {
        let Some(r) = self.rooms.get(room).filter(|r| r.media == Media::Sfu) else {
            return Vec::new();
        };
        (r.members.iter())
            .filter(|m| self.sessions.contains_key(&m.session))
            .map(|m| (m.info.peer.clone(), m.session.clone()))
            .collect()
    }

    /// The session of `peer` in `room`, if it is a member there: what the member's commands to
    /// the SFU name it by, so the room's media node can reach it ([`Hub::media_message`]).
    pub fn member_session(&self, room: &RoomId, peer: &PeerId) -> Option<SessionId> {
        let member = self.rooms.get(room)?.member(peer.as_str())?;
        Some(member.session.clone())
    }
}

/// The owned copy of a `subscribe`'s track ids.
pub(super) fn owned_tracks(tracks: Vec<std::borrow::Cow<'_, str>>) -> Vec<Box<str>> {
    tracks.into_iter().map(|t| Box::from(t.as_ref())).collect()
}

#[cfg(test)]
mod tests;

//! Where a room's media goes, and moving it: the `auto` rule on joins and leaves, a host's
//! `set_media`, and handing the members to the SFU or taking them back.
//!
//! A room has a media setting ([`MediaMode`]) and, from it, where its media goes now
//! ([`Media`]): an `auto` room is mesh while it holds two members and goes through the SFU from
//! [`AUTO_SFU_MEMBERS`](switchboard_protocol::AUTO_SFU_MEMBERS). A move tells every member with `media_changed`, after the join or leave that caused it,
//! and hands the SFU the members' joins (to the SFU) or leaves (back to mesh) as
//! [`MediaCommand`]s, so the media worker sees the same commands as for a room that was always
//! one or the other. Going up is at once (a third member needs the SFU to be seen by everyone);
//! going back down waits [`AUTO_MESH_DELAY`], so a member reloading its page (its old session
//! leaves, its new one joins) moves nobody's media twice.
//!
//! In cluster mode a room's members are spread over nodes, and each node's hub hands the SFU the
//! joins and leaves of its own members only, so the SFU (on the room's media node) learns of
//! every member once. A move is decided by one node: a join by the joiner's node (under the
//! room's join lock, against a fresh view), a move back to mesh by the node holding the room's
//! first member (every node with members schedules it on seeing the room down to two; the
//! others' timers find they are not that node), a host's `set_media` by the host's node (the
//! setting also goes to the shared store, for nodes that join the room later). The deciding
//! node tells every member
//! (`media_changed`, forwarded to the members of other nodes), and each other node, as the
//! notice reaches it, moves its own members ([`Hub::media_moved_elsewhere`]).

use std::{sync::Arc, time::Duration};

use switchboard_protocol::{
    Media, MediaChanged, MediaMode, PeerId, RoomId, ServerBody, ServerMessage, SignalError,
};

use super::{Hub, MediaCommand};
use crate::{Event, Now, SessionId, SharedOp, deadlines::TimerKey};

/// How long an `auto` room down to two members stays on the SFU before it goes back to mesh.
pub const AUTO_MESH_DELAY: Duration = Duration::from_secs(5);

impl<S: Clone> Hub<S> {
    /// After a member joined `room_id`: an `auto` room reaching three members moves to the SFU
    /// (every member, the joiner too, is handed to it), and a pending move back to mesh is
    /// called off. Whether the media moved; the caller tells the other members after their
    /// `peer_joined` ([`Hub::announce_media`]).
    pub(super) fn media_after_join(&mut self, room_id: &RoomId) -> bool {
        let sfu = self.config.sfu;
        let Some(room) = self.rooms.get_mut(room_id) else {
            return false;
        };
        let wanted = room.media_mode.media(room.members.len(), sfu);
        if wanted == Media::Sfu {
            room.mesh_at = None;
        }
        if wanted == room.media || wanted == Media::Mesh {
            return false;
        }
        self.move_media(room_id, wanted);
        true
    }

    /// After a member left `room_id` (which still has members): an `auto` room on the SFU that is
    /// down to two goes back to mesh [`AUTO_MESH_DELAY`] from now, unless a join comes first.
    pub(super) fn media_after_leave(&mut self, room_id: &RoomId, now: Now) {
        let sfu = self.config.sfu;
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let wanted = room.media_mode.media(room.members.len(), sfu);
        // Fewer members never call for the SFU: only a move back to mesh waits here (a mirror
        // brought up to date may show a room bigger than the media it was last told of).
        if wanted == room.media || wanted == Media::Sfu || room.mesh_at.is_some() {
            return;
        }
        let at = now.at + AUTO_MESH_DELAY;
        room.mesh_at = Some(at);
        room.timer = self.timers.schedule(TimerKey::Room(room_id.clone()), at);
    }

    /// The room timer of `room_id` came due: a pending move back to mesh that is due happens
    /// now, and the others are told. Whether the room still waits for one (its next deadline).
    pub(super) fn media_due(&mut self, room_id: &RoomId, now: Now) -> Option<std::time::Instant> {
        let sfu = self.config.sfu;
        let room = self.rooms.get_mut(room_id)?;
        let at = room.mesh_at?;
        if at > now.at {
            return Some(at);
        }
        room.mesh_at = None;
        let wanted = room.media_mode.media(room.members.len(), sfu);
        // In cluster mode the node of the room's first member decides; the others hear it.
        let decides = !self.clustered
            || (room.members.first()).is_some_and(|m| self.sessions.contains_key(&m.session));
        if wanted != room.media && decides {
            self.move_media(room_id, wanted);
            self.announce_media(room_id, None, None, None, now);
        }
        None
    }

    /// Cluster mode: another node moved `room_id`'s media to `media` (setting `media_mode`), as
    /// its `media_changed` to a member of this node says. The mirror takes it, and this node's
    /// members are handed to the SFU or taken from it; the notice itself is the announcement.
    pub fn media_moved_elsewhere(&mut self, room_id: &RoomId, media: Media, media_mode: MediaMode) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        room.media_mode = media_mode;
        // Whichever way it went, a move of this node's own making is moot.
        room.mesh_at = None;
        if room.media != media {
            self.move_media(room_id, media);
        }
    }

    /// A host's `set_media`: the new setting holds at once (no delay, even back to mesh). Every
    /// member is told when the setting or the media changed; otherwise only the sender, as the
    /// answer.
    pub(super) fn set_media(
        &mut self,
        id: &SessionId,
        room_id: &RoomId,
        media_mode: MediaMode,
        echo: Option<Arc<str>>,
        now: Now,
    ) -> Result<(), SignalError> {
        let by = self.host_membership(id, room_id, "change the media")?;
        if media_mode == MediaMode::Sfu && !self.config.sfu {
            return Err(SignalError::MediaUnavailable(
                "this server runs no SFU (sfu.udp_port): its rooms are mesh".into(),
            ));
        }
        let sfu = self.config.sfu;
        let room = self.rooms.get_mut(room_id).ok_or(SignalError::Internal)?;
        let changed = room.media_mode != media_mode;
        room.media_mode = media_mode;
        if self.clustered && changed {
            // The other nodes' mirrors hear it with `media_changed`; a node whose first member
            // joins later reads it from the store.
            self.shared.push(SharedOp::MediaMode {
                room: room_id.clone(),
                media_mode,
            });
        }
        room.mesh_at = None;
        let wanted = media_mode.media(room.members.len(), sfu);
        let moved = wanted != room.media;
        if moved {
            self.move_media(room_id, wanted);
        }
        if changed || moved {
            self.announce_media(room_id, Some(by), Some((id, echo)), None, now);
        } else {
            let room = &self.rooms[room_id];
            let notice = media_changed(room.media, room.media_mode, Some(by)).in_room(room_id);
            self.push(id, &notice.with_id(echo), now);
        }
        Ok(())
    }

    /// Tells every member of `room_id` but `except` (a joiner, whose `joined` says it) where its
    /// media goes now, `by` the host that set it; the copy to `echo`'s session carries its
    /// correlation id.
    pub(super) fn announce_media(
        &mut self,
        room_id: &RoomId,
        by: Option<PeerId>,
        echo: Option<(&SessionId, Option<Arc<str>>)>,
        except: Option<&SessionId>,
        now: Now,
    ) {
        let Some(room) = self.rooms.get(room_id) else {
            return;
        };
        self.events.push(Event::MediaChanged {
            room: room_id.clone(),
            media_mode: room.media_mode,
            media: room.media,
        });
        let mut notice = media_changed(room.media, room.media_mode, by).in_room(room_id);
        let recipients: Vec<SessionId> = (room.members.iter())
            .map(|m| m.session.clone())
            .filter(|s| Some(s) != except)
            .collect();
        for r in recipients {
            notice.id = match &echo {
                Some((echo_to, echo_id)) if *echo_to == &r => echo_id.clone(),
                _ => None,
            };
            self.push(&r, &notice, now);
        }
    }

    /// Moves `room_id`'s media to `to`: every member is handed to the SFU, or taken from it (in
    /// cluster mode, every member of this node: the other nodes hand theirs).
    fn move_media(&mut self, room_id: &RoomId, to: Media) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        room.media = to;
        let sessions = &self.sessions;
        let clustered = self.clustered;
        for member in &room.members {
            if clustered && !sessions.contains_key(&member.session) {
                continue;
            }
            let (room, peer) = (room_id.clone(), member.info.peer.clone());
            self.media.push(match to {
                Media::Sfu => MediaCommand::Joined { room, peer },
                Media::Mesh => MediaCommand::Left { room, peer },
            });
        }
    }
}

fn media_changed(media: Media, media_mode: MediaMode, by: Option<PeerId>) -> ServerMessage {
    ServerMessage::new(ServerBody::MediaChanged(MediaChanged {
        media,
        media_mode,
        by,
    }))
}

#[cfg(test)]
mod tests;

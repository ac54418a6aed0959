//! Cluster mode: rooms whose members are spread over nodes, and messages between nodes.
//!
//! A clustered hub keeps a mirror of every room one of its sessions is in. Its own members are
//! its own truth (only this hub joins or removes them, or hears that another node did); the other
//! members come from the shared store ([`Hub::mirror_room`]). Messages for members of other nodes
//! leave as [`SharedOp::Forward`](crate::SharedOp::Forward) (see `output.rs`), and messages other
//! nodes sent to this node's sessions come in through [`Hub::forwarded`], which numbers them in
//! the recipient's outbox like any other message.

use serde::Deserialize;
use switchboard_protocol::{MediaChanged, PeerLeftReason, RoomId, renumber};

use super::Hub;
use crate::{CloseReason, Now, RoomView, SessionId, room::Member};

impl<S: Clone> Hub<S> {
    /// Whether one of this hub's own sessions is a member of `room_id`.
    pub(super) fn has_local_member(&self, room_id: &RoomId) -> bool {
        self.rooms.get(room_id).is_some_and(|room| {
            (room.members.iter()).any(|m| self.sessions.contains_key(&m.session))
        })
    }

    /// Brings the mirror of `room_id` up to the shared store's `view`, creating it if there is
    /// none (a join is about to be decided against it). This hub's own members stay as it has
    /// them, whatever the view says: a join or leave of its own may not have reached the store
    /// yet. The others are the view's, in its order.
    /// A room the store holds (it has members) was opened on another node, so its mirror here
    /// opens without `RoomOpened`: a call starts once in the cluster, not once per node.
    pub fn mirror_room(&mut self, room_id: &RoomId, mut view: RoomView, now: Now) {
        self.mirror_knocks(room_id, std::mem::take(&mut view.knocks), now);
        let stored = !view.members.is_empty();
        if !self.rooms.contains_key(room_id) {
            let sfu = self.config.sfu;
            let room = if stored {
                self.new_room(room_id, now)
            } else {
                self.open_room(room_id, now)
            };
            // A room the other nodes run: its setting is what a host set, else its policy's, and
            // its media what the setting gives for its size.
            if let Some(media_mode) = view.media_mode.filter(|_| stored) {
                room.media_mode = media_mode;
            }
            room.media = room.media_mode.media(view.members.len(), sfu);
        }
        let sessions = &self.sessions;
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let mut own: Vec<Member> = std::mem::take(&mut room.members);
        let mut members = Vec::with_capacity(view.members.len().max(own.len()));
        for m in view.members {
            if sessions.contains_key(&m.session) {
                if let Some(i) = own.iter().position(|o| o.session == m.session) {
                    members.push(own.remove(i));
                }
            } else {
                members.push(Member {
                    session: m.session,
                    user: m.user,
                    info: m.info,
                });
            }
        }
        // Own members the store does not list yet (their join is on its way) keep their place
        // at the end; those of other nodes that the view no longer lists are gone.
        members.extend(
            own.into_iter()
                .filter(|o| sessions.contains_key(&o.session)),
        );
        // A room the store does not hold yet (no members) keeps the mode its policy opened it with.
        if stored {
            room.mode = view.mode;
        }
        room.members = members;
        room.banned = view.banned.into_iter().collect();
        // The other nodes' members' activity, as the store noted it: what the room's idle
        // deadline runs from here ([`Hub::idle_check`]).
        if let Some(active) = now.at.checked_sub(view.quiet) {
            room.last_activity = room.last_activity.max(active);
        }
        // A member of another node left: a room down to two may go back to mesh.
        self.media_after_leave(room_id, now);
    }

    /// Brings the mirror of `room_id` up to `view` for an action of the server itself (the
    /// control API's list, kick, message or deletion), which may come to a node none of whose
    /// sessions is in the room: a room nobody is in (an empty view, no mirror) is not opened.
    /// Call [`Hub::release_mirror`] after the action, in the same hub call.
    pub fn look_at(&mut self, room_id: &RoomId, mut view: RoomView, now: Now) {
        if !view.members.is_empty() || self.rooms.contains_key(room_id) {
            self.mirror_room(room_id, view, now);
        } else {
            // Guests may knock on a room nobody is in yet.
            self.mirror_knocks(room_id, std::mem::take(&mut view.knocks), now);
        }
    }

    /// Drops the mirror of `room_id` if none of this hub's sessions is in it (after a join that
    /// was refused, the last of them leaving, or a view showing them gone). A hub that is not
    /// clustered has no mirrors: its rooms go when their last member does.
    pub fn release_mirror(&mut self, room_id: &RoomId) {
        if self.clustered && !self.has_local_member(room_id) {
            self.remove_room(room_id);
            self.forget_remote_knocks(room_id);
        }
    }

    /// Notes that a member of this node left `room_id` during the current call; [`Hub::settle`]
    /// drops the mirror then if no member of this node is left in it.
    pub(super) fn mirror_may_go(&mut self, room_id: RoomId) {
        if self.clustered {
            self.unmirrored.push(room_id);
        }
    }

    /// A message another node's hub sent to `session` of this one, encoded with any seq, at
    /// `position` in the session's log: it is queued with the session's next seq. `room` is the
    /// room it is about. A `left` (kicked), a `room_closed` (its stored room was deleted) or a
    /// `replaced` means the other node already took the session out of the room and told the
    /// others; here it leaves the mirror quietly, and a replaced session then ends as it would on
    /// one node (leaving its other rooms). An `admitted` or `denied` is a host's answer to the
    /// session's knock, given on another node: its knock here ends (see `lobby.rs`). A
    /// `media_changed` is a move of the room's media another node decided: the mirror follows,
    /// and this node's members are handed to the SFU or taken from it (`media_switch.rs`).
    /// Returns whether the session is this hub's.
    pub fn forwarded(
        &mut self,
        session: &SessionId,
        position: u64,
        room: Option<&RoomId>,
        kind: &'static str,
        text: &str,
        now: Now,
    ) -> bool {
        if !self.sessions.contains_key(session) {
            return false;
        }
        self.logging.entry(session.clone()).or_default().inbound = position;
        if matches!(kind, "admitted" | "denied") {
            self.answered_elsewhere(session, kind == "admitted");
        }
        if kind == "media_changed"
            && let Some(room_id) = room
            && let Ok(notice) = serde_json::from_str::<MediaNotice>(text)
        {
            self.media_moved_elsewhere(room_id, notice.payload.media, notice.payload.media_mode);
        }
        let removed = matches!(kind, "left" | "room_closed" | "replaced");
        if removed && let Some(room_id) = room {
            if let Some(room) = self.rooms.get_mut(room_id) {
                room.remove_session(session);
            }
            if let Some(s) = self.sessions.get_mut(session) {
                s.remove_room(room_id);
            }
            self.release_mirror(room_id);
        }
        self.handing = true;
        self.push_with(session, kind, now, |out, seq, _| {
            out.push_str(&renumber(text, seq));
        });
        self.handing = false;
        if kind == "replaced" {
            self.close_session(
                session,
                CloseReason::Replaced,
                PeerLeftReason::Replaced,
                now,
            );
        }
        self.settle(now);
        true
    }
}

/// A forwarded `media_changed`, as far as a mirror needs it.
#[derive(Deserialize)]
struct MediaNotice {
    payload: MediaChanged,
}

#[cfg(test)]
mod media_tests;
#[cfg(test)]
pub(super) mod nodes;
#[cfg(test)]
mod tests;

//! The rules that run on deadlines: a transport silent past `heartbeat_timeout` is lost, a
//! detached session not resumed within `resume_window` ends, a room with no activity for
//! `room_idle_timeout` closes, an `auto` room down to two members goes back to mesh, a full join budget is forgotten, and an unanswered knock expires.
//!
//! In cluster mode a room whose members are on several nodes is idle only when it is idle on
//! every node: the node of its longest-present member, seeing it idle, asks the IO layer to read
//! the others' activity from the store ([`Hub::idle_check`]), and the same rule decides on that.
//!
//! The deadlines are kept by [`Deadlines`](crate::deadlines::Deadlines): [`Hub::handle_timeout`]
//! looks only at entries that are due, so a hub full of idle sessions costs nothing between them.

use std::time::{Duration, Instant};

use switchboard_protocol::{PeerLeftReason, RoomClosedReason, RoomId};

use super::Hub;
use crate::{
    CloseReason, Now, SessionId,
    deadlines::{TimerKey, TimerToken},
    session::Link,
};

impl<S: Clone> Hub<S> {
    /// Runs every timer due at `now`. Call it at the deadline [`Hub::drain_outputs`] gives (late
    /// is fine: whatever is due by then runs).
    pub fn handle_timeout(&mut self, now: Now) {
        while let Some((key, token)) = self.timers.pop_due(now.at) {
            match key {
                TimerKey::Session(id) => self.session_due(&id, token, now),
                TimerKey::Room(id) => self.room_due(&id, token, now),
                TimerKey::Knock(id) => self.knock_due(&id, token, now),
                TimerKey::JoinBudget(address) => {
                    let Some((bucket, live)) = self.joins_by_address.get_mut(&address) else {
                        continue;
                    };
                    if *live != token {
                        continue;
                    }
                    let rate = self.config.rate.joins_per_address();
                    if bucket.is_full(rate, now.at) {
                        self.joins_by_address.remove(&address);
                    } else {
                        let full_at = bucket.full_at(rate, now.at);
                        *live = self.timers.schedule(TimerKey::JoinBudget(address), full_at);
                    }
                }
            }
        }
        self.settle(now);
    }

    /// A session's entry came due: act if its real deadline has passed, else schedule that.
    fn session_due(&mut self, id: &SessionId, token: TimerToken, now: Now) {
        let heartbeat = self.config.heartbeat_timeout;
        let resume = self.config.resume_window;
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        if s.timer != token {
            return;
        }
        let deadline = match s.link {
            Link::Attached { last_seen } => last_seen + heartbeat,
            Link::Detached { since, .. } => since + resume,
        };
        if deadline > now.at {
            s.timer = self
                .timers
                .schedule(TimerKey::Session(id.clone()), deadline);
            return;
        }
        match (s.closing.is_some(), &s.link) {
            // An ended session whose transport took everything but never came back for the close
            // (a long-poll client stops polling after `replaced`) is forgotten once it has been
            // silent as long as a lost transport would be; one with messages still unsent is
            // looked at again a heartbeat later.
            (true, Link::Attached { .. }) => {
                if s.outbox.has_unsent() {
                    s.timer = self
                        .timers
                        .schedule(TimerKey::Session(id.clone()), now.at + heartbeat);
                } else {
                    self.forget(id);
                }
            }
            (true, Link::Detached { .. }) => {}
            (false, Link::Attached { .. }) => {
                self.detach(id, CloseReason::HeartbeatTimeout, now);
            }
            (false, Link::Detached { .. }) => {
                self.close_session(id, CloseReason::Expired, PeerLeftReason::Timeout, now);
            }
        }
    }

    /// A room's entry came due: the room takes up its members' activity, and closes if it is
    /// still idle; else its next deadline is scheduled.
    fn room_due(&mut self, id: &RoomId, token: TimerToken, now: Now) {
        if self.rooms.get(id).is_none_or(|room| room.timer != token) {
            return;
        }
        let media_at = self.media_due(id, now);
        self.idle_rule(id, media_at, false, now);
    }

    /// Cluster mode: `room_id` looked idle here ([`Outputs::idle`](super::Outputs::idle)), and
    /// the IO layer brought its mirror up to the store's view under the room's lock, with the
    /// activity of every node's members ([`Hub::look_at`]). It closes now if it is idle on every
    /// node, with the same `room_closed` as on one node (the members of other nodes get theirs
    /// through the store); else its next deadline is scheduled.
    pub fn idle_check(&mut self, room_id: &RoomId, now: Now) {
        let media_at = self.rooms.get(room_id).and_then(|r| r.mesh_at);
        self.idle_rule(room_id, media_at, true, now);
        self.settle(now);
    }

    /// The idle rule, once for one node and many: a room with no activity for
    /// `room_idle_timeout` closes. `media_at` is a pending media move to schedule too. A room
    /// with members on other nodes is closed only by the node of its longest-present member, on
    /// a `fresh` view of the others' activity: when the room looks idle by what that node knows,
    /// the IO layer is asked to read the cluster's ([`Hub::idle_check`]), and the room is looked
    /// at again later should no answer come.
    fn idle_rule(&mut self, id: &RoomId, media_at: Option<Instant>, fresh: bool, now: Now) {
        let idle = self.config.room_idle_timeout;
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        let members = room
            .members
            .iter()
            .filter_map(|m| self.sessions.get(&m.session));
        if let Some(last) = members.map(|s| s.last_active).max() {
            room.last_activity = room.last_activity.max(last);
        }
        let deadline = room.last_activity + idle;
        if deadline > now.at {
            let next = media_at.map_or(deadline, |at| at.min(deadline));
            room.timer = self.timers.schedule(TimerKey::Room(id.clone()), next);
            return;
        }
        let shared = self.clustered
            && (room.members.iter()).any(|m| !self.sessions.contains_key(&m.session));
        if shared {
            // Members of other nodes are active where this node cannot see. One node decides
            // for the room, so it is closed once: the node of its longest-present member (every
            // node's mirror lists the members in join order). It asks for the store's view,
            // and closes the room on it; the others look again later, in case it changes.
            let decides =
                (room.members.first()).is_some_and(|m| self.sessions.contains_key(&m.session));
            if !(fresh && decides) {
                if decides {
                    self.idle.push(id.clone());
                }
                let again = now.at + idle.min(IDLE_ASK_AGAIN);
                let next = media_at.map_or(again, |at| at.min(again));
                room.timer = self.timers.schedule(TimerKey::Room(id.clone()), next);
                return;
            }
        }
        self.close_room(id, RoomClosedReason::Idle, now);
    }
}

/// How long a room spread over nodes that looked idle here waits to be looked at again: when the
/// IO layer did not answer (the store could not be read), or when another node decides for it.
/// Its idle timeout, if shorter.
const IDLE_ASK_AGAIN: Duration = Duration::from_secs(10);

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod tests;

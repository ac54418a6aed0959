//! The rules that run on deadlines: a transport silent past `heartbeat_timeout` is lost, a
//! detached session not resumed within `resume_window` ends, a room with no activity for
//! `room_idle_timeout` closes, an `auto` room down to two members goes back to mesh, a full join budget is forgotten, and an unanswered knock expires.
//!
//! The deadlines are kept by [`Deadlines`](crate::deadlines::Deadlines): [`Hub::handle_timeout`]
//! looks only at entries that are due, so a hub full of idle sessions costs nothing between them.

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
        let idle = self.config.room_idle_timeout;
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        if room.timer != token {
            return;
        }
        let media_at = self.media_due(id, now);
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        if self.clustered && (room.members.iter()).any(|m| !self.sessions.contains_key(&m.session))
        {
            // Members of other nodes are active where this node cannot see: a room shared
            // between nodes is not closed for idleness by one of them.
            room.timer = self
                .timers
                .schedule(TimerKey::Room(id.clone()), now.at + idle);
            return;
        }
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
        } else {
            self.close_room(id, RoomClosedReason::Idle, now);
        }
    }
}

#[cfg(test)]
mod tests;

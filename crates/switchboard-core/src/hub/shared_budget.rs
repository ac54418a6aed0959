//! Cluster mode: a room's message budget (`room_messages_per_sec`) shared by its members on
//! every node.
//!
//! The rule stays the one of a single node: each message of a member is charged to the room's
//! token bucket as it is accepted, and one over it is dropped (`rate_limited`). A Redis round trip
//! per message to ask the cluster first would double a relay's cost, so the cluster only feeds
//! the bucket: every sync interval the IO layer takes what this node's members used of each
//! room's budget ([`Hub::take_room_use`]), adds it to the room's budget in the store, a bucket
//! of the same rate refilled by the store's clock, and hands back what the cluster has left of it
//! ([`Hub::room_budget_left`]). This node's bucket becomes that, less what its members used since.
//! The budget left may be below zero (several nodes spent the same tokens within one interval):
//! that debt is paid by the refill before any node's members may send again, so over time the
//! room gets its rate across the cluster; within one interval each node may spend what its
//! bucket holds before it hears of the others' use.
//!
//! Rooms whose members are all on this node are not synced: nobody else spends their budget.

use switchboard_protocol::RoomId;

use super::Hub;
use crate::Now;

/// What this node's members used of a room's budget since the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUse {
    /// The room.
    pub room: RoomId,
    /// Messages its members on this node were charged to its budget.
    pub used: u32,
}

impl<S: Clone> Hub<S> {
    /// Appends to `out` every room with members on this node and on others, with what this
    /// node's members used of its budget since the last call (zero too: the node then learns
    /// the others' use), and starts counting again. Nothing when the room budget is off or the
    /// hub is not clustered.
    pub fn take_room_use(&mut self, out: &mut Vec<RoomUse>) {
        if !self.clustered || !self.config.rate.room_messages().is_on() {
            return;
        }
        let sessions = &self.sessions;
        for (id, room) in &mut self.rooms {
            let remote = (room.members.iter()).any(|m| !sessions.contains_key(&m.session));
            if remote {
                out.push(RoomUse {
                    room: id.clone(),
                    used: std::mem::take(&mut room.used),
                });
            }
        }
    }

    /// The cluster had `left` tokens of `room_id`'s budget once it counted this node's use
    /// taken by [`Hub::take_room_use`]: this node's bucket for the room becomes that, less what
    /// its members used since. Whether the budget is spent across the cluster (a member of this
    /// node sending now would be refused).
    pub fn room_budget_left(&mut self, room_id: &RoomId, left: f64, now: Now) -> bool {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return false;
        };
        let tokens = left - f64::from(room.used);
        room.budget.set(tokens, now.at);
        tokens < 1.0
    }
}

#[cfg(test)]
mod tests;

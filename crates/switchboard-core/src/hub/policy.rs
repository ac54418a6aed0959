//! Stored rooms' policies: what the control plane decided for a room id (its member limit, the
//! mode and media a call starts with, when it stops existing), applied when the room opens and on
//! every join.
//!
//! The control plane hands each stored room's policy to the hub when it starts and again whenever
//! the room is made, changed or deleted, so a join never waits for the database: the hub keeps
//! the policies of every stored room in a table (one small entry per stored room). A room with no
//! policy, or whose policy has expired, follows the server's settings, as rooms always have.
//!
//! In cluster mode every node keeps this table: a change made through one node is announced to
//! the others, which reload that room's policy from the database (and all of them after their
//! subscription to the announcements was lost); see `control/cluster.rs` in the server.

use switchboard_protocol::{MediaMode, Mode, RoomId};

use super::Hub;
use crate::Now;

/// A stored room's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomPolicy {
    /// Members at most (never more than the server's `max_peers`); `None`: the server's.
    pub max_peers: Option<usize>,
    /// The mode a call starts in.
    pub mode: Mode,
    /// Where its media goes.
    pub media: MediaMode,
    /// When the stored room stops existing, Unix milliseconds; `None`: never.
    pub expires_at: Option<u64>,
}

impl RoomPolicy {
    fn live(&self, now: Now) -> bool {
        self.expires_at.is_none_or(|at| at > now.unix_ms)
    }
}

impl<S: Clone> Hub<S> {
    /// Sets `room`'s policy (a stored room made or changed). A live room keeps its mode and media
    /// (a call's mode is its hosts' to change); the member limit holds from the next join.
    pub fn set_policy(&mut self, room: RoomId, policy: RoomPolicy) {
        self.policies.insert(room, policy);
    }

    /// Forgets `room`'s policy (its stored room is gone): it follows the server's settings again.
    pub fn forget_policy(&mut self, room: &RoomId) {
        self.policies.remove(room);
    }

    /// Replaces every policy with `policies`: the stored rooms as the database has them now.
    /// In cluster mode a node reloads them all after it may have missed a notice of a change
    /// made through another node; a room missing from `policies` was deleted meanwhile.
    pub fn replace_policies(&mut self, policies: impl IntoIterator<Item = (RoomId, RoomPolicy)>) {
        self.policies.clear();
        self.policies.extend(policies);
    }

    /// `room`'s stored room was deleted through another node of the cluster, which closed its
    /// call (every member, on every node, got `room_closed`): here its policy goes, and the
    /// guests knocking on it through this node are told so.
    pub fn stored_room_gone(&mut self, room: &RoomId, now: Now) {
        self.forget_policy(room);
        self.close_lobby(room, now);
        self.settle(now);
    }

    /// `room`'s policy if it has one that has not expired; an expired one is forgotten.
    pub(super) fn policy(&mut self, room: &RoomId, now: Now) -> Option<RoomPolicy> {
        match self.policies.get(room) {
            Some(policy) if policy.live(now) => Some(*policy),
            Some(_) => {
                self.policies.remove(room);
                None
            }
            None => None,
        }
    }

    /// Members `room` may hold: its policy's limit, within the server's.
    pub(super) fn max_peers(&mut self, room: &RoomId, now: Now) -> usize {
        let limit = self.policy(room, now).and_then(|p| p.max_peers);
        limit.map_or(self.config.max_peers, |n| n.min(self.config.max_peers))
    }

    /// The mode and media a new call in `room` starts with.
    pub(super) fn opening(&mut self, room: &RoomId, now: Now) -> (Mode, MediaMode) {
        match self.policy(room, now) {
            Some(policy) => (policy.mode, policy.media),
            None => (Mode::default(), self.config.media_mode),
        }
    }
}

#[cfg(test)]
mod tests;

//! Stored rooms in cluster mode. The nodes of a cluster share one database, but each node's hub
//! keeps its own copy of the stored rooms' policies and holds only its own sessions. This module
//! keeps the control plane cluster-wide:
//!
//! - a room made, changed or deleted through one node is announced on the cluster's channel
//!   (`p:policy` in Redis, [`Store::room_changed`]); every node (the announcing one too) reloads
//!   that room's policy from the database, so it holds everywhere within a round trip or two.
//!   Pub/sub loses what is published while a subscription is down, so a node reloads every
//!   policy each time it subscribes: at start, and after its subscription was lost;
//! - an action of the API on a live room (listing its members, removing one, a message to all,
//!   answering a guest knocking, closing it because its stored room was deleted) runs on
//!   whichever node the request came to,
//!   against the room as Redis holds it: the hub's mirror of the room is brought up to the shared
//!   view ([`Hub::look_at`]), the hub's own rules act on it, and what they send members of other
//!   nodes reaches them through their nodes' inboxes, as any message between nodes does.
//!
//! On a single node none of this runs: the actions go to the hub as they are, and nothing is
//! announced.
//!
//! [`Store::room_changed`]: crate::cluster::store::Store::room_changed
//! [`Hub::look_at`]: switchboard_core::Hub::look_at

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use switchboard_core::Now;
use switchboard_protocol::{RoomId, SignalError};
use tokio_util::sync::CancellationToken;

use super::{Control, extract::Refused};
use crate::{cluster::joins, delivery::Hub};

/// Notices handled as one batch at most: repeats of a room in it are reloaded once.
const BATCH: usize = 256;

/// Wait between attempts to subscribe, doubling up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Control {
    /// Tells the other nodes of the cluster that stored room `room` was made, changed or
    /// deleted. A notice that cannot be published is logged: the other nodes then learn of the
    /// change when their subscription is next made (this node's own copy is already changed).
    pub(super) async fn announce(&self, room: &RoomId) {
        let Some(cluster) = self.node().cluster() else {
            return;
        };
        if let Err(e) = cluster.store().room_changed(room).await {
            self.node().metrics().cluster_store_error();
            tracing::warn!(
                event = "cluster.policy_notice_failed",
                node = %cluster.node_id(),
                %room,
                error = %e,
                "cannot tell the other nodes that a stored room changed"
            );
        }
    }

    /// Runs `f` on the hub against live room `room` as the whole cluster has it (see the module
    /// documentation); on a single node, against the hub as it is. `unavailable` when Redis
    /// cannot be read.
    pub(super) async fn on_room<R>(
        &self,
        room: &RoomId,
        f: impl FnOnce(&mut Hub, Now) -> R,
    ) -> Result<R, SignalError> {
        let Some(cluster) = self.node().cluster() else {
            return Ok(self.node().with_hub(f));
        };
        let view = match cluster.store().room(room, None).await {
            Ok(view) => view.unwrap_or_default(),
            Err(e) => {
                self.node().metrics().cluster_store_error();
                tracing::warn!(event = "cluster.room_read_failed", node = %cluster.node_id(), error = %e, "cannot read a room");
                return Err(SignalError::Unavailable(
                    "the shared store cannot be reached; try again".into(),
                ));
            }
        };
        Ok(self.node().with_hub(|hub, now| {
            hub.look_at(room, view, now);
            let result = f(hub, now);
            hub.release_mirror(room);
            result
        }))
    }

    /// Runs `f` on the hub against live room `room` under the room's join lock in cluster mode
    /// (as a host's `admit` or `deny` is decided: against a fresh view, one decision at a time),
    /// or against the hub as it is on a single node. `unavailable` when the lock cannot be had.
    pub(super) async fn under_lock<R>(
        &self,
        room: &RoomId,
        f: impl FnOnce(&mut Hub, Now) -> R,
    ) -> Result<R, SignalError> {
        let Some(cluster) = self.node().cluster() else {
            return Ok(self.node().with_hub(f));
        };
        joins::under_lock(self.node(), cluster, room, f).await
    }

    /// Deletes stored room `id` from the database and closes its call: every member, on every
    /// node, gets `room_closed` (`deleted`). In cluster mode the call is closed under the room's
    /// join lock, so no join on another node slips in between the read of its members and
    /// their removal; then the other nodes are told, and forget the room's policy.
    pub(super) async fn delete_room(&self, id: &str) -> Result<(), Refused> {
        let room = RoomId::parse(id).ok();
        let mut locked = match (self.node().cluster(), &room) {
            (Some(cluster), Some(room)) => Some(joins::lock(cluster, vec![room.clone()]).await?),
            _ => None,
        };
        let deleted = self.store().delete_room(id).await;
        if let (Ok(_), Some(room)) = (&deleted, &room) {
            self.node().with_hub(|hub, now| {
                if let Some(locked) = &mut locked {
                    locked.mirror(hub, now);
                }
                hub.close_deleted(room, now);
                if let Some(locked) = &locked {
                    locked.settle(hub);
                }
            });
        }
        if let Some(locked) = &locked {
            // After the hub call's writes: the lock goes once the members' removal is in.
            self.node().submit_shared(locked.unlocks());
        }
        deleted?;
        if let Some(room) = &room {
            self.announce(room).await;
        }
        Ok(())
    }
}

/// Reloads stored rooms' policies as the other nodes announce changes, until `stop` fires. See
/// the module documentation.
pub(super) async fn follow(control: Control, stop: CancellationToken) {
    let Some(cluster) = control.node().cluster().cloned() else {
        return;
    };
    let mut wait = RETRY_MIN;
    let mut first = true;
    loop {
        let subscribed = tokio::select! {
            s = cluster.store().room_changes() => s,
            _ = stop.cancelled() => return,
        };
        let mut changes = match subscribed {
            Ok(changes) => changes,
            Err(e) => {
                control.node().metrics().cluster_store_error();
                tracing::warn!(event = "cluster.policy_subscribe_failed", node = %cluster.node_id(), error = %e, "cannot subscribe to stored rooms' changes; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
        };
        if !first {
            control.node().metrics().cluster_reconnect();
            tracing::info!(event = "cluster.policy_resubscribed", node = %cluster.node_id(), "subscribed to stored rooms' changes again; reloading every policy");
        }
        first = false;
        // Subscribed first, then read: a change made meanwhile is in what is read, or announced.
        match control.load_policies().await {
            Ok(n) => {
                control.node().metrics().cluster_policy_reloaded(n);
                wait = RETRY_MIN;
            }
            Err(e) => {
                tracing::warn!(event = "cluster.policy_reload_failed", node = %cluster.node_id(), error = %e, "cannot reload the stored rooms' policies; subscribing again");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
        }
        loop {
            let change = tokio::select! {
                change = changes.next() => change,
                _ = stop.cancelled() => return,
            };
            let Some(change) = change else {
                tracing::warn!(event = "cluster.policy_notices_lost", node = %cluster.node_id(), "subscription to stored rooms' changes lost");
                break;
            };
            // What queued up meanwhile goes in one batch, each room reloaded once.
            let mut rooms = vec![change];
            while rooms.len() < BATCH {
                match changes.next().now_or_never() {
                    Some(Some(room)) => rooms.push(room),
                    _ => break,
                }
            }
            rooms.sort();
            rooms.dedup();
            for room in rooms {
                reload(&control, &room).await;
            }
        }
    }
}

/// Reloads `room`'s policy from the database: a room that is gone (deleted, or expired) loses
/// its policy, and the guests knocking on it through this node are told so.
async fn reload(control: &Control, room: &RoomId) {
    match control.live_room(room.as_str()).await {
        Ok(Some(stored)) => control.apply_policy(&stored),
        Ok(None) => control
            .node()
            .with_hub(|hub, now| hub.stored_room_gone(room, now)),
        Err(e) => {
            let node = control.node().cluster().map(|c| c.node_id().to_owned());
            tracing::warn!(event = "cluster.policy_reload_failed", node = node.as_deref().unwrap_or(""), %room, error = %e, "cannot reload a stored room's policy");
            return;
        }
    }
    control.node().metrics().cluster_policy_reloaded(1);
}

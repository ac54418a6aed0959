//! Rooms spread over nodes: the limits a room has as a whole, kept across the cluster
//! (docs/cluster.md, "Per node and cluster-wide"). Two tasks, owned by the server:
//!
//! - the budget task syncs the rooms' message budgets (`room_messages_per_sec`) every
//!   [`SYNC_EVERY`]: what this node's members used of each room with members on other nodes
//!   goes into the room's bucket in the store, in one script call for all of them, and the
//!   hub's bucket becomes what the cluster has left (`hub/shared_budget.rs` in the core). A relay
//!   never waits for the store: it is charged to the hub's bucket as on one node. So a room may
//!   go over its rate by what each node's bucket held when the others' use reached it, at most
//!   one interval's worth of messages per node (less the per-session budgets' cap), and that
//!   overshoot is a debt every node's members pay back before they send again. While the store
//!   does not answer, each node's members count against their node's bucket alone, as before.
//! - the idle task takes the rooms whose hub found them idle by what it sees while members on
//!   other nodes may be active ([`switchboard_core::Outputs::idle`]: only the node of a room's
//!   longest-present member asks, so one node decides), and lets the hub decide
//!   again under the room's join lock against the store's view, which says how long every
//!   node's members have been quiet ([`joins::under_lock`], the road a deleted room's close
//!   takes too). Idle everywhere, the room closes for every member, on every node, with
//!   `room_closed` `idle`.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use switchboard_core::RoomUse;
use switchboard_protocol::RoomId;
use tokio_util::sync::CancellationToken;

use super::joins;
use crate::node::Node;

/// How often the rooms' message budgets are synced with the cluster.
pub const SYNC_EVERY: Duration = Duration::from_millis(100);

/// Rooms synced in one script call at most.
const SYNC_MOST: usize = 512;

/// A room throttled across the cluster is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Syncs the rooms' message budgets with the cluster until `stop` fires. See the module
/// documentation.
pub async fn budgets(node: Node, stop: CancellationToken) {
    let cluster = node.cluster().expect("a clustered node").clone();
    let rate = node.config().core().rate.room_messages();
    if !rate.is_on() {
        return;
    }
    let mut tick = tokio::time::interval(SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut uses: Vec<RoomUse> = Vec::new();
    // When each throttled room was last logged.
    let mut logged: HashMap<RoomId, Instant> = HashMap::new();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        uses.clear();
        node.hub().take_room_use(&mut uses);
        logged.retain(|_, at| at.elapsed() < LOG_EVERY);
        for chunk in uses.chunks(SYNC_MOST) {
            let left = match cluster.store.budget(rate, chunk).await {
                Ok(left) => left,
                Err(e) => {
                    node.metrics().cluster_store_error();
                    if !failing {
                        tracing::warn!(event = "cluster.budget_sync_failed", node = %cluster.node_id, error = %e, "cannot sync rooms' message budgets; each node counts its own members' messages until the store answers");
                    }
                    failing = true;
                    continue;
                }
            };
            failing = false;
            let spent: Vec<(&RoomId, f64)> = {
                let now = node.now();
                let mut hub = node.hub();
                (chunk.iter().zip(left))
                    .filter_map(|(u, left)| Some((&u.room, left?)))
                    .filter(|(room, left)| hub.room_budget_left(room, *left, now))
                    .collect()
            };
            for (room, left) in spent {
                node.metrics().cluster_room_throttled();
                if !logged.contains_key(room) {
                    logged.insert(room.clone(), Instant::now());
                    tracing::info!(event = "cluster.room_throttled", node = %cluster.node_id, %room, left, "a room's message budget is spent across the cluster; its members' messages are dropped until it refills");
                }
            }
        }
    }
}

/// Checks rooms that look idle across the cluster, until `stop` fires. See the module
/// documentation.
pub async fn idle(node: Node, stop: CancellationToken) {
    let cluster = node.cluster().expect("a clustered node").clone();
    let Some(mut queue) = cluster.idle_pending.lock().take() else {
        return;
    };
    loop {
        let room = tokio::select! {
            room = queue.recv() => room,
            _ = stop.cancelled() => return,
        };
        let Some(room) = room else {
            return;
        };
        let check = joins::under_lock(&node, &cluster, &room, |hub, now| {
            hub.idle_check(&room, now)
        });
        let checked = tokio::select! {
            checked = check => checked,
            // A lock taken meanwhile goes by itself ([`super::LOCK_MS`]).
            _ = stop.cancelled() => return,
        };
        if let Err(e) = checked {
            tracing::warn!(event = "cluster.idle_check_failed", node = %cluster.node_id, %room, error = %e, "cannot check whether a room is idle on every node; its node asks again later");
        }
    }
}

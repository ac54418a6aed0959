//! SIGTERM in cluster mode: the rooms go on on the other nodes, so a stopping node does not end
//! its sessions: it hands them over. Each client is told to resume elsewhere (its WebSocket
//! closes with `4006`, a long poll is answered `unavailable`, an SSE stream ends), its peers
//! notice nothing (no `peer_left`, no `room_closed`), and once the node's last writes are
//! committed the sessions still listed under it are let go in the store (`leave.lua`), so the
//! node a client comes to takes it at once, not after a lease. A client that resumes before
//! that is let go through the inbox, as any session that moved.
//!
//! The last node of a cluster has no one to hand over to: it ends its sessions as a stopping
//! node did before (peers see `peer_left` `disconnected`, no `room_closed`), and with them the
//! sessions other nodes handed over that nobody resumed, so a stopped cluster leaves nothing in
//! the store.

use crate::node::Node;

/// Rounds of [`end_waiting`] at most: [`super::SWEEP_MOST`] sessions each.
const END_ROUNDS: usize = 1024;

/// Drains this node's sessions: see the module documentation.
pub async fn drain(node: &Node) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    // Without an answer, hand over: the sessions stay resumable, and a node that starts later
    // ends those whose window passed.
    let last = matches!(cluster.store.peers(&cluster.node_id).await, Ok(0));
    if last {
        let sessions = node.hub().stats().sessions;
        node.with_hub(|hub, now| hub.shutdown(now));
        let ended = end_waiting(node).await;
        tracing::info!(
            event = "cluster.last_node_stopping",
            node = %cluster.node_id,
            sessions,
            ended,
            "no other node is there to take the sessions: they end"
        );
    } else {
        let sessions = node.with_hub(|hub, now| hub.hand_over(now));
        tracing::info!(
            event = "cluster.draining",
            node = %cluster.node_id,
            sessions,
            "handing every session over to the other nodes"
        );
    }
}

/// Ends every session waiting for a resume (of nodes that stopped or died), whatever its
/// window: this is the last node. Returns how many.
async fn end_waiting(node: &Node) -> usize {
    let Some(cluster) = node.cluster() else {
        return 0;
    };
    let token = cluster.token(
        cluster
            .incarnation
            .load(std::sync::atomic::Ordering::Acquire),
    );
    let mut lease = super::lease(node.config().core().resume_window, false);
    lease.all = true;
    let mut ended = 0;
    for _ in 0..END_ROUNDS {
        let taken = match cluster.store.lease(&cluster.node_id, &token, lease).await {
            Ok(taken) if !taken.is_empty() => taken,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(event = "cluster.sweep_failed", node = %cluster.node_id, error = %e, "cannot end the sessions left waiting");
                break;
            }
        };
        for session in taken {
            match super::adopt::expire(node, session).await {
                Ok(()) => ended += 1,
                Err(e) => {
                    tracing::warn!(event = "cluster.sweep_failed", node = %cluster.node_id, error = %e, "cannot end a session left waiting");
                }
            }
        }
    }
    ended
}

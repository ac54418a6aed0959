//! The tasks of a clustered node, all owned by the server and stopped by its shutdown:
//!
//! - the commit task takes the hub's writes in the order they were made and commits them to the
//!   store, batching what queued up meanwhile into one script call; a failed commit is retried
//!   (the writes stay in order) until it succeeds or the server has stopped;
//! - the inbox task takes the doorbells of this node's inbox through the [`Sequencer`], reads any
//!   gap from the logs, and hands each message to the hub. When its subscription is lost it
//!   subscribes again and reads every log of this node past its position: what was published
//!   meanwhile is in the logs;
//! - the health task asks the store every [`PROBE_EVERY`] whether it answers, for `/readyz`,
//!   renews the node's lease with the answer, and fences the node when the lease ran out
//!   ([`super::fence`]), rejoining once the store answers again.
//!
//! [`Sequencer`]: super::sequencer::Sequencer

use std::{
    collections::HashMap,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde::Deserialize;
use switchboard_core::{SessionId, SharedOp};
use switchboard_protocol::RoomId;
use tokio_util::sync::CancellationToken;

use super::{
    LEASE,
    fence::{self, Why},
    message_kind,
    sequencer::Offer,
    store::{LogEntry, StoreError, Write},
};
use crate::node::Node;

/// How often the health task probes the store, and how long an answer may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes per script call at most.
const BATCH: usize = 512;

/// Wait between attempts when the store fails, doubling up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Commits the hub's writes until `stop` fires and the queue is empty, then gives the node's
/// lease back, letting go of the sessions still listed under it (a drain handed them over).
/// Batches of an earlier incarnation (made before the node was fenced) are dropped; a commit the
/// store refuses as fenced fences the node.
pub async fn commit(node: Node, stop: CancellationToken) {
    let cluster = node.cluster().expect("a clustered node").clone();
    let Some(mut queue) = cluster.pending.lock().take() else {
        return;
    };
    let current = |incarnation: u64| cluster.incarnation.load(Ordering::Acquire) == incarnation;
    // A batch of another incarnation than the one being gathered waits for the next round.
    let mut next: Option<(u64, Vec<Write>)> = None;
    loop {
        let first = match next.take() {
            Some(batch) => Some(batch),
            None => tokio::select! {
                biased;
                batch = queue.recv() => batch,
                _ = stop.cancelled() => queue.try_recv().ok(),
            },
        };
        let Some((incarnation, mut writes)) = first else {
            // Everything is committed: the lease goes, and the sessions still listed under this
            // node (handed over by the drain) may be resumed anywhere at once.
            let token = cluster.token(cluster.incarnation.load(Ordering::Acquire));
            let window = node.config().core().resume_window.as_millis() as u64;
            if let Err(e) = cluster.store.leave(&cluster.node_id, &token, window).await {
                tracing::warn!(event = "cluster.leave_failed", node = %cluster.node_id, error = %e, "cannot take this node's lease back; the others will sweep it");
            }
            return;
        };
        while writes.len() < BATCH {
            match queue.try_recv() {
                Ok((i, more)) if i == incarnation => writes.extend(more),
                Ok(other) => {
                    next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        if !current(incarnation) {
            // Made before the node was fenced: its clients resume elsewhere from the logs.
            continue;
        }
        track(&cluster, &writes);
        let token = cluster.token(incarnation);
        let mut wait = RETRY_MIN;
        loop {
            let began = Instant::now();
            match cluster
                .store
                .commit(&cluster.node_id, &token, &writes)
                .await
            {
                Ok(()) => {
                    node.metrics().cluster_round_trip(began.elapsed());
                    release(&node, &writes);
                    break;
                }
                Err(StoreError::Fenced) => {
                    fence::fence(&node, Why::Refused);
                    break;
                }
                Err(_) if !current(incarnation) => break,
                Err(e) => {
                    node.metrics().cluster_store_error();
                    tracing::warn!(
                        event = "cluster.commit_failed",
                        node = %cluster.node_id,
                        writes = writes.len(),
                        error = %e,
                        "cannot commit to the shared store; retrying"
                    );
                    if stop.is_cancelled() && wait >= RETRY_MAX {
                        tracing::error!(
                            event = "cluster.commit_abandoned",
                            node = %cluster.node_id,
                            writes = writes.len(),
                            "stopping with writes the shared store never took"
                        );
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

/// Tells the hub that the log writes among `writes` are committed: the messages waiting for
/// them may go to their clients (`hub/durable.rs` in the core).
fn release(node: &Node, writes: &[Write]) {
    let mut done: HashMap<&SessionId, u64> = HashMap::new();
    for write in writes {
        if let Write::Shared(
            SharedOp::Logged { session, index, .. } | SharedOp::Resumed { session, index, .. },
        ) = write
            && *index > 0
        {
            // Writes of one session come in index order: the last one counts.
            done.insert(session, *index);
        }
    }
    if !done.is_empty() {
        node.with_hub(|hub, _| {
            for (session, index) in done {
                hub.durable(session, index);
            }
        });
    }
}

/// Keeps the sequencer's list of this node's sessions up to date with what is committed.
fn track(cluster: &super::Cluster, writes: &[Write]) {
    let mut sequencer = cluster.sequencer.lock();
    for write in writes {
        match write {
            Write::Shared(SharedOp::Attached { session, .. }) => sequencer.track(session.clone()),
            Write::Shared(SharedOp::Ended { session }) => sequencer.forget(session),
            _ => {}
        }
    }
}

/// Hands this node's inbox to the hub until `stop` fires.
pub async fn inbox(node: Node, stop: CancellationToken) {
    let cluster = node.cluster().expect("a clustered node").clone();
    let mut wait = RETRY_MIN;
    let mut first = true;
    loop {
        let subscribed = tokio::select! {
            s = cluster.store.inbox(&cluster.node_id) => s,
            _ = stop.cancelled() => return,
        };
        let mut doorbells = match subscribed {
            Ok(doorbells) => doorbells,
            Err(e) => {
                node.metrics().cluster_store_error();
                tracing::warn!(event = "cluster.inbox_failed", node = %cluster.node_id, error = %e, "cannot subscribe to the inbox; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
        };
        wait = RETRY_MIN;
        if !first {
            node.metrics().cluster_reconnect();
            tracing::info!(event = "cluster.inbox_resubscribed", node = %cluster.node_id, "inbox subscribed again; reading what was missed");
        }
        first = false;
        // Whatever was published while the subscription was down is in the logs.
        let positions = cluster.sequencer.lock().positions();
        for (session, after) in positions {
            fill(&node, &session, after).await;
        }
        loop {
            let bell = tokio::select! {
                bell = doorbells.next() => bell,
                _ = cluster.refill.notified() => {
                    // Sessions this node adopted: what came after their claim is in their logs.
                    let adopted = std::mem::take(&mut *cluster.refills.lock());
                    for (session, after) in adopted {
                        fill(&node, &session, after).await;
                    }
                    continue;
                }
                _ = stop.cancelled() => return,
            };
            let Some(bell) = bell else {
                tracing::warn!(event = "cluster.inbox_lost", node = %cluster.node_id, "inbox subscription lost");
                break;
            };
            let offer = cluster.sequencer.lock().offer(&bell.session, bell.position);
            match offer {
                _ if bell.position == 0 => moved(&node, &bell.session),
                Offer::Apply => hand(&node, &bell.session, bell.position, bell.entry).await,
                Offer::Repeat => {}
                Offer::Gap { after } => fill(&node, &bell.session, after).await,
            }
        }
    }
}

/// Reads `session`'s log after `after` and hands over what the sequencer has not.
async fn fill(node: &Node, session: &SessionId, after: u64) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    let read = match cluster.store.log_after(session, after).await {
        Ok(read) => read,
        Err(e) => {
            node.metrics().cluster_store_error();
            tracing::warn!(event = "cluster.log_read_failed", node = %cluster.node_id, error = %e, "cannot read a session log");
            return;
        }
    };
    // Another node holds a session this node still has: it did not hear of the move (its inbox
    // was down, which is why its logs are read now).
    if !read.holder.is_empty()
        && read.holder != *cluster.node_id
        && node.with_hub(|hub, _| hub.holds(session.as_str()))
    {
        moved(node, session);
        return;
    }
    let (start, fresh, lost) = cluster
        .sequencer
        .lock()
        .fill(session, read.first, read.entries);
    if lost > 0 {
        tracing::error!(
            event = "cluster.log_gap",
            node = %cluster.node_id,
            session = %session,
            lost,
            "messages for a session were no longer in its log"
        );
    }
    node.metrics().cluster_gap_filled(fresh.len());
    for (position, entry) in (start..).zip(fresh) {
        hand(node, session, position, entry).await;
    }
}

/// The room a server message is about, read from its text.
#[derive(Deserialize)]
struct About {
    room: Option<RoomId>,
}

/// Hands one message from another node to the hub. A change of a room's membership or mode
/// first brings this node's mirror of the room up to date, so the recipient can act on what it
/// is told (signal a peer that just joined) the moment it reads it.
async fn hand(node: &Node, session: &SessionId, position: u64, entry: LogEntry) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    let Some(kind) = message_kind(&entry.kind) else {
        tracing::warn!(event = "cluster.unknown_kind", kind = %entry.kind, "a forwarded message of no known type");
        return;
    };
    let room = serde_json::from_str::<About>(&entry.text)
        .ok()
        .and_then(|a| a.room);
    if let Some(room) = &room
        && matches!(kind, "peer_joined" | "peer_left" | "mode_changed")
    {
        match cluster.store.room(room, None).await {
            Ok(Some(view)) => node.with_hub(|hub, now| {
                hub.mirror_room(room, view, now);
                hub.release_mirror(room);
            }),
            Ok(None) => {}
            Err(e) => {
                node.metrics().cluster_store_error();
                tracing::warn!(event = "cluster.room_read_failed", node = %cluster.node_id, error = %e, "cannot read a room");
            }
        }
    }
    let delivered = node.with_hub(|hub, now| {
        hub.forwarded(session, position, room.as_ref(), kind, &entry.text, now)
    });
    if delivered {
        node.metrics().cluster_forwarded();
    } else {
        cluster.sequencer.lock().forget(session);
    }
}

/// Another node adopted `session` (a doorbell at position 0): it goes from this node quietly.
fn moved(node: &Node, session: &SessionId) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    cluster.sequencer.lock().forget(session);
    // Under the hub's lock, so the release queues behind every write the hub made for the
    // session: once it is committed, the session's log is whole.
    node.with_hub(|hub, now| {
        hub.moved(session, now);
        node.submit_shared(vec![Write::Released {
            session: session.clone(),
        }]);
    });
    tracing::info!(event = "cluster.session_moved", node = %cluster.node_id, session = %session, "a session resumed on another node");
}

/// Renews this node's lease and ends the sessions of dead nodes whose window passed (a failure
/// to end one is logged and counted, as before fencing; the session stays listed under this node).
/// An error when the lease was not renewed: [`StoreError::Fenced`] when the store holds no lease
/// of this node's incarnation.
async fn sweep(node: &Node) -> Result<(), StoreError> {
    let Some(cluster) = node.cluster() else {
        return Ok(());
    };
    let lease = super::lease(node.config().core().resume_window, false);
    let token = cluster.token(cluster.incarnation.load(Ordering::Acquire));
    let taken = cluster.store.lease(&cluster.node_id, &token, lease).await?;
    for session in taken {
        if let Err(e) = super::adopt::expire(node, session).await {
            node.metrics().cluster_store_error();
            tracing::warn!(event = "cluster.sweep_failed", node = %cluster.node_id, error = %e, "cannot end a session of a node that is gone");
        }
    }
    Ok(())
}

/// Probes the store every [`PROBE_EVERY`] until `stop` fires; a store that fails or takes longer
/// than [`PROBE_TIMEOUT`] is unreachable until it answers again. An answer renews the lease. A
/// lease not renewed for [`LEASE`] (by this node's clock: the store did not answer, or the
/// process did not run) or refused by the store fences the node; a fenced node rejoins once the
/// store answers.
pub async fn health(node: Node, stop: CancellationToken) {
    let cluster = node.cluster().expect("a clustered node").clone();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `Cluster::connect` took the lease just before.
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        // First, before anything else of this round: a node that was not running (SIGSTOP)
        // learns here that its lease is over.
        if !cluster.fenced() && renewed.elapsed() >= LEASE {
            fence::fence(&node, Why::Expired);
        }
        let began = Instant::now();
        let answer = tokio::time::timeout(PROBE_TIMEOUT, cluster.store.ping()).await;
        let reachable = matches!(answer, Ok(Ok(())));
        if reachable && !stop.is_cancelled() {
            let renewal = if cluster.fenced() {
                fence::rejoin(&node).await
            } else {
                sweep(&node).await
            };
            match renewal {
                Ok(()) => renewed = began,
                Err(StoreError::Fenced) => fence::fence(&node, Why::Refused),
                Err(e) => {
                    node.metrics().cluster_store_error();
                    tracing::warn!(event = "cluster.sweep_failed", node = %cluster.node_id, error = %e, "cannot renew the lease or end the sessions of a node that is gone");
                }
            }
        }
        let was = cluster
            .reachable
            .swap(reachable, std::sync::atomic::Ordering::Relaxed);
        if reachable == was {
            continue;
        }
        if reachable {
            tracing::info!(event = "cluster.store_reachable", node = %cluster.node_id, "the shared store answers again");
        } else {
            node.metrics().cluster_store_error();
            let error = match answer {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer in {} ms", PROBE_TIMEOUT.as_millis()),
            };
            tracing::error!(event = "cluster.store_unreachable", node = %cluster.node_id, error = %error, "the shared store does not answer; /readyz fails until it does");
        }
    }
}

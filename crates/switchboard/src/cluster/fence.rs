//! Fencing: a node that could not renew its lease for longer than the lease (it was stopped, cut
//! off from the store, or the store lost its data) must not act on its view any more: the other
//! nodes may have swept its sessions, and their clients resumed them elsewhere.
//!
//! A fenced node lets every session go without a word to its peers (`Hub::hand_over`: each
//! transport closes with `4006`, and its client resumes the session on any node, losslessly,
//! from the durable logs), refuses new sessions and resumes (`unavailable`; `/readyz` answers
//! 503 `fenced`), and drops every write it had not committed. Once the store answers again it
//! rejoins as a new incarnation: a new lease token, and whatever the store still lists as its
//! sessions let go as a dead node's would be (so it never takes back what the others swept).
//!
//! The store enforces the fence, not the node's clock alone: every commit carries the lease
//! token it was made under and is refused unless the store holds that very lease, so a write
//! queued or in flight before the fence cannot land after it, even from a node that was frozen
//! (SIGSTOP) and does not yet know it is fenced.

use std::sync::atomic::Ordering;

use super::{LEASE, store::StoreError};
use crate::node::Node;

/// A random part of this run's lease tokens.
pub fn nonce() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(12)
        .map(char::from)
        .collect()
}

/// Why a node fenced itself, for its log.
#[derive(Debug, Clone, Copy)]
pub enum Why {
    /// It did not renew its lease for [`LEASE`] by its own clock (the store did not answer, or
    /// the process was not running).
    Expired,
    /// The store refused a write or a renewal: it holds no such lease (it ran out, or the store
    /// lost its data).
    Refused,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Expired => "lease_expired",
            Why::Refused => "lease_refused",
        }
    }
}

/// Fences the node: see the module documentation. Does nothing on a node already fenced.
pub fn fence(node: &Node, why: Why) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    if cluster.fenced.swap(true, Ordering::AcqRel) {
        return;
    }
    let sessions = let_go(node);
    node.metrics().cluster_fenced();
    tracing::error!(
        event = "cluster.fenced",
        node = %cluster.node_id,
        why = why.as_str(),
        sessions,
        lease_ms = LEASE.as_millis() as u64,
        "this node's lease is gone: it let its sessions go to resume elsewhere and serves none until it rejoins"
    );
}

/// Lets every session go and starts a new incarnation, whose writes alone the commit task takes
/// from now on. Returns how many sessions went.
fn let_go(node: &Node) -> usize {
    let Some(cluster) = node.cluster() else {
        return 0;
    };
    let sessions = node.with_hub(|hub, now| {
        // With the hub locked, as writes are queued: every batch made before is of the old
        // incarnation, and dropped.
        cluster.incarnation.fetch_add(1, Ordering::AcqRel);
        hub.hand_over(now)
    });
    cluster.sequencer.lock().reset();
    cluster.refills.lock().clear();
    sessions
}

/// Rejoins the cluster after a fence, once the store answers: a fresh lease under a new token.
/// Sessions that reached the node while it was fenced (opened just as it was) go first, as the
/// others did.
pub async fn rejoin(node: &Node) -> Result<(), StoreError> {
    let Some(cluster) = node.cluster() else {
        return Ok(());
    };
    let_go(node);
    let incarnation = cluster.incarnation.load(Ordering::Acquire);
    let mut lease = super::lease(node.config().core().resume_window, true);
    // Sessions of dead nodes to end are for the next renewal.
    lease.most = 0;
    cluster
        .store
        .lease(&cluster.node_id, &cluster.token(incarnation), lease)
        .await?;
    cluster.fenced.store(false, Ordering::Release);
    tracing::info!(
        event = "cluster.rejoined",
        node = %cluster.node_id,
        incarnation,
        "the shared store answers: this node serves again, as a new incarnation"
    );
    Ok(())
}

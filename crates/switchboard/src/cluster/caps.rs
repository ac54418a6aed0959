//! The per-user cap across a cluster: `max_sessions_per_user` counts the user's sessions on every
//! node, not only this one's. A new session is counted in the store (`admit.lua`: the user's set
//! of sessions, checked and added to in one step) once the hub opened it, and leaves the set
//! when it ends, wherever that is (`commit.lua`, write `E`). A session over the cap is ended at
//! once, before its client hears of it, and refused with `rate_limited`, as on one node.
//!
//! It costs a new session one Redis round trip before its answer; relays cost nothing more.
//! Caps per address stay per node (a load balancer spreads an address's connections anyway):
//! see docs/cluster.md. A room's own limits across the nodes are kept by [`super::rooms`].

use switchboard_core::{Attachment, Disconnect, Identity};
use switchboard_protocol::SignalError;

use crate::node::Node;

/// Opens a session of `identity` on this node's hub, counted against its user's cap on every
/// node in cluster mode.
pub async fn open(node: &Node, identity: Identity) -> Result<Attachment, SignalError> {
    let user = identity.user.clone();
    let at = node.with_hub(|hub, now| hub.open(identity, now))?;
    let Some(cluster) = node.cluster() else {
        return Ok(at);
    };
    let max = node.config().core().max_sessions_per_user;
    let refusal = match cluster.store.admit(&user, &at.session, max).await {
        Ok(true) => return Ok(at),
        Ok(false) => SignalError::RateLimited(format!(
            "this user already has {max} sessions in the cluster"
        )),
        Err(e) => {
            node.metrics().cluster_store_error();
            tracing::warn!(event = "cluster.admit_failed", node = %cluster.node_id, error = %e, "cannot count a new session against its user's cap");
            SignalError::Unavailable("the shared store cannot be reached; try again".into())
        }
    };
    // Nothing was sent on it: it ends as if its client closed it at once.
    node.with_hub(|hub, now| hub.disconnect(&at, Disconnect::Closed, now));
    Err(refusal)
}

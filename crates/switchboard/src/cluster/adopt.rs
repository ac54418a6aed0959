//! A client resuming, on this node, a session another node held: the session is claimed in the
//! store (one Lua call moves it here and fences the old node, which then lets it go), its rooms
//! are read, and the hub adopts it from its durable log (`Hub::adopt`), so the client gets every
//! message it missed once and in order and its peers notice nothing.
//!
//! Two resumes of one session racing on two nodes: the first claim wins; the second comes from
//! the same client position, below the first one's `hello`, and is answered `session_expired`.

use switchboard_core::{Attachment, Identity, SessionId, SessionRecord};
use switchboard_protocol::{Role, RoomGrant, SignalError};

use std::time::{Duration, Instant};

use super::store::{Claim, Claimed, Store, StoreError};
use crate::node::Node;

/// Resumes `session` for `identity` after `last_seq`: on this node's hub if it holds the
/// session, else, in cluster mode, by adopting it from the node that did.
pub async fn resume(
    node: &Node,
    session: &str,
    identity: Identity,
    last_seq: u64,
) -> Result<Attachment, SignalError> {
    let here = node.with_hub(|hub, _| hub.holds(session));
    let Some(cluster) = node.cluster().filter(|_| !here).cloned() else {
        return node.with_hub(|hub, now| hub.resume(session, &identity.user, last_seq, now));
    };
    let gone = || SignalError::SessionExpired("no such session; it may have expired".into());
    let id = SessionId::parse(session).ok_or_else(gone)?;
    let store = cluster.store();
    cluster.sequencer.lock().claim(id.clone());
    let claimed = store
        .claim(cluster.node_id(), &id, &identity.user, last_seq)
        .await;
    let unavailable = |e: StoreError| {
        node.metrics().cluster_store_error();
        tracing::warn!(event = "cluster.claim_failed", node = %cluster.node_id(), error = %e, "cannot claim a session");
        SignalError::Unavailable("the shared store cannot be reached; try again".into())
    };
    let from = match claimed {
        Ok(Claim::Won(from)) => from,
        Ok(Claim::Gone) => {
            cluster.sequencer.lock().adopt(&id, None);
            return Err(gone());
        }
        Ok(Claim::Forbidden) => {
            cluster.sequencer.lock().adopt(&id, None);
            return Err(SignalError::Forbidden(
                "the session belongs to another user".into(),
            ));
        }
        Err(e) => {
            cluster.sequencer.lock().adopt(&id, None);
            return Err(unavailable(e));
        }
    };
    let claimed = match handed_over(store, cluster.node_id(), &id).await {
        Ok(Some(claimed)) => claimed,
        Ok(None) => {
            cluster.sequencer.lock().adopt(&id, None);
            return Err(gone());
        }
        Err(e) => {
            cluster.sequencer.lock().adopt(&id, None);
            return Err(unavailable(e));
        }
    };
    let record = match with_rooms(store, claimed).await {
        Ok(record) => record,
        Err(e) => {
            cluster.sequencer.lock().adopt(&id, None);
            return Err(unavailable(e));
        }
    };
    let top = (record.inbound_first + record.inbound.len() as u64).saturating_sub(1);
    let adopted = node.with_hub(|hub, now| {
        let adopted = hub.adopt(id.clone(), identity, record, last_seq, now);
        // Under the hub's lock, so no message for the session is handed over in between.
        let position = adopted.is_ok().then_some(top);
        cluster.sequencer.lock().adopt(&id, position);
        adopted
    });
    if adopted.is_ok() {
        cluster.refills.lock().push((id.clone(), top));
        cluster.refill.notify_one();
        tracing::info!(event = "cluster.session_adopted", node = %cluster.node_id(), session = %id, from = %from, "a session of another node resumed here");
    }
    adopted
}

/// How long a claim waits for the node the session was on to log what it had queued for it and
/// let go. A live node does within a round trip or two; one that does not answer by then is
/// taken as dead, and what it had not logged is lost.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

/// The claimed session's record once the node it was on let go of it (or [`HANDOVER_WAIT`]
/// passed): the client may hold messages that node queued but had not logged yet at the claim.
async fn handed_over(
    store: &dyn Store,
    node: &str,
    session: &SessionId,
) -> Result<Option<Claimed>, StoreError> {
    let give_up = Instant::now() + HANDOVER_WAIT;
    let mut wait = Duration::from_millis(2);
    loop {
        let claimed = store.record(node, session).await?;
        match claimed {
            Some(c) if c.moving && Instant::now() < give_up => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(50));
            }
            other => return Ok(other),
        }
    }
}

/// The claimed session's record with a view of each of its rooms.
async fn with_rooms(store: &dyn Store, claimed: Claimed) -> Result<SessionRecord, StoreError> {
    let mut record = claimed.record;
    for room in claimed.rooms {
        if let Some(view) = store.room(&room, None).await? {
            record.rooms.push((room, view));
        }
    }
    Ok(record)
}

/// Ends `session`, which the lease sweep claimed for this node: a session of a node that died,
/// whose client did not resume it within its window. Its peers are told `timeout`.
pub async fn expire(node: &Node, session: SessionId) -> Result<(), StoreError> {
    let Some(cluster) = node.cluster() else {
        return Ok(());
    };
    let store = cluster.store();
    let Some(claimed) = store.record(cluster.node_id(), &session).await? else {
        return Ok(());
    };
    let identity = Identity {
        user: claimed.user.as_str().into(),
        role: Role::Guest,
        name: None,
        grant: RoomGrant::Prefix(String::new()),
        lobby: false,
        address: None,
        ice_servers: Vec::new(),
    };
    let record = with_rooms(store, claimed).await?;
    node.with_hub(|hub, now| hub.expire(session.clone(), identity, &record, now));
    tracing::info!(event = "cluster.session_expired", node = %cluster.node_id(), session = %session, "a session of a node that is gone was not resumed in time");
    Ok(())
}

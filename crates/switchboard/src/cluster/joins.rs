//! Joins in cluster mode. A join's rules (room full, peer id taken, one session per user, kicked
//! users) need the whole room, whose members may be on any node: the node takes the room's lock
//! in the store and reads the room in one call, puts that view into its hub's mirror, lets the hub
//! decide, and releases the lock with the join's own writes (in the same commit, after them).
//! Two nodes therefore never decide joins of one room at once. The lobby's steps take the same
//! road: a `knock` (so a host joining anywhere at that moment either is in the view or is
//! shown the knock) and an `admit` or `deny` (so two hosts on two nodes cannot both answer one
//! knock: the second reads it gone). Everything else a client sends is decided against the
//! mirror as it is.
//!
//! On WebSocket, a connection's messages are handled in order in its own task; a join has to
//! wait for the store, so from a join until its answer the connection's messages queue in a
//! [`Pending`] and a task of their own handles them, in order.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use rand::{Rng, distr::Alphanumeric};
use switchboard_core::{Attachment, Now, Refusal, RoomView};
use switchboard_protocol::{
    ClientMessage, ErrorBody, Limits, RoomId, ServerBody, ServerMessage, SignalError,
    parse_client_message,
};

use super::{Cluster, LOCK_MS, store::Write};
use crate::{delivery::Hub, node::Node};

/// How long a join waits for another node to release the room's lock.
const LOCK_WAIT: Duration = Duration::from_millis(LOCK_MS);

/// Messages a WebSocket connection may queue behind a join. Past it the client is sending faster
/// than joins are decided, and the connection is closed as lost (the client resumes).
pub const PENDING_LIMIT: usize = 256;

/// The room a client message must lock, if it is a join, a knock or an answer to a knock.
pub fn locked_room(text: &str, limits: &Limits) -> Option<RoomId> {
    // Most messages are relays: substring tests spare them a second parse.
    if !["join", "knock", "admit", "deny"]
        .iter()
        .any(|kind| text.contains(kind))
    {
        return None;
    }
    match parse_client_message(text, limits).ok()?.message {
        ClientMessage::Join { room, .. }
        | ClientMessage::Knock { room }
        | ClientMessage::Decide { room, .. } => Some(room.owned()),
        _ => None,
    }
}

/// Rooms whose locks this node holds for the joins of one hub call, with their views.
pub struct Locked {
    rooms: Vec<(RoomId, Arc<str>, Option<RoomView>)>,
}

/// Takes the join locks of `rooms` and reads them, waiting up to [`LOCK_WAIT`] for each. A room
/// that cannot be had is answered `unavailable`.
pub async fn lock(cluster: &Cluster, mut rooms: Vec<RoomId>) -> Result<Locked, SignalError> {
    rooms.sort();
    rooms.dedup();
    let mut locked = Locked { rooms: Vec::new() };
    for room in rooms {
        match lock_one(cluster, &room).await {
            Ok((token, view)) => locked.rooms.push((room, token, Some(view))),
            Err(e) => {
                // Locks taken so far go back at once.
                let _ = cluster.submit(locked.unlocks());
                return Err(e);
            }
        }
    }
    Ok(locked)
}

async fn lock_one(cluster: &Cluster, room: &RoomId) -> Result<(Arc<str>, RoomView), SignalError> {
    let token: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let give_up = Instant::now() + LOCK_WAIT;
    let mut wait = Duration::from_millis(2);
    loop {
        match cluster.store.room(room, Some((&token, LOCK_MS))).await {
            Ok(Some(view)) => return Ok((token.into(), view)),
            Ok(None) if Instant::now() < give_up => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(50));
            }
            Ok(None) => {
                return Err(SignalError::Unavailable(format!(
                    "room `{room}` is busy; try again"
                )));
            }
            Err(e) => {
                tracing::warn!(event = "cluster.lock_failed", node = %cluster.node_id, error = %e, "cannot lock a room");
                return Err(SignalError::Unavailable(
                    "the shared store cannot be reached; try again".into(),
                ));
            }
        }
    }
}

impl Locked {
    /// Brings the hub's mirrors of the locked rooms up to their views: call in the hub call that
    /// handles the joins, before them. A room nobody is in is not opened here
    /// ([`switchboard_core::Hub::look_at`]): a join opens it, a knock or a deletion does not.
    pub fn mirror(&mut self, hub: &mut Hub, now: Now) {
        for (room, _, view) in &mut self.rooms {
            if let Some(view) = view.take() {
                hub.look_at(room, view, now);
            }
        }
    }

    /// After the joins, in the same hub call: drops the mirrors of rooms no session of this node
    /// is in (a refused join).
    pub fn settle(&self, hub: &mut Hub) {
        for (room, _, _) in &self.rooms {
            hub.release_mirror(room);
        }
    }

    /// The writes that release the locks: submit them after the hub call's own.
    pub fn unlocks(&self) -> Vec<Write> {
        (self.rooms.iter())
            .map(|(room, token, _)| Write::Unlock {
                room: room.clone(),
                token: token.clone(),
            })
            .collect()
    }
}

/// Runs `f` on the hub against `room` as the store holds it, under the room's join lock: the
/// hub's mirror is brought up to a fresh view first and dropped after if no session of this node
/// is in it, and the lock goes with the call's writes. What the server itself decides about a
/// room spread over nodes (an owner's answer to a knock, an idle close) takes this road, as a
/// join does. `unavailable` when the lock cannot be had.
pub async fn under_lock<R>(
    node: &Node,
    cluster: &Cluster,
    room: &RoomId,
    f: impl FnOnce(&mut Hub, Now) -> R,
) -> Result<R, SignalError> {
    let mut locked = lock(cluster, vec![room.clone()]).await?;
    let result = node.with_hub(|hub, now| {
        locked.mirror(hub, now);
        let result = f(hub, now);
        locked.settle(hub);
        result
    });
    node.submit_shared(locked.unlocks());
    Ok(result)
}

/// Handles one WebSocket text of a clustered node: a join under its room's lock, anything else
/// as it is.
async fn receive(node: &Node, cluster: &Cluster, at: &Attachment, text: &str) {
    let limits = &node.config().limits;
    let Some(room) = locked_room(text, limits) else {
        node.with_hub(|hub, now| {
            let result = hub.receive(at, text, now);
            reply_refusal(hub, at, result, now);
        });
        return;
    };
    match lock(cluster, vec![room]).await {
        Ok(mut locked) => {
            node.with_hub(|hub, now| {
                locked.mirror(hub, now);
                let result = hub.receive(at, text, now);
                reply_refusal(hub, at, result, now);
                locked.settle(hub);
            });
            node.submit_shared(locked.unlocks());
        }
        Err(e) => {
            let mut body = ErrorBody::from_error(&e);
            let frame = parse_client_message(text, limits).ok();
            let kind = frame.as_ref().map_or("join", |f| f.message.type_name());
            body.type_name = Some(kind.into());
            let id = frame.and_then(|f| f.header.id.clone());
            let error = ServerMessage::new(ServerBody::Error(body)).with_id(id);
            node.with_hub(|hub, now| hub.reply(at, error, now));
        }
    }
}

fn reply_refusal(hub: &mut Hub, at: &Attachment, result: Result<(), Refusal>, now: Now) {
    if let Err(Refusal::Reply(error)) = result {
        hub.reply(at, *error, now);
    }
}

/// A WebSocket connection's messages waiting behind a join. See the module documentation.
#[derive(Default)]
pub struct Pending {
    state: Mutex<PendingState>,
}

#[derive(Default)]
struct PendingState {
    /// A task is handling the queue.
    busy: bool,
    texts: VecDeque<String>,
}

/// What became of a text offered to [`Pending::offer`].
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Not a join and nothing waiting: the connection handles it as on a single node.
    Direct,
    /// Queued; the pending task handles it.
    Queued,
    /// The queue is full: the connection closes.
    Overflow,
}

impl Pending {
    /// Offers a text the connection read; see [`Taken`].
    pub fn offer(self: &Arc<Self>, node: &Node, at: &Attachment, text: &str) -> Taken {
        let mut state = self.state.lock();
        if !state.busy {
            if locked_room(text, &node.config().limits).is_none() {
                return Taken::Direct;
            }
            state.busy = true;
            node.tasks()
                .spawn(self.clone().run(node.clone(), at.clone()));
        }
        if state.texts.len() >= PENDING_LIMIT {
            return Taken::Overflow;
        }
        state.texts.push_back(text.to_owned());
        Taken::Queued
    }

    /// Handles the queue in order until it is empty.
    async fn run(self: Arc<Self>, node: Node, at: Attachment) {
        let Some(cluster) = node.cluster().cloned() else {
            return;
        };
        loop {
            let text = {
                let mut state = self.state.lock();
                match state.texts.pop_front() {
                    Some(text) => text,
                    None => {
                        state.busy = false;
                        return;
                    }
                }
            };
            receive(&node, &cluster, &at, &text).await;
        }
    }
}

//! Cluster mode with the SFU: each SFU room's media lives on one node, its *media node*, whose
//! SFU holds every member of the room, whichever node holds the member's signaling.
//!
//! - **Which node.** A room's media node is recorded in Redis (`p:r:{room}:media`, `media.lua`):
//!   the first node to need the room's SFU records itself, and the others find it there. A
//!   recorded node whose lease ran out is dead, and the next node to ask takes the room.
//! - **Commands there.** Each node's hub hands the SFU the joins and leaves of its own members
//!   and their messages to `sfu` (`switchboard_core::MediaCommand`). In cluster mode they go to
//!   this module's router instead of the worker: those of a room this node hosts go to its own
//!   worker, the others are published on the media node's media inbox (`p:n:{node}:media`), in
//!   order, from one connection. The media node's inbox task feeds them to its worker.
//! - **Answers back.** Each command names the member's session, so the SFU's messages (answers,
//!   track events, speakers) leave the media node through its hub to that session, as any
//!   message for another node's session does: through the recipient's durable log, so a resume
//!   on any node keeps them ([`switchboard_core::Hub::media_message`]).
//! - **A media node lost.** Every [`CHECK_EVERY`] the router asks whether the media nodes of its
//!   rooms still hold a lease. For a room whose node is gone it asks for the media node again
//!   (which takes the room for a live node), hands it its own members again, and tells each of
//!   them `media_unavailable`, on which a client starts its media session over with a new offer
//!   (the SDK does so by itself), now to the new media node.
//!
//! Queues: the router reads a [`MediaLink`]'s queues (messages bounded by `sfu.queue`, refused
//! with `media_unavailable` when full; joins and leaves never refused); a command the store
//! cannot take (Redis down) is logged and, if it is a message, answered `media_unavailable`.
//! Pub/sub loses what is published while the media node is not subscribed (its connection
//! dropped): a lost message is a lost offer or candidate, which the client's media session
//! recovers from by starting over; a lost join is sent again before the member's next offer.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt;
use switchboard_core::{MediaCommand, SessionId};
use switchboard_protocol::{ErrorCode, RoomId, SignalKind};
use tokio_util::sync::CancellationToken;

use self::wire::{decode, encode};
use crate::{
    node::Node,
    sfu::{MediaLink, MediaQueues},
};

mod wire;

/// How often the router checks that its rooms' media nodes are alive.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Wait before subscribing again after the media inbox failed.
const RESUBSCRIBE: Duration = Duration::from_millis(200);

/// The cluster's part of a node's SFU: the router's queues (what the node's hub hands the SFU)
/// and the link to this node's own worker.
pub struct Routing {
    queues: MediaQueues,
    worker: MediaLink,
}

/// Puts a router between the node's hub and its worker, reached through `worker`: the link the
/// hub is given, with queues as `worker`'s, and the router's ends.
pub fn routing(worker: MediaLink, queue: usize) -> (MediaLink, Routing) {
    let (link, queues) = crate::sfu::link(queue);
    (link, Routing { queues, worker })
}

/// Runs the router and the media inbox until `stop` fires.
pub async fn run(routing: Routing, node: Node, stop: CancellationToken) {
    let Routing { queues, worker } = routing;
    tokio::join!(
        route(node.clone(), queues, worker.clone(), stop.clone()),
        inbox(node, worker, stop),
    );
}

/// Takes the hub's media commands to their rooms' media nodes, in order, and checks every
/// [`CHECK_EVERY`] that those nodes are alive.
async fn route(node: Node, mut queues: MediaQueues, worker: MediaLink, stop: CancellationToken) {
    let mut router = Router {
        incarnation: node.cluster().map_or(0, |c| c.incarnation()),
        node,
        worker,
        rooms: HashMap::new(),
    };
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            next = queues.next() => match next {
                Some((command, session)) => router.route(command, session).await,
                None => return,
            },
            _ = tick.tick() => router.check().await,
        }
    }
}

/// The router's state: where the media of each room this node has members in goes.
struct Router {
    node: Node,
    worker: MediaLink,
    /// Room -> its media node, as last read. Rooms where this node has no member on the SFU any
    /// more are dropped at the next check.
    rooms: HashMap<RoomId, String>,
    /// The node's incarnation `rooms` was read in. A node that was fenced may have lost the
    /// rooms it hosted (the others found its lease gone): it reads every media node again.
    incarnation: u64,
}

impl Router {
    fn me(&self) -> &str {
        self.node.cluster().map_or("", |c| c.node_id())
    }

    /// Sends `command` to its room's media node, reading which node that is first if this
    /// router does not know it yet. An offer to another node goes after the member's join
    /// again: an offer starts a media session (a client starting over sends one), and a join is
    /// a no-op to an SFU that has the member, so a join the media inbox lost is made good then.
    async fn route(&mut self, command: MediaCommand, session: Option<SessionId>) {
        let room = room_of(&command).clone();
        let holder = match self.rooms.get(&room) {
            Some(holder) => holder.clone(),
            None => match self.resolve(&room).await {
                Some(holder) => holder,
                None => {
                    refuse(&self.node, &command, session.as_ref());
                    return;
                }
            },
        };
        if let MediaCommand::Signal {
            peer,
            kind: SignalKind::Offer,
            ..
        } = &command
            && holder != self.me()
        {
            let joined = MediaCommand::Joined {
                room: room.clone(),
                peer: peer.clone(),
            };
            self.send(&holder, joined, session.clone()).await;
        }
        self.send(&holder, command, session).await;
    }

    /// Reads (or takes) `room`'s media node and remembers it. The node's own members of the
    /// room are handed to it first: a join is a no-op to an SFU that has the member, and a
    /// media node this router had not used for the room may not have them (it took the room
    /// over, or this router forgot the room).
    async fn resolve(&mut self, room: &RoomId) -> Option<String> {
        let cluster = self.node.cluster()?.clone();
        let holder = match cluster.store().media_node(room, cluster.node_id()).await {
            Ok(holder) => holder,
            Err(e) => {
                self.node.metrics().cluster_store_error();
                tracing::warn!(event = "cluster.media_node_failed", node = %cluster.node_id(), error = %e, "cannot read a room's media node");
                return None;
            }
        };
        self.rooms.insert(room.clone(), holder.clone());
        let members = self.node.hub().local_sfu_members(room);
        for (peer, session) in members {
            let joined = MediaCommand::Joined {
                room: room.clone(),
                peer,
            };
            self.send(&holder, joined, Some(session)).await;
        }
        Some(holder)
    }

    /// Hands `command` to this node's worker, or publishes it on `holder`'s media inbox.
    async fn send(&self, holder: &str, command: MediaCommand, session: Option<SessionId>) {
        if holder == self.me() {
            to_worker(&self.node, &self.worker, command, session);
            return;
        }
        let Some(cluster) = self.node.cluster() else {
            return;
        };
        let text = encode(&command, session.as_ref());
        match cluster.store().send_media(holder, text).await {
            Ok(()) => self.node.metrics().cluster_media_sent(),
            Err(e) => {
                self.node.metrics().cluster_store_error();
                tracing::warn!(event = "cluster.media_send_failed", node = %cluster.node_id(), to = %holder, error = %e, "cannot send a media command to the room's media node");
                refuse(&self.node, &command, session.as_ref());
            }
        }
    }

    /// Forgets rooms this node has no SFU member in any more, and moves the rooms whose media
    /// node is gone to a live one.
    async fn check(&mut self) {
        let Some(cluster) = self.node.cluster().cloned() else {
            return;
        };
        if cluster.incarnation() != self.incarnation {
            self.incarnation = cluster.incarnation();
            self.rooms.clear();
        }
        {
            let hub = self.node.hub();
            self.rooms
                .retain(|room, _| !hub.local_sfu_members(room).is_empty());
        }
        let mut nodes: Vec<String> = (self.rooms.values())
            .filter(|n| *n != cluster.node_id())
            .cloned()
            .collect();
        nodes.sort();
        nodes.dedup();
        if nodes.is_empty() {
            return;
        }
        let alive = match cluster.store().alive(&nodes).await {
            Ok(alive) => alive,
            Err(e) => {
                self.node.metrics().cluster_store_error();
                tracing::warn!(event = "cluster.media_check_failed", node = %cluster.node_id(), error = %e, "cannot check the media nodes");
                return;
            }
        };
        let dead: Vec<&String> = (nodes.iter().zip(alive))
            .filter(|(_, alive)| !alive)
            .map(|(n, _)| n)
            .collect();
        let orphaned: Vec<(RoomId, String)> = (self.rooms.iter())
            .filter(|(_, n)| dead.contains(n))
            .map(|(r, n)| (r.clone(), n.clone()))
            .collect();
        for (room, gone) in orphaned {
            self.rooms.remove(&room);
            let Some(holder) = self.resolve(&room).await else {
                // Asked again at the next command or check.
                continue;
            };
            self.node.metrics().cluster_media_moved();
            tracing::warn!(event = "cluster.media_moved", node = %cluster.node_id(), room = %room, from = %gone, to = %holder, "a room's media node is gone: its members here start their media again on another");
            self.node.with_hub(|hub, now| {
                for (peer, session) in hub.local_sfu_members(&room) {
                    hub.media_error(
                        room.as_str(),
                        peer.as_str(),
                        Some(&session),
                        ErrorCode::MediaUnavailable,
                        "the media server of this room went away; offer again".into(),
                        now,
                    );
                }
            });
        }
    }
}

/// Takes the commands other nodes sent this node's SFU, until `stop` fires; subscribes again
/// when the subscription is lost.
async fn inbox(node: Node, worker: MediaLink, stop: CancellationToken) {
    let Some(cluster) = node.cluster().cloned() else {
        return;
    };
    loop {
        let subscribed = tokio::select! {
            s = cluster.store().media_inbox(cluster.node_id()) => s,
            _ = stop.cancelled() => return,
        };
        match subscribed {
            Ok(mut commands) => loop {
                let text = tokio::select! {
                    text = commands.next() => text,
                    _ = stop.cancelled() => return,
                };
                let Some(text) = text else {
                    tracing::warn!(event = "cluster.media_inbox_lost", node = %cluster.node_id(), "media inbox subscription lost");
                    node.metrics().cluster_reconnect();
                    break;
                };
                match decode(&text) {
                    Some((command, session)) => {
                        node.metrics().cluster_media_received();
                        to_worker(&node, &worker, command, session);
                    }
                    None => {
                        tracing::error!(event = "cluster.media_unreadable", node = %cluster.node_id(), "a media command from another node did not read; nodes of different versions?");
                    }
                }
            },
            Err(e) => {
                node.metrics().cluster_store_error();
                tracing::warn!(event = "cluster.media_inbox_failed", node = %cluster.node_id(), error = %e, "cannot subscribe to the media inbox; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RESUBSCRIBE) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Hands `command` to this node's worker; a message its queue refuses is answered
/// `media_unavailable`, through `session` when the member is on another node.
fn to_worker(node: &Node, worker: &MediaLink, command: MediaCommand, session: Option<SessionId>) {
    if let Err((command, session)) = worker.send(command, session) {
        refuse(node, &command, session.as_ref());
    }
}

/// Answers a message that could not reach the SFU with `media_unavailable`, so its sender
/// sends it again. A join or leave is not a member's message: nobody to answer.
fn refuse(node: &Node, command: &MediaCommand, session: Option<&SessionId>) {
    if let MediaCommand::Signal { room, peer, .. }
    | MediaCommand::Subscribe { room, peer, .. }
    | MediaCommand::Mute { room, peer, .. } = command
    {
        node.with_hub(|hub, now| {
            hub.media_error(
                room.as_str(),
                peer.as_str(),
                session,
                ErrorCode::MediaUnavailable,
                "the media server is busy or out of reach; send it again".into(),
                now,
            );
        });
    }
}

fn room_of(command: &MediaCommand) -> &RoomId {
    match command {
        MediaCommand::Joined { room, .. }
        | MediaCommand::Left { room, .. }
        | MediaCommand::Signal { room, .. }
        | MediaCommand::Subscribe { room, .. }
        | MediaCommand::Mute { room, .. } => room,
    }
}

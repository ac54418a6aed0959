//! The media worker: one task owning the [`Sfu`], its UDP socket and its ICE-TCP connections
//! ([`super::tcp`]).
//!
//! Each turn takes one thing (up to [`RECEIVE_BATCH`] datagrams the socket holds, a TCP frame, a
//! command, a timer), feeds it to the SFU with the current time, runs the SFU's timers that are
//! due by then (so a flood of datagrams cannot starve them, and packets the turn forwarded leave
//! in it), and then does what the SFU asks: the turn's datagrams leave together in batches ([`super::udp`]), messages for peers are handed
//! to the hub in one call, which delivers them through the same seam as every other message
//! ([`Node::with_hub`]). It stops when the node shuts down.

use std::{
    collections::HashMap,
    io::{self, ErrorKind},
    net::SocketAddr,
    time::Instant,
};

use serde::Deserialize;
use switchboard_core::{MediaCommand, SessionId};
use switchboard_protocol::{PeerId, RoomId, SignalKind};
use switchboard_sfu::{
    Datagram, Inbound, Output, Protocol, Sfu, SfuConfig, SfuStats, ToPeer, TrackId,
};
use tokio::{sync::mpsc, time::sleep_until};
use tokio_util::sync::CancellationToken;

use super::{
    MediaWorker,
    tcp::{self, TcpConnections, TcpEvent},
    udp,
};
use crate::node::Node;

/// Largest datagram read; WebRTC keeps datagrams under the path MTU (about 1,200 bytes).
const RECEIVE_BUFFER: usize = 2048;

/// Datagrams read in one turn at most. Reading the ones already waiting before sending makes
/// the turn's send batches fuller (a timer round or several publishers' frames leave together);
/// the bound keeps commands and timers from waiting behind a flood.
const RECEIVE_BATCH: usize = 32;

/// How often the SFU's gauges and counters are brought up to date.
const METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the worker until `shutdown` fires.
pub async fn run(worker: MediaWorker, node: Node, shutdown: CancellationToken) {
    let MediaWorker {
        index,
        socket,
        announced,
        tcp,
        mut queues,
        settings,
    } = worker;
    let (listener, announced_tcp) = tcp.unzip();
    let (tcp_events, mut tcp_in) = mpsc::channel(tcp::INBOUND);
    let mut connections = TcpConnections::new(tcp_events, shutdown.clone());
    let mut config = SfuConfig::new(vec![announced]);
    config.tcp_candidates = announced_tcp.into_iter().collect();
    config.max_media_lines = settings.max_media_lines;
    config.max_published_tracks = settings.max_published_tracks;
    config.default_downlink_bps = settings.downlink_kbps.saturating_mul(1000);
    config.bwe = settings.bwe;
    let mut sfu = Sfu::new(config);
    let mut routes = Routes::default();
    let mut buf = vec![0; RECEIVE_BUFFER];
    // The turn's datagrams to send, kept to reuse its allocation.
    let mut outgoing = Vec::new();
    // What this worker last handed the metrics, which take in the change.
    let mut counted = SfuStats::default();
    let mut counted_tcp = 0;
    let mut metrics_tick = tokio::time::interval(METRICS_INTERVAL);
    tracing::info!(
        event = "sfu.started",
        worker = index,
        port = announced.port(),
        "SFU worker {index} serving media on UDP port {}",
        announced.port()
    );
    // Far enough to mean "nothing due"; the loop wakes for anything else.
    let idle = || Instant::now() + std::time::Duration::from_secs(3600);
    let mut deadline = idle();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some((command, session)) = queues.next() => {
                routes.note(&command, session);
                apply(&mut sfu, command);
            }
            received = socket.recv_from(&mut buf) => {
                let count = receive(&mut sfu, &socket, &mut buf, received, announced);
                node.metrics().sfu_datagrams(false, count);
            }
            accepted = tcp::accept(listener.as_ref()) => match accepted {
                Ok((stream, peer)) => connections.accepted(stream, peer),
                Err(e) => {
                    tracing::debug!(event = "sfu.tcp_accept_failed", error = %e, "ICE-TCP accept failed");
                }
            },
            Some(event) = tcp_in.recv() => match (event, announced_tcp) {
                (TcpEvent::Frame(source, frame), Some(destination)) => {
                    node.metrics().sfu_datagrams(false, 1);
                    let datagram = Datagram {
                        proto: Protocol::Tcp,
                        source,
                        destination,
                        contents: &frame,
                    };
                    sfu.receive(Instant::now(), datagram);
                }
                (TcpEvent::Closed(peer), _) => connections.closed(peer),
                (TcpEvent::Frame(..), None) => {}
            },
            _ = sleep_until(deadline.into()) => sfu.handle_timeout(Instant::now()),
            _ = metrics_tick.tick() => {
                let now = sfu.stats();
                node.metrics().sfu(&counted, &now);
                node.metrics().sfu_tcp_connections(counted_tcp, connections.len());
                counted = now;
                counted_tcp = connections.len();
            }
        }
        // The timers are run here, after whatever the turn did, rather than only by the timer
        // branch: that one comes last in the biased `select!`, and under a steady stream of
        // datagrams it would wait while the packets they made (forwarded packets go out on an
        // `Rtc`'s timeout) waited with it. Here they leave in this turn's send batch.
        let now = Instant::now();
        let mut next = sfu.poll_timeout();
        if next.is_some_and(|at| at <= now) {
            sfu.handle_timeout(now);
            next = sfu.poll_timeout();
        }
        flush(
            &mut sfu,
            &socket,
            &mut outgoing,
            &connections,
            &node,
            &routes,
        );
        deadline = next.unwrap_or_else(idle);
    }
    connections.stopped().await;
    tracing::info!(
        event = "sfu.stopped",
        worker = index,
        "SFU worker {index} stopped"
    );
}

/// Feeds the SFU the datagram the socket just gave (`first`) and up to [`RECEIVE_BATCH`] - 1
/// more that it already holds. Returns how many it read.
fn receive(
    sfu: &mut Sfu,
    socket: &tokio::net::UdpSocket,
    buf: &mut [u8],
    first: io::Result<(usize, SocketAddr)>,
    local: SocketAddr,
) -> u64 {
    let mut count = 0;
    let mut received = first;
    for turn in 1..=RECEIVE_BATCH {
        match received {
            Ok((n, source)) => {
                count += 1;
                let datagram = Datagram {
                    proto: Protocol::Udp,
                    source,
                    destination: local,
                    contents: &buf[..n],
                };
                sfu.receive(Instant::now(), datagram);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // ICMP port unreachable from a peer that went away shows up as a read error.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => {
                tracing::warn!(event = "sfu.receive_failed", error = %e, "SFU socket read failed");
                break;
            }
        }
        if turn == RECEIVE_BATCH {
            break;
        }
        received = socket.try_recv_from(buf);
    }
    count
}

/// Sends what the SFU produced: datagrams on the socket in batches or frames on their ICE-TCP
/// connection, messages through the hub.
fn flush(
    sfu: &mut Sfu,
    socket: &tokio::net::UdpSocket,
    outgoing: &mut Vec<(Vec<u8>, SocketAddr)>,
    connections: &TcpConnections,
    node: &Node,
    routes: &Routes,
) {
    let mut signals = Vec::new();
    while let Some(output) = sfu.poll_output() {
        match output {
            Output::Transmit(t) if t.proto == Protocol::Tcp => {
                if connections.send(t.destination, t.contents.into()) {
                    node.metrics().sfu_datagrams(true, 1);
                } else {
                    node.metrics().sfu_dropped(1);
                }
            }
            Output::Transmit(t) => outgoing.push((t.contents.into(), t.destination)),
            Output::Signal { room, to, message } => signals.push((room, to, message)),
        }
    }
    if !outgoing.is_empty() {
        let outcome = udp::send(socket, outgoing);
        outgoing.clear();
        node.metrics().sfu_datagrams(true, outcome.sent);
        node.metrics().sfu_dropped(outcome.dropped);
    }
    if signals.is_empty() {
        return;
    }
    node.with_hub(|hub, now| {
        for (room, to, message) in signals {
            let route = routes.get(&room, &to);
            match message.payload() {
                Some(payload) => {
                    hub.media_message(&room, &to, route, message.type_name(), &payload, now)
                }
                None => {
                    if let ToPeer::Error(e) = message {
                        hub.media_error(&room, &to, route, e.code(), e.to_string(), now);
                    }
                }
            }
        }
    });
}

/// The session of each member the SFU serves, by room and peer, as the commands about it named
/// it: in cluster mode the room's members may be sessions of other nodes, which this node's hub
/// reaches only by their session ([`switchboard_core::Hub::media_message`]). An entry goes with
/// the member's leave; there is one per member the SFU holds.
#[derive(Default)]
struct Routes(HashMap<RoomId, HashMap<PeerId, SessionId>>);

impl Routes {
    fn note(&mut self, command: &MediaCommand, session: Option<SessionId>) {
        match (command, session) {
            (MediaCommand::Left { room, peer }, _) => {
                if let Some(members) = self.0.get_mut(room) {
                    members.remove(peer);
                    if members.is_empty() {
                        self.0.remove(room);
                    }
                }
            }
            (
                MediaCommand::Joined { room, peer }
                | MediaCommand::Signal { room, peer, .. }
                | MediaCommand::Subscribe { room, peer, .. }
                | MediaCommand::Mute { room, peer, .. },
                Some(session),
            ) => {
                let members = self.0.entry(room.clone()).or_default();
                members.insert(peer.clone(), session);
            }
            _ => {}
        }
    }

    fn get(&self, room: &str, peer: &str) -> Option<&SessionId> {
        self.0.get(room)?.get(peer)
    }
}

#[derive(Deserialize)]
struct SdpPayload {
    sdp: String,
}

/// An offer's payload: its SDP and the stream tags of its m-lines. `tags` is an extension the
/// protocol's parser does not check, so a malformed one is ignored, never an error.
#[derive(Deserialize)]
struct OfferPayload {
    sdp: String,
    #[serde(default)]
    tags: serde_json::Value,
}

impl OfferPayload {
    fn into_inbound(self) -> Inbound {
        let tags = self
            .tags
            .as_object()
            .map(|tags| {
                tags.iter()
                    .filter_map(|(mid, tag)| Some((mid.clone(), tag.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Inbound::Offer {
            sdp: self.sdp,
            tags,
        }
    }
}

#[derive(Deserialize)]
struct CandidatePayload {
    candidate: String,
}

/// Feeds one of the hub's commands to the SFU. Payloads were validated by the protocol's parser,
/// so one that does not read here is a bug: logged and dropped.
fn apply(sfu: &mut Sfu, command: MediaCommand) {
    let now = Instant::now();
    match command {
        MediaCommand::Joined { room, peer } => sfu.join(now, room.as_str(), peer.as_str()),
        MediaCommand::Left { room, peer } => sfu.leave(now, room.as_str(), peer.as_str()),
        MediaCommand::Signal {
            room,
            peer,
            kind,
            payload,
        } => {
            let inbound = match kind {
                SignalKind::Offer => {
                    serde_json::from_str::<OfferPayload>(&payload).map(OfferPayload::into_inbound)
                }
                SignalKind::Answer => serde_json::from_str::<SdpPayload>(&payload)
                    .map(|p| Inbound::Answer { sdp: p.sdp }),
                _ => {
                    serde_json::from_str::<CandidatePayload>(&payload).map(|p| Inbound::Candidate {
                        candidate: p.candidate,
                    })
                }
            };
            match inbound {
                Ok(inbound) => sfu.handle(now, room.as_str(), peer.as_str(), inbound),
                Err(e) => tracing::error!(
                    event = "sfu.unreadable_payload",
                    error = %e,
                    "a validated payload did not read; this is a bug"
                ),
            }
        }
        MediaCommand::Subscribe {
            room,
            peer,
            tracks,
            subscribe,
            view,
        } => {
            let tracks = tracks.iter().map(|t| TrackId::from(&**t)).collect();
            sfu.handle(
                now,
                room.as_str(),
                peer.as_str(),
                Inbound::Subscribe {
                    tracks,
                    subscribe,
                    view,
                },
            );
        }
        MediaCommand::Mute {
            room,
            peer,
            track,
            muted,
            host,
        } => sfu.handle(
            now,
            room.as_str(),
            peer.as_str(),
            Inbound::Mute {
                track: TrackId::from(&*track),
                muted,
                host,
            },
        ),
    }
}

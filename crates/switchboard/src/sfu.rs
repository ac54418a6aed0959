//! The SFU's IO: the media workers (`sfu.workers`, one by default), each a task owning a sans-IO
//! [`Sfu`] and one UDP socket that all of its participants share (and optionally an ICE-TCP
//! port), and the link the hub's media commands reach them through.
//!
//! | piece | owns |
//! |---|---|
//! | [`MediaLink`] | the two queues into each worker, held by the [`Node`](crate::node::Node) |
//! | [`placement`] | which worker holds each room: the one with the fewest members when it opens |
//! | [`worker`] | the task: socket reads, commands, timers in, datagrams and messages out |
//! | [`tcp`] | ICE-TCP connections: RFC 4571 frames in and out, each connection a task of the worker's |
//! | [`udp`] | the UDP socket's batched sends (`sendmmsg`), and what is dropped when it is full |
//!
//! Workers share nothing: a room's members are all on one worker, so forwarding never crosses
//! threads, and a node with several cores runs several workers side by side on its runtime.
//!
//! Queues and their bounds, per worker: messages to `sfu` (`offer`, `answer`, `candidate`,
//! `subscribe`) wait in a queue of `sfu.queue`; when it is full the sender gets
//! `media_unavailable` and may send again. Joins and leaves go on a queue with no bound of its
//! own, since there is at most one of each per membership and memberships are bounded by
//! `max_peers` and the session caps: they are never refused, so the SFU never keeps a member
//! the hub has let go. The worker takes every join and leave before the next message, so it
//! sees them in the hub's order.
//!
//! [`Sfu`]: switchboard_sfu::Sfu

pub mod placement;
pub mod tcp;
pub mod udp;
pub mod worker;

use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use switchboard_core::{MediaCommand, SessionId};
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::mpsc,
};

use self::placement::Placement;
use crate::config::SfuSettings;

/// A media command with the session of the member it is about, when its node knew it: the
/// room's media node, which may hold none of the room's members (cluster mode), reaches the
/// member through it.
pub type Routed = (MediaCommand, Option<SessionId>);

/// Where the hub's media commands go: the workers' queues, each room's to the worker that holds
/// it ([`placement`]); in cluster mode, the router's that takes them to the room's media node
/// (`cluster::media`).
#[derive(Clone)]
pub struct MediaLink {
    lanes: Arc<[Lane]>,
    /// Which lane each room's commands take; consulted only with more than one lane.
    placement: Arc<Mutex<Placement>>,
}

/// The two queues into one reader.
struct Lane {
    messages: mpsc::Sender<Routed>,
    members: mpsc::UnboundedSender<Routed>,
}

impl MediaLink {
    /// Hands a command to its room's worker. A message refused (its queue is full, or the
    /// worker has stopped) comes back for the caller to answer with `media_unavailable`.
    pub fn send(&self, command: MediaCommand, session: Option<SessionId>) -> Result<(), Routed> {
        if let [only] = &*self.lanes {
            return only.send(command, session);
        }
        // Placed and queued under one lock, so the queues take a room's commands in the order
        // the placement saw them.
        let mut placement = self.placement.lock().unwrap_or_else(|e| e.into_inner());
        self.lanes[placement.route(&command)].send(command, session)
    }
}

impl Lane {
    fn send(&self, command: MediaCommand, session: Option<SessionId>) -> Result<(), Routed> {
        match command {
            MediaCommand::Joined { .. } | MediaCommand::Left { .. } => {
                // A stopped worker needs no membership news.
                let _ = self.members.send((command, session));
                Ok(())
            }
            MediaCommand::Signal { .. }
            | MediaCommand::Subscribe { .. }
            | MediaCommand::Mute { .. } => {
                (self.messages.try_send((command, session))).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
                })
            }
        }
    }
}

/// The reading ends of a [`MediaLink`]'s queues.
pub struct MediaQueues {
    messages: mpsc::Receiver<Routed>,
    members: mpsc::UnboundedReceiver<Routed>,
    /// Joins and leaves taken before the message after them (bounded by what the members'
    /// queue held).
    pending: VecDeque<Routed>,
}

impl MediaQueues {
    /// The next command, joins and leaves made before a message coming first, so the reader
    /// sees them in the hub's order; `None` once every link is gone. Cancel-safe.
    pub async fn next(&mut self) -> Option<Routed> {
        if let Some(command) = self.pending.pop_front() {
            return Some(command);
        }
        tokio::select! {
            biased;
            Some(command) = self.members.recv() => Some(command),
            Some(command) = self.messages.recv() => {
                while let Ok(earlier) = self.members.try_recv() {
                    self.pending.push_back(earlier);
                }
                self.pending.push_back(command);
                self.pending.pop_front()
            }
            else => None,
        }
    }
}

/// A link to one reader and its queues: messages to `sfu` wait in a queue of `queue`; joins and
/// leaves are never refused (see the module documentation).
pub fn link(queue: usize) -> (MediaLink, MediaQueues) {
    let (link, mut queues) = links(queue, 1);
    (link, queues.remove(0))
}

/// A link to `readers` readers (at least one), each with queues as [`link`]'s, each room's
/// commands going to one of them ([`placement`]).
fn links(queue: usize, readers: usize) -> (MediaLink, Vec<MediaQueues>) {
    let (lanes, queues) = (0..readers.max(1))
        .map(|_| {
            let (messages_tx, messages) = mpsc::channel(queue);
            let (members_tx, members) = mpsc::unbounded_channel();
            let lane = Lane {
                messages: messages_tx,
                members: members_tx,
            };
            let queues = MediaQueues {
                messages,
                members,
                pending: VecDeque::new(),
            };
            (lane, queues)
        })
        .unzip::<_, _, Vec<_>, Vec<_>>();
    let link = MediaLink {
        placement: Arc::new(Mutex::new(Placement::new(lanes.len()))),
        lanes: lanes.into(),
    };
    (link, queues)
}

/// A bound media worker, ready to run: its socket and the ends of the queues it reads.
pub struct MediaWorker {
    /// Which of the node's workers (`0..sfu.workers`), for logs.
    pub(crate) index: usize,
    pub(crate) socket: UdpSocket,
    pub(crate) announced: SocketAddr,
    /// The ICE-TCP listener and the address announced for it, with `sfu.tcp_port`.
    pub(crate) tcp: Option<(TcpListener, SocketAddr)>,
    pub(crate) queues: MediaQueues,
    pub(crate) settings: SfuSettings,
}

impl MediaWorker {
    /// The address clients are told to send media to.
    pub fn announced(&self) -> SocketAddr {
        self.announced
    }

    /// The ICE-TCP address clients are told of, when `sfu.tcp_port` is set.
    pub fn announced_tcp(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|(_, addr)| *addr)
    }
}

/// The node's bound SFU: its media workers and, in cluster mode, the router in front of them.
pub struct Media {
    /// The workers, in order: worker `i` on the `i`th port.
    pub(crate) workers: Vec<MediaWorker>,
    /// Cluster mode: the router taking this node's commands to each room's media node, and the
    /// commands of other nodes to this node's workers ([`crate::cluster::media`]).
    pub(crate) routing: Option<crate::cluster::media::Routing>,
}

/// Binds the SFU's sockets if `settings` enable the SFU, `sfu.workers` of each: worker `i` on
/// `udp_port + i` (and `tcp_port + i`), or on ports the system picks when those are `0`. `None`
/// when the SFU is off.
pub async fn bind(settings: &SfuSettings) -> io::Result<Option<(MediaLink, Media)>> {
    let Some(udp_port) = settings.udp_port else {
        return Ok(None);
    };
    let (link, queues) = links(settings.queue, settings.workers);
    let mut workers = Vec::with_capacity(queues.len());
    for (index, queues) in queues.into_iter().enumerate() {
        let port = |base: u16| {
            SfuSettings::worker_port(base, index)
                .ok_or_else(|| io::Error::other("sfu.workers runs past port 65535"))
        };
        let socket = UdpSocket::bind(SocketAddr::new(settings.bind, port(udp_port)?)).await?;
        let bound = socket.local_addr()?;
        let announced = settings.announced(bound.port()).ok_or_else(|| {
            io::Error::other("sfu.bind is unspecified and sfu.public_ip is not set")
        })?;
        let tcp = match settings.tcp_port {
            Some(tcp_port) => {
                let listener =
                    TcpListener::bind(SocketAddr::new(settings.bind, port(tcp_port)?)).await?;
                let bound = listener.local_addr()?.port();
                Some((listener, SocketAddr::new(announced.ip(), bound)))
            }
            None => None,
        };
        workers.push(MediaWorker {
            index,
            socket,
            announced,
            tcp,
            queues,
            settings: settings.clone(),
        });
    }
    Ok(Some((
        link,
        Media {
            workers,
            routing: None,
        },
    )))
}

//! The SFU's IO: one UDP socket for every participant (and optionally one ICE-TCP port), the
//! media worker task that owns the sans-IO [`Sfu`], and the link the hub's media commands reach
//! it through.
//!
//! | piece | owns |
//! |---|---|
//! | [`MediaLink`] | the two queues into the worker, held by the [`Node`](crate::node::Node) |
//! | [`worker`] | the task: socket reads, commands, timers in, datagrams and messages out |
//! | [`tcp`] | ICE-TCP connections: RFC 4571 frames in and out, each connection a task of the worker's |
//! | [`udp`] | the UDP socket's batched sends (`sendmmsg`), and what is dropped when it is full |
//!
//! Queues and their bounds: messages to `sfu` (`offer`, `answer`, `candidate`, `subscribe`) wait
//! in a queue of `sfu.queue`; when it is full the sender gets `media_unavailable` and may send
//! again. Joins and leaves go on a queue with no bound of its own, since there is at most one of
//! each per membership and memberships are bounded by `max_peers` and the session caps: they
//! are never refused, so the SFU never keeps a member the hub has let go. The worker takes
//! every join and leave before the next message, so it sees them in the hub's order.
//!
//! [`Sfu`]: switchboard_sfu::Sfu

pub mod tcp;
pub mod udp;
pub mod worker;

use std::{collections::VecDeque, io, net::SocketAddr};

use switchboard_core::{MediaCommand, SessionId};
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::mpsc,
};

use crate::config::SfuSettings;

/// A media command with the session of the member it is about, when its node knew it: the
/// room's media node, which may hold none of the room's members (cluster mode), reaches the
/// member through it.
pub type Routed = (MediaCommand, Option<SessionId>);

/// Where the hub's media commands go: the worker's queues (in cluster mode, the router's that
/// takes them to the room's media node: `cluster::media`).
#[derive(Clone)]
pub struct MediaLink {
    messages: mpsc::Sender<Routed>,
    members: mpsc::UnboundedSender<Routed>,
}

impl MediaLink {
    /// Hands a command to the worker. A message refused (its queue is full, or the worker has
    /// stopped) comes back for the caller to answer with `media_unavailable`.
    pub fn send(&self, command: MediaCommand, session: Option<SessionId>) -> Result<(), Routed> {
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

/// A link and its queues: messages to `sfu` wait in a queue of `queue`; joins and leaves are
/// never refused (see the module documentation).
pub fn link(queue: usize) -> (MediaLink, MediaQueues) {
    let (messages_tx, messages) = mpsc::channel(queue);
    let (members_tx, members) = mpsc::unbounded_channel();
    let link = MediaLink {
        messages: messages_tx,
        members: members_tx,
    };
    let queues = MediaQueues {
        messages,
        members,
        pending: VecDeque::new(),
    };
    (link, queues)
}

/// A bound SFU, ready to run: its socket and the ends of the queues the worker reads.
pub struct MediaWorker {
    pub(crate) socket: UdpSocket,
    pub(crate) announced: SocketAddr,
    /// The ICE-TCP listener and the address announced for it, with `sfu.tcp_port`.
    pub(crate) tcp: Option<(TcpListener, SocketAddr)>,
    pub(crate) queues: MediaQueues,
    pub(crate) settings: SfuSettings,
    /// Cluster mode: the router taking this node's commands to each room's media node, and the
    /// commands of other nodes to this worker ([`crate::cluster::media`]).
    pub(crate) routing: Option<crate::cluster::media::Routing>,
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

/// Binds the SFU's UDP socket if `settings` enable the SFU; `None` when they do not.
pub async fn bind(settings: &SfuSettings) -> io::Result<Option<(MediaLink, MediaWorker)>> {
    let Some(port) = settings.udp_port else {
        return Ok(None);
    };
    let socket = UdpSocket::bind(SocketAddr::new(settings.bind, port)).await?;
    let bound = socket.local_addr()?;
    let announced = settings
        .announced(bound.port())
        .ok_or_else(|| io::Error::other("sfu.bind is unspecified and sfu.public_ip is not set"))?;
    let tcp = match settings.tcp_port {
        Some(port) => {
            let listener = TcpListener::bind(SocketAddr::new(settings.bind, port)).await?;
            let port = listener.local_addr()?.port();
            Some((listener, SocketAddr::new(announced.ip(), port)))
        }
        None => None,
    };
    let (link, queues) = self::link(settings.queue);
    let worker = MediaWorker {
        socket,
        announced,
        tcp,
        queues,
        settings: settings.clone(),
        routing: None,
    };
    Ok(Some((link, worker)))
}

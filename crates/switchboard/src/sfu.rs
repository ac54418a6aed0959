//! The SFU's IO: one UDP socket for every participant, the media worker task that owns the
//! sans-IO [`Sfu`], and the link the hub's media commands reach it through.
//!
//! | piece | owns |
//! |---|---|
//! | [`MediaLink`] | the two queues into the worker, held by the [`Node`](crate::node::Node) |
//! | [`worker`] | the task: socket reads, commands, timers in, datagrams and messages out |
//!
//! Queues and their bounds: messages to `sfu` (`offer`, `answer`, `candidate`, `subscribe`) wait
//! in a queue of `sfu.queue`; when it is full the sender gets `media_unavailable` and may send
//! again. Joins and leaves go on a queue with no bound of its own, since there is at most one of
//! each per membership and memberships are bounded by `max_peers` and the session caps: they
//! are never refused, so the SFU never keeps a member the hub has let go. The worker takes
//! every join and leave before the next message, so it sees them in the hub's order.
//!
//! [`Sfu`]: switchboard_sfu::Sfu

pub mod worker;

use std::{io, net::SocketAddr};

use switchboard_core::MediaCommand;
use tokio::{net::UdpSocket, sync::mpsc};

use crate::config::SfuSettings;

/// Where the hub's media commands go: the worker's queues.
#[derive(Clone)]
pub struct MediaLink {
    messages: mpsc::Sender<MediaCommand>,
    members: mpsc::UnboundedSender<MediaCommand>,
}

impl MediaLink {
    /// Hands a command to the worker. A message refused (its queue is full, or the worker has
    /// stopped) comes back for the caller to answer with `media_unavailable`.
    pub fn send(&self, command: MediaCommand) -> Result<(), MediaCommand> {
        match command {
            MediaCommand::Joined { .. } | MediaCommand::Left { .. } => {
                // A stopped worker needs no membership news.
                let _ = self.members.send(command);
                Ok(())
            }
            MediaCommand::Signal { .. }
            | MediaCommand::Subscribe { .. }
            | MediaCommand::Mute { .. } => self.messages.try_send(command).map_err(|e| match e {
                mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
            }),
        }
    }
}

/// A bound SFU, ready to run: its socket and the ends of the queues the worker reads.
pub struct MediaWorker {
    pub(crate) socket: UdpSocket,
    pub(crate) announced: SocketAddr,
    pub(crate) messages: mpsc::Receiver<MediaCommand>,
    pub(crate) members: mpsc::UnboundedReceiver<MediaCommand>,
    pub(crate) settings: SfuSettings,
}

impl MediaWorker {
    /// The address clients are told to send media to.
    pub fn announced(&self) -> SocketAddr {
        self.announced
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
    let (messages_tx, messages) = mpsc::channel(settings.queue);
    let (members_tx, members) = mpsc::unbounded_channel();
    let link = MediaLink {
        messages: messages_tx,
        members: members_tx,
    };
    let worker = MediaWorker {
        socket,
        announced,
        messages,
        members,
        settings: settings.clone(),
    };
    Ok(Some((link, worker)))
}

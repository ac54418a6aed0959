//! ICE-TCP: the SFU's TCP port, for clients whose network blocks UDP (RFC 6544).
//!
//! The SFU announces a passive TCP candidate beside its UDP one; a browser that cannot reach the
//! UDP port connects here and sends its STUN checks, DTLS and SRTP as RFC 4571 frames (a 16-bit
//! length, then the packet; `LengthDelimitedCodec` does the framing). To the sans-IO SFU a frame
//! is a datagram whose protocol is `Tcp` and whose source is the connection's peer address, and
//! what it sends back comes out as a `Tcp` transmit to that address.
//!
//! The media worker owns the [`TcpConnections`]: the write queue of each connection, by peer
//! address. Each connection is a task, tracked by the worker and stopped with it, that reads
//! frames into the worker's inbound queue and writes the frames queued for it.
//!
//! Bounds and overflow:
//! - at most [`MAX_CONNECTIONS`] connections; one past it is closed at accept;
//! - a connection that carries no frame for [`IDLE`] is closed (browsers send a consent check
//!   every few seconds, so only a dead or idle connection goes);
//! - inbound frames from every connection share one queue of [`INBOUND`] frames; when it is full a
//!   connection waits to put its frame in, so TCP's flow control slows that client alone;
//! - each connection's outbound queue holds [`OUTBOUND`] frames; past it a frame is dropped, as a
//!   network drops a datagram, and str0m's retransmission and keyframe requests recover;
//! - a frame longer than 65,535 bytes (what 16 bits say) ends the connection.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_util::{
    codec::{Framed, LengthDelimitedCodec},
    sync::CancellationToken,
    task::TaskTracker,
};

/// Connections at most.
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection with no frame for this long is closed.
pub const IDLE: Duration = Duration::from_secs(30);
/// Frames from all connections waiting for the worker.
pub const INBOUND: usize = 1024;
/// Frames waiting to be written to one connection.
pub const OUTBOUND: usize = 256;

/// What a connection task tells the worker.
pub enum TcpEvent {
    /// A frame from the client at this address.
    Frame(SocketAddr, BytesMut),
    /// The connection is gone.
    Closed(SocketAddr),
}

/// The worker's side of the ICE-TCP connections.
pub struct TcpConnections {
    writers: HashMap<SocketAddr, mpsc::Sender<Bytes>>,
    events: mpsc::Sender<TcpEvent>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl TcpConnections {
    /// No connections yet; their tasks report on `events` and stop with `shutdown`.
    pub fn new(events: mpsc::Sender<TcpEvent>, shutdown: CancellationToken) -> Self {
        TcpConnections {
            writers: HashMap::new(),
            events,
            tasks: TaskTracker::new(),
            shutdown,
        }
    }

    /// Takes a connection the listener accepted, or closes it when there are too many.
    pub fn accepted(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.writers.len() >= MAX_CONNECTIONS {
            // Connections whose end is still on its way to the worker make room too.
            self.writers.retain(|_, w| !w.is_closed());
        }
        if self.writers.len() >= MAX_CONNECTIONS {
            tracing::debug!(
                event = "sfu.tcp_refused",
                "ICE-TCP connection closed: {MAX_CONNECTIONS} are open"
            );
            return;
        }
        // Media is small and latency-bound: no coalescing of small writes.
        let _ = stream.set_nodelay(true);
        let (writer, outbound) = mpsc::channel(OUTBOUND);
        self.writers.insert(peer, writer);
        let (events, shutdown) = (self.events.clone(), self.shutdown.clone());
        self.tasks
            .spawn(connection(stream, peer, outbound, events, shutdown));
    }

    /// Queues `packet` for the client at `destination`, taking it without a copy; whether it
    /// was queued (not when that connection is gone or its queue is full).
    pub fn send(&self, destination: SocketAddr, packet: Vec<u8>) -> bool {
        self.writers
            .get(&destination)
            .is_some_and(|w| w.try_send(Bytes::from(packet)).is_ok())
    }

    /// Forgets a connection whose task ended.
    pub fn closed(&mut self, peer: SocketAddr) {
        self.writers.remove(&peer);
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }

    /// Waits for every connection task to end (after `shutdown` fired).
    pub async fn stopped(self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Accepts the next connection from `listener`, or waits forever when there is none (no ICE-TCP).
pub async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// One connection: frames in to the worker, queued frames out, until the client goes, it idles
/// past [`IDLE`], or the worker stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    mut outbound: mpsc::Receiver<Bytes>,
    events: mpsc::Sender<TcpEvent>,
    shutdown: CancellationToken,
) {
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(usize::from(u16::MAX))
        .new_codec();
    let mut framed = Framed::new(stream, codec);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            read = tokio::time::timeout(IDLE, framed.next()) => match read {
                Ok(Some(Ok(frame))) => {
                    let sent = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        sent = events.send(TcpEvent::Frame(peer, frame)) => sent,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                // Closed, idle, or a frame the codec refuses.
                _ => break,
            },
            Some(packet) = outbound.recv() => {
                if framed.send(packet).await.is_err() {
                    break;
                }
            }
        }
    }
    // A stopping worker needs no telling (and reads no more).
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = events.send(TcpEvent::Closed(peer)) => {}
    }
}

#[cfg(test)]
mod tests;

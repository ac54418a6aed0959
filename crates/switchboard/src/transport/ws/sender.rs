//! The writing side of a WebSocket connection, and its sink ([`crate::delivery::Sink`]).
//!
//! When a client's message is relayed, the hub queues it in the recipient's outbox and signals the
//! recipient's sink, which is its [`Sender`]. When the delivery reaches it ([`Sender::deliver`]),
//! the sender takes the recipient's messages from the hub and writes them into the recipient's
//! socket itself, on the task that made the hub call, as a bare relay would, instead of
//! scheduling the recipient's task to do it. The recipient's task is woken only for what cannot
//! be done on the spot: a socket that is full, a close, or a sender already busy with that socket.
//!
//! Messages leave an outbox only under its connection's `out` lock and are written before the lock
//! is released, so they reach the socket in `seq` order whoever writes them.

use std::{
    cell::RefCell,
    io::{self, IoSlice},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Poll, Waker},
    time::Instant,
};

use super::{
    frame::{self, MAX_HEADER, Opcode},
    wire::Wire,
};
use crate::{
    delivery::{HubAccess, Outlet, Sink},
    metrics::Metrics,
    node::Node,
};
use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};
use switchboard_core::{Attachment, CloseReason, Outgoing, Transmit};

/// Messages taken from the outbox per write; bounds the time between socket reads.
pub const MESSAGES_PER_WRITE: usize = 64;

/// Batches of up to this many bytes are copied into one buffer and written with `send(2)`;
/// larger ones are written with `writev(2)` from where they are. For the kernel a `writev` costs
/// more than a `send` of the same bytes (an iovec array to import and check), and a relayed
/// message is a few hundred bytes: copying it is cheaper.
const GATHER_LIMIT: usize = 16 * 1024;

/// See the module documentation; `W` is the socket's writing half.
pub struct Sender<W> {
    at: Attachment,
    out: Mutex<Out<W>>,
    /// The connection task, woken for what the sender cannot do on the spot.
    task: AtomicWaker,
    /// Whether the hub signalled this sender since its outbox was last asked for messages, or said
    /// there is more to take. The hub signals every change a transport must see (a queued
    /// message, a close, a newer attachment), so while this is false there is nothing to ask for,
    /// and the connection task, which runs for every read, skips the hub lock and the session
    /// lookup.
    woken: AtomicBool,
}

/// What is written to the socket, and what is left over.
pub struct Out<W> {
    socket: W,
    /// Bytes handed to the socket that it has not taken yet (after a short write).
    pub unsent: Vec<u8>,
    /// The payload of the latest ping that came while `unsent` was waiting: answered once the
    /// socket takes `unsent`. Only the latest is answered (RFC 6455 5.5.3 allows it), so a client
    /// that pings without reading costs one pong's room here, not one per ping.
    pong: Option<Vec<u8>>,
    /// A close the hub asked for while another task held the outbox: the connection task sends
    /// it.
    pub close: Option<CloseReason>,
    /// A write failed: the connection task ends the connection.
    pub broken: bool,
}

impl<W: Wire> Sender<W> {
    /// The sender for the connection of `at` writing to `socket`.
    pub fn new(at: Attachment, socket: W) -> Arc<Self> {
        Arc::new(Sender {
            at,
            out: Mutex::new(Out {
                socket,
                unsent: Vec::new(),
                pong: None,
                close: None,
                broken: false,
            }),
            task: AtomicWaker::new(),
            // Connecting the sink signals it; nothing is asked before.
            woken: AtomicBool::new(false),
        })
    }

    /// The attachment whose outbox this sender writes.
    pub fn attachment(&self) -> &Attachment {
        &self.at
    }

    /// Makes `waker` the connection task's.
    pub fn register(&self, waker: &Waker) {
        self.task.register(waker);
    }

    /// The socket side, for the connection task.
    pub fn lock(&self) -> MutexGuard<'_, Out<W>> {
        self.out.lock()
    }

    /// The next messages from the hub, taken under `out`'s lock (the caller holds it). Idle
    /// without asking the hub unless it signalled this sender since the last ask.
    pub fn transmit(&self, node: &Node) -> Transmit {
        if !self.woken.swap(false, Ordering::AcqRel) {
            return Transmit::Idle;
        }
        self.noted(node.transmit(&self.at, MESSAGES_PER_WRITE))
    }

    /// Leaves what the hub signalled to the connection task: its next ask goes to the hub.
    fn leave_to_task(&self) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }

    /// Notes a batch that left more to take, so the next ask goes to the hub.
    fn noted(&self, transmit: Transmit) -> Transmit {
        if let Transmit::Messages { more: true, .. } = transmit {
            self.woken.store(true, Ordering::Release);
        }
        transmit
    }
}

impl<W: Wire> Sink for Sender<W> {
    /// Takes what the hub has for this connection now, with the connection's `out` lock, and
    /// writes it before anyone else takes more. Leaves it to the connection task, which it wakes,
    /// when that task or another sender holds `out` (busy with the socket: it takes these too),
    /// or when a close or a leftover must be written first.
    ///
    /// The lock order is `out` then hub; `hub` may be held here, so `out` is only tried, never
    /// waited for.
    fn deliver(self: Arc<Self>, hub: &mut HubAccess<'_>, outlet: &Outlet<'_>) {
        let Some(mut out) = self.out.try_lock() else {
            return self.leave_to_task();
        };
        if !out.unsent.is_empty() || out.close.is_some() || out.broken {
            drop(out);
            return self.leave_to_task();
        }
        let transmit = self.noted(hub.hub().transmit(&self.at, MESSAGES_PER_WRITE));
        hub.release();
        match transmit {
            Transmit::Messages { batch, more } => {
                out.send_messages(outlet.metrics, &batch, outlet.queued_by);
                if more || out.broken || !out.unsent.is_empty() {
                    drop(out);
                    self.task.wake();
                }
            }
            Transmit::Close(reason) => {
                out.close = Some(reason);
                drop(out);
                self.task.wake();
            }
            Transmit::Idle => {}
        }
    }
}

impl<W: Wire> Out<W> {
    /// Writes messages from the outbox, a text frame each, with one write; `now` is when they are
    /// handed over, for the relay latency metric.
    pub fn send_messages(&mut self, metrics: &Metrics, messages: &[Outgoing], now: Instant) {
        for message in messages {
            metrics.sent(message, now);
        }
        let size: usize = messages.iter().map(|m| MAX_HEADER + m.text.len()).sum();
        if size <= GATHER_LIMIT {
            GATHERED.with_borrow_mut(|bytes| {
                bytes.clear();
                for message in messages {
                    let mut header = [0u8; MAX_HEADER];
                    let len = frame::write_header(&mut header, Opcode::Text, message.text.len());
                    bytes.extend_from_slice(&header[..len]);
                    bytes.extend_from_slice(message.text.as_bytes());
                }
                self.write(&[IoSlice::new(bytes)]);
            });
        } else {
            self.write_vectored(messages);
        }
    }

    /// Answers a ping: now, or once what waits in `unsent` is written (see `pong`).
    pub fn pong(&mut self, payload: &[u8]) {
        if self.unsent.is_empty() {
            self.send(Opcode::Pong, payload);
        } else {
            self.pong = Some(payload.to_vec());
        }
    }

    /// Sends a ping, unless bytes are still waiting for the socket: the client has not read what
    /// came before, so a ping behind them would only add to what waits.
    pub fn ping(&mut self) {
        if self.unsent.is_empty() {
            self.send(Opcode::Ping, &[]);
        }
    }

    /// Writes up to [`MESSAGES_PER_WRITE`] messages, each a frame header on the stack and the text
    /// by reference.
    fn write_vectored(&mut self, messages: &[Outgoing]) {
        let messages = &messages[..messages.len().min(MESSAGES_PER_WRITE)];
        let mut headers = [[0u8; MAX_HEADER]; MESSAGES_PER_WRITE];
        let mut lengths = [0usize; MESSAGES_PER_WRITE];
        for ((header, len), message) in headers.iter_mut().zip(&mut lengths).zip(messages) {
            *len = frame::write_header(header, Opcode::Text, message.text.len());
        }
        let mut parts = [[IoSlice::new(&[]); 2]; MESSAGES_PER_WRITE];
        for (((part, header), len), message) in
            parts.iter_mut().zip(&headers).zip(lengths).zip(messages)
        {
            *part = [
                IoSlice::new(&header[..len]),
                IoSlice::new(message.text.as_bytes()),
            ];
        }
        self.write(&parts.as_flattened()[..2 * messages.len()]);
    }

    /// Writes one frame.
    pub fn send(&mut self, opcode: Opcode, payload: &[u8]) {
        let mut header = [0u8; MAX_HEADER];
        let len = frame::write_header(&mut header, opcode, payload.len());
        self.write(&[IoSlice::new(&header[..len]), IoSlice::new(payload)]);
    }

    /// Writes `parts` now if nothing is waiting before them, and keeps what the socket does not
    /// take.
    fn write(&mut self, parts: &[IoSlice<'_>]) {
        if self.broken {
            return;
        }
        if self.socket.write(parts, &mut self.unsent).is_err() {
            self.broken = true;
        }
    }

    /// Writes what waits in `unsent`, then a pong held back behind it; `Ready(Ok)` once all of
    /// it is gone.
    pub fn poll_flush(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        use tokio::io::AsyncWrite;
        loop {
            while !self.unsent.is_empty() {
                let n = std::task::ready!(
                    std::pin::Pin::new(self.socket.tcp()).poll_write(cx, &self.unsent)
                )?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.unsent.drain(..n);
            }
            match self.pong.take() {
                Some(payload) => self.send(Opcode::Pong, &payload),
                None => break,
            }
        }
        self.unsent = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// Queues what ends the stream above TCP (TLS's `close_notify`), before the TCP shutdown.
    pub fn closing(&mut self) {
        self.socket.closing(&mut self.unsent);
    }

    /// The TCP socket's writing half, to shut down.
    pub fn tcp(&mut self) -> &mut tokio::net::tcp::OwnedWriteHalf {
        self.socket.tcp()
    }
}

thread_local! {
    /// Where this thread gathers a batch of frames (see [`GATHER_LIMIT`]): one buffer per thread,
    /// so an idle connection holds none.
    static GATHERED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

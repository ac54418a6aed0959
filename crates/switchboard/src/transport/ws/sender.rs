//! The sending side of a WebSocket connection, shared by the connection's own task and every task
//! that queues messages for it.
//!
//! When a client's message is relayed, the hub queues it in the recipient's outbox and wakes the
//! recipient's waker, which is its [`Sender`]. Inside [`Node::with_hub`] that wake is only noted;
//! once the hub lock is released, the sending task writes the recipient's frames into the
//! recipient's socket itself ([`deliver_noted`]), as a bare relay would, instead of scheduling the
//! recipient's task to do it. The recipient's task is woken only for what cannot be done on the
//! spot: a socket that is full, a close, or a sender already busy with that socket.
//!
//! While a connection handles the messages of one read ([`holding`]), the frames they queue are
//! written once the last of them is handled rather than after each: a client that sent several
//! messages at once (a burst of ICE candidates, a pipelined sender) gets them to each recipient
//! in one write, and the kernel's per-packet cost on both sides is paid once per batch.
//!
//! Frames leave an outbox only under its connection's `out` lock and are written before the lock
//! is released, so they reach the socket in `seq` order whoever writes them.
//!
//! [`Node::with_hub`]: crate::node::Node::with_hub

use std::{
    cell::{Cell, RefCell},
    io::{self, IoSlice},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Poll, Waker},
    thread::LocalKey,
    time::Instant,
};

use futures_util::task::{ArcWake, AtomicWaker, waker_ref};
use parking_lot::{Mutex, MutexGuard};
use switchboard_core::{Attachment, CloseReason, Frame, Hub, Transmit};
use tokio::net::tcp::OwnedWriteHalf;

use super::frame::{self, MAX_HEADER, Opcode};
use crate::node::Node;

/// Frames taken from the outbox per write; bounds the time between socket reads.
pub const BATCH: usize = 64;

/// Batches of up to this many bytes are copied into one buffer and written with `send(2)`;
/// larger ones are written with `writev(2)` from where they are. For the kernel a `writev` costs
/// more than a `send` of the same bytes (an iovec array to import and check), and a relayed
/// message is a few hundred bytes: copying it is cheaper.
const GATHER_LIMIT: usize = 16 * 1024;

/// See the module documentation.
pub struct Sender {
    at: Attachment,
    out: Mutex<Out>,
    /// The connection task, woken for what the sender cannot do on the spot.
    task: AtomicWaker,
    /// Whether the hub woke this sender since its outbox was last asked for frames. The hub wakes
    /// for every change a transport must see (a queued message, a close, a newer attachment), so
    /// while this is false there is nothing to ask for, and the connection task, which runs for
    /// every read, skips the hub lock and the session lookup.
    woken: AtomicBool,
}

/// What is written to the socket, and what is left over.
pub struct Out {
    socket: OwnedWriteHalf,
    /// Bytes handed to the socket that it has not taken yet (after a short write).
    pub unsent: Vec<u8>,
    /// A close the hub asked for while another task held the outbox: the connection task sends
    /// it.
    pub close: Option<CloseReason>,
    /// A write failed: the connection task ends the connection.
    pub broken: bool,
}

impl Sender {
    /// The sender for the connection of `at` writing to `socket`.
    pub fn new(at: Attachment, socket: OwnedWriteHalf) -> Arc<Self> {
        Arc::new(Sender {
            at,
            out: Mutex::new(Out {
                socket,
                unsent: Vec::new(),
                close: None,
                broken: false,
            }),
            task: AtomicWaker::new(),
            // The first ask registers the sender with the hub.
            woken: AtomicBool::new(true),
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
    pub fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock()
    }

    /// The next frames from the hub, taken under `out`'s lock (the caller holds it). Pending
    /// without asking the hub unless it woke this sender since the last ask.
    pub fn poll_transmit(self: &Arc<Self>, node: &Node) -> Poll<Transmit> {
        self.poll_hub(&mut node.hub())
    }

    /// [`Sender::poll_transmit`] on a hub the caller has locked.
    fn poll_hub(self: &Arc<Self>, hub: &mut Hub) -> Poll<Transmit> {
        if !self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        // Borrowed: the hub clones it only when the session holds another waker.
        hub.poll_transmit(&self.at, &waker_ref(self), BATCH)
    }

    /// Takes what the hub has for this connection now, for whichever task queued it, with the
    /// connection's `out` lock, so the frames are written before anyone else takes more. `None`
    /// when there is nothing to write here: nothing queued, or the connection task has it (busy
    /// with the socket, or there is a close or a leftover to write first; it is woken).
    ///
    /// Called with the hub locked, where the lock order is `out` then hub: `out` is only tried,
    /// never waited for.
    fn take(self: &Arc<Self>, hub: &mut Hub) -> Option<(MutexGuard<'_, Out>, Vec<Frame>)> {
        let Some(mut out) = self.out.try_lock() else {
            // The connection task or another sender is writing: it takes these frames too.
            self.task.wake();
            return None;
        };
        if !out.unsent.is_empty() || out.close.is_some() || out.broken {
            drop(out);
            self.task.wake();
            return None;
        }
        match self.poll_hub(hub) {
            Poll::Ready(Transmit::Messages(frames)) => Some((out, frames)),
            Poll::Ready(Transmit::Close(reason)) => {
                out.close = Some(reason);
                drop(out);
                self.task.wake();
                None
            }
            Poll::Pending => None,
        }
    }

    /// Writes frames [`Sender::take`] took, then releases `out`; `now` is when the hub call that
    /// queued them began.
    fn hand_over(&self, mut out: MutexGuard<'_, Out>, frames: &[Frame], node: &Node, now: Instant) {
        out.send_frames(node, frames, now);
        if out.broken || !out.unsent.is_empty() {
            drop(out);
            self.task.wake();
        }
    }
}

impl ArcWake for Sender {
    fn wake_by_ref(sender: &Arc<Self>) {
        sender.woken.store(true, Ordering::Release);
        if NOTING.get() {
            NOTED.with_borrow_mut(|noted| noted.push(sender.clone()));
        } else {
            sender.task.wake();
        }
    }
}

impl Out {
    /// Writes the outbox's frames with one write; `now` is when they are handed over, for the
    /// relay latency metric.
    pub fn send_frames(&mut self, node: &Node, frames: &[Frame], now: Instant) {
        for frame in frames {
            node.metrics().sent(frame, now);
        }
        let size: usize = frames.iter().map(|f| MAX_HEADER + f.text.len()).sum();
        if size <= GATHER_LIMIT {
            GATHERED.with_borrow_mut(|bytes| {
                bytes.clear();
                for frame in frames {
                    let mut header = [0u8; MAX_HEADER];
                    let len = frame::write_header(&mut header, Opcode::Text, frame.text.len());
                    bytes.extend_from_slice(&header[..len]);
                    bytes.extend_from_slice(frame.text.as_bytes());
                }
                self.write(&[IoSlice::new(bytes)]);
            });
        } else {
            self.write_vectored(frames);
        }
    }

    /// Writes up to [`BATCH`] frames, each a header on the stack and the text by reference.
    fn write_vectored(&mut self, frames: &[Frame]) {
        let frames = &frames[..frames.len().min(BATCH)];
        let mut headers = [[0u8; MAX_HEADER]; BATCH];
        let mut lengths = [0usize; BATCH];
        for ((header, len), frame) in headers.iter_mut().zip(&mut lengths).zip(frames) {
            *len = frame::write_header(header, Opcode::Text, frame.text.len());
        }
        let mut parts = [[IoSlice::new(&[]); 2]; BATCH];
        for (((part, header), len), frame) in
            parts.iter_mut().zip(&headers).zip(lengths).zip(frames)
        {
            *part = [
                IoSlice::new(&header[..len]),
                IoSlice::new(frame.text.as_bytes()),
            ];
        }
        self.write(&parts.as_flattened()[..2 * frames.len()]);
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
        let written = if self.unsent.is_empty() {
            let attempt = match parts {
                [one] => self.socket.try_write(one),
                _ => self.socket.try_write_vectored(parts),
            };
            match attempt {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(_) => {
                    self.broken = true;
                    return;
                }
            }
        } else {
            0
        };
        let mut skip = written;
        for part in parts {
            let (taken, rest) = part.split_at(skip.min(part.len()));
            skip -= taken.len();
            self.unsent.extend_from_slice(rest);
        }
    }

    /// Writes what waits in `unsent`; `Ready(Ok)` once all of it is gone.
    pub fn poll_flush(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        use tokio::io::AsyncWrite;
        while !self.unsent.is_empty() {
            let n = std::task::ready!(
                std::pin::Pin::new(&mut self.socket).poll_write(cx, &self.unsent)
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unsent.drain(..n);
        }
        self.unsent = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// The socket, to end the connection with.
    pub fn socket(&mut self) -> &mut OwnedWriteHalf {
        &mut self.socket
    }
}

thread_local! {
    /// Whether wakes of senders are noted rather than acted on: true while this thread runs a
    /// hub call.
    static NOTING: Cell<bool> = const { Cell::new(false) };
    /// Whether noted senders are held until this thread has handled the rest of a read: true
    /// inside [`holding`].
    static HOLDING: Cell<bool> = const { Cell::new(false) };
    /// When the latest hub call whose senders are held began, if any did.
    static HELD_AT: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Senders woken during this thread's current hub call.
    static NOTED: RefCell<Vec<Arc<Sender>>> = const { RefCell::new(Vec::new()) };
    /// Where this thread gathers a batch of frames (see [`GATHER_LIMIT`]): one buffer per thread,
    /// so an idle connection holds none.
    static GATHERED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's `flag` set, clearing it afterwards even if `f` panics.
fn with_flag<R>(flag: &'static LocalKey<Cell<bool>>, f: impl FnOnce() -> R) -> R {
    struct Clear(&'static LocalKey<Cell<bool>>);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.set(false);
        }
    }
    flag.set(true);
    let _clear = Clear(flag);
    f()
}

/// Runs `f` (a hub call) noting the senders it wakes instead of waking their tasks.
pub fn noting<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&NOTING, f)
}

/// Runs `f` (handling the messages of one read) holding back the writes of the hub calls it
/// makes; then writes everything they queued ([`deliver_held`]).
pub fn holding<R>(node: &Node, f: impl FnOnce() -> R) -> R {
    let result = with_flag(&HOLDING, f);
    deliver_held(node);
    result
}

/// Writes what the hub calls of the current [`holding`] queued so far, so that what the
/// connection writes or does next comes after it.
pub fn deliver_held(node: &Node) {
    if let Some(at) = HELD_AT.take() {
        deliver_noted(node, node.hub(), at);
    }
}

/// Ends a hub call that began at `now` with `hub` still locked: writes the frames of every sender
/// it noted ([`deliver_noted`]), or, inside [`holding`], releases the hub and leaves them noted
/// for [`deliver_held`].
pub fn deliver_or_hold(node: &Node, hub: MutexGuard<'_, Hub>, now: Instant) {
    if HOLDING.get() {
        drop(hub);
        if NOTED.with_borrow(|noted| !noted.is_empty()) {
            HELD_AT.set(Some(now));
        }
    } else {
        deliver_noted(node, hub, now);
    }
}

/// Writes the frames of every sender noted by the hub calls on this thread that have just ended,
/// the latest of which began at `now`; `hub` is locked.
///
/// The first recipient's frames are taken under that lock, which saves a second lock and lookup
/// for a message to one peer; any further recipient (a broadcast) takes its own. The hub is
/// released before each write: the lock order is `out` then hub, and `take` only tries `out`.
///
/// The latest hub call's time stands for the time of handing over: the two are microseconds
/// apart, below the relay latency histogram's resolution, and reading the clock again per relay
/// costs more than that precision is worth. Frames held from earlier calls of the same read show
/// the time they were held.
fn deliver_noted(node: &Node, hub: MutexGuard<'_, Hub>, now: Instant) {
    let mut held = Some(hub);
    // Writing frames makes no hub call, so nothing is noted while these are served.
    while let Some(sender) = NOTED.with_borrow_mut(Vec::pop) {
        let taken = match held.take() {
            Some(mut hub) => sender.take(&mut hub),
            None => sender.take(&mut node.hub()),
        };
        if let Some((out, frames)) = taken {
            sender.hand_over(out, &frames, node, now);
        }
    }
}

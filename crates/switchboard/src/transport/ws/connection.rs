//! One WebSocket connection after the handshake, on the raw socket (TCP, or TLS over it:
//! [`super::wire`]): client frames go to the hub, the session's outbox and the control frames go
//! back, a ping goes out every heartbeat.
//!
//! It is polled by hand, one `poll` driving reading, writing and the heartbeat, rather than
//! through a WebSocket library's stream and sink: reads land in a buffer on the stack, frames are
//! written straight from the outbox's text with one vectored write per batch, and only what a
//! read or a write leaves unfinished is kept on the heap. An idle connection holds no buffer.

use std::{
    future::poll_fn,
    io,
    mem::MaybeUninit,
    ops::ControlFlow,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use switchboard_core::{Attachment, CloseReason, Disconnect, Refusal, Transmit};
use switchboard_protocol::{ErrorBody, ServerBody, ServerMessage, SignalError};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    time::Sleep,
};

use super::{
    frame::{self, Opcode, Violation},
    reader::{Inbound, Reader},
    sender::{Out, Sender},
    wire::Wire,
};
use crate::{
    cluster::joins::{Pending, Taken},
    delivery::{Delivery, Hub, SinkRef},
    node::Node,
};

/// Bytes read from the socket at a time, into a buffer on the stack.
const READ_CHUNK: usize = 16 * 1024;

/// Rounds of reading and writing per poll before the task yields to the others.
const BUDGET: usize = 16;

/// How long a closing connection waits for its last bytes to leave and for the client's close.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// How the connection ended: `disconnect` is `Some` when the client side ended it (the hub must
/// be told), `None` when the hub asked for the close; `reason` labels the stream metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionEnd {
    pub disconnect: Option<Disconnect>,
    pub reason: &'static str,
}

pub const LOST: ConnectionEnd = ConnectionEnd {
    disconnect: Some(Disconnect::Lost),
    reason: "transport_lost",
};

/// See the module documentation; `R` and `W` are the socket's halves.
pub struct Connection<R, W> {
    read: R,
    reader: Reader,
    sender: Arc<Sender<W>>,
    /// Set once a close frame is queued: nothing else is sent or read, and the connection ends
    /// as soon as it is written.
    closing: Option<ConnectionEnd>,
    /// Whether the heartbeat timer knows which task to wake (it is polled once after each reset,
    /// and afterwards only once it has fired).
    heartbeat_armed: bool,
    /// Cluster mode: messages waiting behind a join ([`crate::cluster::joins`]).
    pending: Option<Arc<Pending>>,
}

/// Sends one text frame and then a close frame, outside any session (a refused resume), and
/// ends the connection.
pub async fn refuse(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    text: &str,
    code: u16,
    reason: &str,
) {
    let close = frame::close_payload(code, reason);
    let mut bytes = Vec::with_capacity(text.len() + close.len() + 2 * frame::MAX_HEADER);
    for (opcode, payload) in [(Opcode::Text, text.as_bytes()), (Opcode::Close, &close[..])] {
        let mut header = [0u8; frame::MAX_HEADER];
        let len = frame::write_header(&mut header, opcode, payload.len());
        bytes.extend_from_slice(&header[..len]);
        bytes.extend_from_slice(payload);
    }
    let _ = tokio::time::timeout(LINGER, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await?;
        read_until_closed(&mut stream).await
    })
    .await;
}

/// Reads and drops what the client still sends until it closes, so that unread bytes do not turn
/// our close into a reset that could destroy the close frame in flight. The buffer is on the heap:
/// on the stack it would make every connection's task larger.
async fn read_until_closed(read: &mut (impl AsyncRead + Unpin)) -> io::Result<()> {
    let mut sink = vec![0u8; 1024];
    while read.read(&mut sink).await? > 0 {}
    Ok(())
}

impl<R: AsyncRead + Unpin, W: Wire> Connection<R, W> {
    /// The connection of `at` on the socket halves `read` and `write`, refusing messages over
    /// `max_message` bytes. Its sender becomes the session's sink, and writes what is already
    /// queued (the `hello`, a replay).
    pub fn new(node: &Node, (read, write): (R, W), at: Attachment, max_message: usize) -> Self {
        let sender = Sender::new(at, write);
        let sink: SinkRef = sender.clone();
        node.with_hub(|hub, _| hub.connect(sender.attachment(), sink));
        Connection {
            read,
            reader: Reader::new(max_message),
            sender,
            closing: None,
            heartbeat_armed: false,
            pending: node.cluster().map(|_| Arc::default()),
        }
    }

    /// Handles bytes the HTTP server read past the upgrade request before handing the socket
    /// over: a client may send its first frames without waiting for the `101`. Taken by value and
    /// dropped here: the bytes share the HTTP server's whole read buffer, which must not stay
    /// alive with the connection.
    pub fn early_bytes(&mut self, node: &Node, bytes: Bytes) {
        if !bytes.is_empty() {
            self.handle(node, &mut bytes.to_vec());
        }
    }

    /// Moves frames until the connection ends.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        node: &Node,
        mut heartbeat: Pin<&mut Sleep>,
    ) -> Poll<ConnectionEnd> {
        self.sender.register(cx.waker());
        for _ in 0..BUDGET {
            let mut progress = false;
            {
                let mut out = self.sender.lock();
                if !out.unsent.is_empty() && matches!(out.poll_flush(cx), Poll::Ready(Err(_))) {
                    out.broken = true;
                }
                if out.broken {
                    return Poll::Ready(LOST);
                }
                if let Some(ended) = self.closing {
                    return match out.unsent.is_empty() {
                        true => Poll::Ready(ended),
                        false => Poll::Pending,
                    };
                }
                if let Some(reason) = out.close.take() {
                    close_for(&mut self.closing, &mut out, reason);
                    continue;
                }
                // Nothing more is taken from the outbox while the socket is full: the outbox's
                // bound then decides what happens to a client that does not keep up.
                if out.unsent.is_empty() {
                    match self.sender.transmit(node) {
                        Transmit::Messages { batch, .. } => {
                            let now = std::time::Instant::now();
                            out.send_messages(node.metrics(), &batch, now);
                            progress = true;
                        }
                        Transmit::Close(reason) => {
                            close_for(&mut self.closing, &mut out, reason);
                            continue;
                        }
                        Transmit::Idle => {}
                    }
                }
            }
            match self.poll_read(cx, node) {
                Poll::Ready(Ok(())) => progress = true,
                Poll::Ready(Err(ended)) => return Poll::Ready(ended),
                Poll::Pending => {}
            }
            if !self.heartbeat_armed || heartbeat.is_elapsed() {
                self.heartbeat_armed = heartbeat.as_mut().poll(cx).is_pending();
                if !self.heartbeat_armed {
                    let interval = node.config().core().heartbeat_interval;
                    heartbeat
                        .as_mut()
                        .reset(tokio::time::Instant::now() + interval);
                    self.sender.lock().ping();
                    progress = true;
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Ends the connection politely: writes what is left (the close frame), stops sending, and
    /// reads until the client closes too. Bounded by [`LINGER`].
    pub async fn finish(mut self) {
        let sender = self.sender.clone();
        let _ = tokio::time::timeout(LINGER, async {
            sender.lock().closing();
            poll_fn(|cx| sender.lock().poll_flush(cx)).await?;
            poll_fn(|cx| Pin::new(sender.lock().tcp()).poll_shutdown(cx)).await?;
            read_until_closed(&mut self.read).await
        })
        .await;
    }

    /// Reads once and handles every complete message read. `Ok` when bytes came in.
    fn poll_read(&mut self, cx: &mut Context<'_>, node: &Node) -> Poll<Result<(), ConnectionEnd>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        if ready!(Pin::new(&mut self.read).poll_read(cx, &mut buf)).is_err() {
            return Poll::Ready(Err(LOST));
        }
        if buf.filled().is_empty() {
            return Poll::Ready(Err(LOST));
        }
        self.handle(node, buf.filled_mut());
        Poll::Ready(Ok(()))
    }

    /// Hands the client's bytes to the reader, and what it makes of them to the hub. What the
    /// messages of one read queue is delivered once all of them are handled, so each recipient
    /// gets it in one write.
    fn handle(&mut self, node: &Node, bytes: &mut [u8]) {
        let Connection {
            reader,
            sender,
            closing,
            pending,
            ..
        } = self;
        let mut delivery = Delivery::default();
        let result = reader.feed(bytes, &mut |inbound| {
            if let (Some(pending), Inbound::Text(text)) = (&pending, &inbound) {
                match pending.offer(node, sender.attachment(), text) {
                    Taken::Direct => {}
                    Taken::Queued => return ControlFlow::Continue(()),
                    Taken::Overflow => {
                        let ended = ConnectionEnd {
                            disconnect: Some(Disconnect::Lost),
                            reason: "overflow",
                        };
                        let reason = "too many messages waiting for a join";
                        close(closing, &mut sender.lock(), 4005, reason, ended);
                        return ControlFlow::Break(());
                    }
                }
            }
            self::inbound(node, &mut delivery, sender, closing, inbound)
        });
        node.deliver(&mut delivery);
        if let Err(violation) = result {
            let reason = match violation {
                Violation::TooBig => "frame_too_large",
                Violation::Protocol(_) | Violation::NotUtf8 => "transport_error",
            };
            let ended = ConnectionEnd {
                disconnect: Some(Disconnect::Lost),
                reason,
            };
            let code = violation.close_code();
            close(
                closing,
                &mut sender.lock(),
                code,
                &violation.to_string(),
                ended,
            );
        }
    }
}

/// What one thing the client sent does: text goes to the hub, pings are answered, a close is
/// returned. Hub calls gather their outputs into `delivery`; what the connection writes itself
/// (a pong, the close) goes after what was gathered so far.
fn inbound<W: Wire>(
    node: &Node,
    delivery: &mut Delivery,
    sender: &Sender<W>,
    closing: &mut Option<ConnectionEnd>,
    inbound: Inbound<'_>,
) -> ControlFlow<()> {
    let at = sender.attachment();
    match inbound {
        Inbound::Text(text) => crate::telemetry::receive_span()
            .in_scope(|| node.with_hub_into(delivery, |hub, now| receive(hub, at, text, now))),
        Inbound::Binary => {
            let e = SignalError::invalid("binary frames are not accepted; send JSON text frames");
            let error = ServerMessage::new(ServerBody::Error(ErrorBody::from_error(&e)));
            node.with_hub_into(delivery, |hub, now| hub.reply(at, error, now));
        }
        Inbound::Ping(payload) => {
            node.with_hub_into(delivery, |hub, now| hub.heard_from(at, now));
            node.deliver(delivery);
            sender.lock().pong(payload);
        }
        Inbound::Pong => node.with_hub_into(delivery, |hub, now| hub.heard_from(at, now)),
        Inbound::Close(code) => {
            // The answers to what came before the close go out before the close frame.
            node.deliver(delivery);
            let ended = ConnectionEnd {
                disconnect: Some(Disconnect::Closed),
                reason: "client_closed",
            };
            close(closing, &mut sender.lock(), code.unwrap_or(1000), "", ended);
            return ControlFlow::Break(());
        }
    }
    ControlFlow::Continue(())
}

/// Sends the close frame for a close the hub asked for.
fn close_for<W: Wire>(closing: &mut Option<ConnectionEnd>, out: &mut Out<W>, reason: CloseReason) {
    let ended = ConnectionEnd {
        disconnect: None,
        reason: reason.as_str(),
    };
    close(closing, out, close_code(reason), reason.as_str(), ended);
}

/// Queues a close frame; the connection ends once it is written.
fn close<W: Wire>(
    closing: &mut Option<ConnectionEnd>,
    out: &mut Out<W>,
    code: u16,
    reason: &str,
    ended: ConnectionEnd,
) {
    if closing.is_none() {
        out.send(Opcode::Close, &frame::close_payload(code, reason));
        *closing = Some(ended);
    }
}

/// Hands a text message to the hub; a refusal goes back on the same socket as an `error`.
fn receive(hub: &mut Hub, at: &Attachment, text: &str, now: switchboard_core::Now) {
    if let Err(Refusal::Reply(error)) = hub.receive(at, text, now) {
        hub.reply(at, *error, now);
    }
}

/// The WebSocket close code for why the hub ended the transport.
fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::ClientClosed | CloseReason::TransportLost => 1000,
        CloseReason::Shutdown => 1001,
        CloseReason::Abuse => 1008,
        CloseReason::Replaced => 4001,
        CloseReason::Superseded => 4002,
        CloseReason::HeartbeatTimeout => 4003,
        CloseReason::Expired => 4004,
        CloseReason::Overflow => 4005,
        CloseReason::Handover => 4006,
    }
}

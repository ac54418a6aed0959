//! One WebSocket connection after the handshake, on the raw TCP socket: client frames go to the
//! hub, the session's outbox and the control frames go back, a ping goes out every heartbeat.
//!
//! It is polled by hand, one `poll` driving reading, writing and the heartbeat, rather than
//! through a WebSocket library's stream and sink: reads land in a buffer on the stack, frames are
//! written straight from the outbox's text with one vectored write per batch, and only what a
//! read or a write leaves unfinished is kept on the heap. An idle connection holds no buffer.

use std::{
    io::{self, IoSlice},
    mem::MaybeUninit,
    ops::ControlFlow,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use switchboard_core::{Attachment, CloseReason, Disconnect, Frame, Hub, Refusal, Transmit};
use switchboard_protocol::{ErrorBody, ServerBody, ServerMessage, SignalError};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    time::Sleep,
};

use super::{
    frame::{self, MAX_HEADER, Opcode, Violation},
    reader::{Inbound, Reader},
};
use crate::node::Node;

/// Frames taken from the outbox per write; bounds the time between socket reads.
const BATCH: usize = 64;

/// Bytes read from the socket at a time, into a buffer on the stack.
const READ_CHUNK: usize = 16 * 1024;

/// Rounds of reading and writing per poll before the task yields to the others.
const BUDGET: usize = 16;

/// How long a closing connection waits for its last bytes to leave and for the client's close.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// How the connection ended: `disconnect` is `Some` when the client side ended it (the hub must
/// be told), `None` when the hub asked for the close; `reason` labels the stream metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub disconnect: Option<Disconnect>,
    pub reason: &'static str,
}

pub const LOST: Ended = Ended {
    disconnect: Some(Disconnect::Lost),
    reason: "transport_lost",
};

/// See the module documentation.
pub struct Connection {
    stream: TcpStream,
    reader: Reader,
    /// Bytes handed to the socket that it has not taken yet (after a short write).
    unsent: Vec<u8>,
    /// Set once a close frame is queued: nothing else is sent or read, and the connection ends
    /// as soon as `unsent` is written.
    closing: Option<Ended>,
}

impl Connection {
    /// A connection on `stream`, refusing messages over `max_message` bytes.
    pub fn new(stream: TcpStream, max_message: usize) -> Self {
        Connection {
            stream,
            reader: Reader::new(max_message),
            unsent: Vec::new(),
            closing: None,
        }
    }

    /// Handles bytes the HTTP server read past the upgrade request before handing the socket
    /// over: a client may send its first frames without waiting for the `101`. Taken by value and
    /// dropped here: the bytes share the HTTP server's whole read buffer, which must not stay
    /// alive with the connection.
    pub fn early_bytes(&mut self, node: &Node, at: &Attachment, bytes: Bytes) {
        if !bytes.is_empty() {
            self.handle(node, at, &mut bytes.to_vec());
        }
    }

    /// Sends one text frame and then a close frame, outside any session (a refused resume).
    pub async fn refuse(mut self, text: &str, code: u16, reason: &str) {
        let _ = self.send(Opcode::Text, text.as_bytes());
        let _ = self.send(Opcode::Close, &frame::close_payload(code, reason));
        self.finish().await;
    }

    /// Moves frames until the connection ends.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        node: &Node,
        at: &Attachment,
        mut heartbeat: Pin<&mut Sleep>,
    ) -> Poll<Ended> {
        for _ in 0..BUDGET {
            let mut progress = false;
            if !self.unsent.is_empty() {
                match self.poll_flush(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(LOST),
                    Poll::Pending => {}
                }
            }
            if let Some(ended) = self.closing {
                if self.unsent.is_empty() {
                    return Poll::Ready(ended);
                }
                return Poll::Pending;
            }
            // Nothing more is taken from the outbox while the socket is full: the outbox's bound
            // then decides what happens to a client that does not keep up.
            if self.unsent.is_empty() {
                match node.hub().poll_transmit(at, cx.waker(), BATCH) {
                    Poll::Ready(Transmit::Messages(frames)) => {
                        if self.send_frames(node, &frames).is_err() {
                            return Poll::Ready(LOST);
                        }
                        progress = true;
                    }
                    Poll::Ready(Transmit::Close(reason)) => {
                        self.close(close_code(reason), reason.as_str(), None, reason.as_str());
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            match self.poll_read(cx, node, at) {
                Poll::Ready(Ok(())) => progress = true,
                Poll::Ready(Err(ended)) => return Poll::Ready(ended),
                Poll::Pending => {}
            }
            if heartbeat.as_mut().poll(cx).is_ready() {
                let interval = node.config().core().heartbeat_interval;
                heartbeat
                    .as_mut()
                    .reset(tokio::time::Instant::now() + interval);
                if self.send(Opcode::Ping, &[]).is_err() {
                    return Poll::Ready(LOST);
                }
                progress = true;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Ends the connection politely: writes what is left (the close frame), stops sending, and
    /// reads until the client closes too, so that unread bytes do not turn the close into a reset
    /// that could destroy the close frame in flight. Bounded by [`LINGER`].
    pub async fn finish(mut self) {
        let _ = tokio::time::timeout(LINGER, async {
            self.stream.write_all(&self.unsent).await?;
            self.stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            while self.stream.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        })
        .await;
    }

    /// Reads once and handles every complete message read. `Ok` when bytes came in.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        node: &Node,
        at: &Attachment,
    ) -> Poll<Result<(), Ended>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        if ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf)).is_err() {
            return Poll::Ready(Err(LOST));
        }
        if buf.filled().is_empty() {
            return Poll::Ready(Err(LOST));
        }
        self.handle(node, at, buf.filled_mut());
        match self.closing {
            Some(ended) if self.unsent.is_empty() => Poll::Ready(Err(ended)),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Hands the client's bytes to the reader, and what it makes of them to the hub.
    fn handle(&mut self, node: &Node, at: &Attachment, bytes: &mut [u8]) {
        let mut reader = std::mem::replace(&mut self.reader, Reader::new(0));
        let result = reader.feed(bytes, &mut |inbound| self.inbound(node, at, inbound));
        self.reader = reader;
        if let Err(violation) = result {
            let reason = match violation {
                Violation::TooBig => "frame_too_large",
                Violation::Protocol(_) | Violation::NotUtf8 => "transport_error",
            };
            let code = violation.close_code();
            self.close(code, &violation.to_string(), Some(Disconnect::Lost), reason);
        }
    }

    fn inbound(&mut self, node: &Node, at: &Attachment, inbound: Inbound<'_>) -> ControlFlow<()> {
        match inbound {
            Inbound::Text(text) => crate::telemetry::receive_span()
                .in_scope(|| node.with_hub(|hub, now| receive(hub, at, text, now))),
            Inbound::Binary => {
                let e =
                    SignalError::invalid("binary frames are not accepted; send JSON text frames");
                let error = ServerMessage::new(ServerBody::Error(ErrorBody::from_error(&e)));
                node.with_hub(|hub, now| hub.reply(at, error, now));
            }
            Inbound::Ping(payload) => {
                node.with_hub(|hub, now| hub.heard_from(at, now));
                if self.send(Opcode::Pong, payload).is_err() {
                    self.closing = Some(LOST);
                    return ControlFlow::Break(());
                }
            }
            Inbound::Pong => node.with_hub(|hub, now| hub.heard_from(at, now)),
            Inbound::Close(code) => {
                self.close(
                    code.unwrap_or(1000),
                    "",
                    Some(Disconnect::Closed),
                    "client_closed",
                );
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Queues a close frame; the connection ends once it is written.
    fn close(
        &mut self,
        code: u16,
        reason: &str,
        disconnect: Option<Disconnect>,
        label: &'static str,
    ) {
        if self.closing.is_some() {
            return;
        }
        let ended = match self.send(Opcode::Close, &frame::close_payload(code, reason)) {
            Ok(()) => Ended {
                disconnect,
                reason: label,
            },
            Err(_) => Ended {
                disconnect: disconnect.or(LOST.disconnect),
                reason: label,
            },
        };
        self.closing = Some(ended);
    }

    /// Writes the outbox's frames with one vectored write; what the socket does not take waits in
    /// `unsent`.
    fn send_frames(&mut self, node: &Node, frames: &[Frame]) -> io::Result<()> {
        let mut headers = [[0u8; MAX_HEADER]; BATCH];
        let mut lengths = [0usize; BATCH];
        for ((header, len), frame) in headers.iter_mut().zip(&mut lengths).zip(frames) {
            *len = frame::write_header(header, Opcode::Text, frame.text.len());
        }
        let mut parts = [IoSlice::new(&[]); 2 * BATCH];
        for (i, frame) in frames.iter().enumerate() {
            parts[2 * i] = IoSlice::new(&headers[i][..lengths[i]]);
            parts[2 * i + 1] = IoSlice::new(frame.text.as_bytes());
        }
        let now = Instant::now();
        for frame in frames {
            node.metrics().sent(frame, now);
        }
        self.write(&parts[..2 * frames.len()])
    }

    /// Writes one frame.
    fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        let mut header = [0u8; MAX_HEADER];
        let len = frame::write_header(&mut header, opcode, payload.len());
        self.write(&[IoSlice::new(&header[..len]), IoSlice::new(payload)])
    }

    /// Writes `parts` now if nothing is waiting before them, and keeps what the socket does not
    /// take.
    fn write(&mut self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        let written = if self.unsent.is_empty() {
            match self.stream.try_write_vectored(parts) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
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
        Ok(())
    }

    /// Writes what is waiting in `unsent`; `Ready(Ok)` once all of it is gone.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.unsent.is_empty() {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.unsent))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unsent.drain(..n);
        }
        self.unsent = Vec::new();
        Poll::Ready(Ok(()))
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
    }
}

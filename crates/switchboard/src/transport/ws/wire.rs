//! The socket under a WebSocket connection, plain TCP or TLS, as its two halves: the connection
//! task reads from one, any task delivering to the session writes into the other
//! ([`super::sender`]).
//!
//! The connection and its sender are generic over the halves, so a plain connection runs the
//! same code as before TLS existed: `OwnedReadHalf` and `OwnedWriteHalf` of the TCP stream, with
//! no TLS in the way. Over TLS both halves share the rustls session behind a lock held only to
//! encrypt or decrypt (never across a wait); the TCP halves stay separate, and what a write could
//! not hand to the socket is kept as ciphertext, so the sender's "unsent bytes" mean the same on
//! both: bytes for the socket, in order.

use std::{
    io::{self, IoSlice, Read, Write},
    mem::MaybeUninit,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use parking_lot::Mutex;
use rustls::ServerConnection;
use tokio::{
    io::{AsyncRead, ReadBuf},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};
use tokio_rustls::server::TlsStream;

/// The writing half of a connection's socket.
pub trait Wire: Send + 'static {
    /// Hands `parts` to the socket, and appends to `unsent` the bytes for the socket that it did
    /// not take now; all of them when `unsent` already holds bytes, which go first. An error
    /// means the connection is broken.
    fn write(&mut self, parts: &[IoSlice<'_>], unsent: &mut Vec<u8>) -> io::Result<()>;

    /// Appends to `unsent` what ends the stream above TCP before the TCP shutdown (TLS's
    /// `close_notify`).
    fn closing(&mut self, unsent: &mut Vec<u8>);

    /// The TCP socket's writing half, which `unsent` is written to as it is.
    fn tcp(&mut self) -> &mut OwnedWriteHalf;
}

/// Writes `bytes` (for the socket as they are) now if nothing waits before them; keeps the rest.
fn write_now(tcp: &OwnedWriteHalf, parts: &[IoSlice<'_>], unsent: &mut Vec<u8>) -> io::Result<()> {
    let written = if unsent.is_empty() {
        let attempt = match parts {
            [one] => tcp.try_write(one),
            _ => tcp.try_write_vectored(parts),
        };
        match attempt {
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
        unsent.extend_from_slice(rest);
    }
    Ok(())
}

impl Wire for OwnedWriteHalf {
    fn write(&mut self, parts: &[IoSlice<'_>], unsent: &mut Vec<u8>) -> io::Result<()> {
        write_now(self, parts, unsent)
    }

    fn closing(&mut self, _: &mut Vec<u8>) {}

    fn tcp(&mut self) -> &mut OwnedWriteHalf {
        self
    }
}

/// The writing half of a TLS connection.
pub struct TlsWrite {
    tcp: OwnedWriteHalf,
    tls: Arc<Mutex<ServerConnection>>,
}

impl TlsWrite {
    /// Encrypts `parts` (or, with none, whatever the session has to send) into one buffer.
    fn seal(&self, parts: &[IoSlice<'_>]) -> io::Result<Vec<u8>> {
        let mut tls = self.tls.lock();
        for part in parts {
            tls.writer().write_all(part)?;
        }
        let mut sealed = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut sealed)?;
        }
        Ok(sealed)
    }
}

impl Wire for TlsWrite {
    fn write(&mut self, parts: &[IoSlice<'_>], unsent: &mut Vec<u8>) -> io::Result<()> {
        let sealed = self.seal(parts)?;
        write_now(&self.tcp, &[IoSlice::new(&sealed)], unsent)
    }

    fn closing(&mut self, unsent: &mut Vec<u8>) {
        self.tls.lock().send_close_notify();
        if let Ok(sealed) = self.seal(&[]) {
            unsent.extend_from_slice(&sealed);
        }
    }

    fn tcp(&mut self) -> &mut OwnedWriteHalf {
        &mut self.tcp
    }
}

/// The reading half of a TLS connection: plaintext out of what the TCP half reads. Records the
/// session must answer (a key update) go out with the next write, in order.
pub struct TlsRead {
    tcp: OwnedReadHalf,
    tls: Arc<Mutex<ServerConnection>>,
}

/// Ciphertext read from the socket at a time: one TLS record at most, so its plaintext always
/// fits the session's receive buffer.
const RECORD: usize = 16 * 1024 + 256;

impl AsyncRead for TlsRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.tls.lock().reader().read(buf.initialize_unfilled()) {
                Ok(n) => {
                    // `0`: the client's close_notify, the end of the stream.
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let mut record = [MaybeUninit::<u8>::uninit(); RECORD];
            let mut sealed = ReadBuf::uninit(&mut record);
            ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut sealed))?;
            let mut sealed = sealed.filled();
            if sealed.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let mut tls = this.tls.lock();
            while !sealed.is_empty() {
                tls.read_tls(&mut sealed)?;
                tls.process_new_packets().map_err(io::Error::other)?;
            }
        }
    }
}

/// A socket taken over from the HTTP server by a WebSocket upgrade.
pub enum Upgraded {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP, its handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The halves of a TLS stream.
pub fn split_tls(stream: TlsStream<TcpStream>) -> (TlsRead, TlsWrite) {
    let (tcp, mut tls) = stream.into_inner();
    // rustls stops taking plaintext past 64 KiB of unsent records; a batch of messages can be
    // larger. Every write seals and takes out all the session has at once, and the sender's
    // outbox bounds what is written, so the session's own buffer needs no limit.
    tls.set_buffer_limit(None);
    let tls = Arc::new(Mutex::new(tls));
    let (read, write) = tcp.into_split();
    (
        TlsRead {
            tcp: read,
            tls: tls.clone(),
        },
        TlsWrite { tcp: write, tls },
    )
}

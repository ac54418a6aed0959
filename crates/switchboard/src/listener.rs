//! The listening socket as axum's accept loop sees it: a process out of file descriptors turns new
//! connections away at once instead of leaving them waiting.
//!
//! When the process is out of descriptors, `accept(2)` fails with `EMFILE` and the connection stays
//! in the kernel's accept queue, where its client waits until it times out (axum's own loop sleeps
//! a second and tries again). Instead a spare descriptor, held open for this moment, is closed to
//! make room; the waiting connection is accepted, answered 503 and closed, and the spare reopened.

use std::{
    fs::File,
    io,
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures_util::FutureExt;
use tokio::net::{TcpListener, TcpStream};

use crate::node::Node;

/// Pause before accepting again when accept failed and nothing could be turned away, so a listener
/// that keeps failing costs a hundred system calls a second, not a core.
const BACKOFF: Duration = Duration::from_millis(10);

/// Least time between two log lines about failing accepts: they can fail thousands of times a
/// second.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// What a connection turned away for want of descriptors reads: the same `unavailable` a full
/// server answers, so clients and proxies treat both alike.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    content-type: application/json\r\n\
    content-length: 95\r\n\
    connection: close\r\n\
    \r\n\
    {\"error\":{\"code\":\"unavailable\",\"message\":\"the server is out of file descriptors; retry later\"}}";

/// See the module documentation.
pub struct Listener {
    tcp: TcpListener,
    /// An open `/dev/null`, closed to make room for one accept when descriptors run out; `None`
    /// while it cannot be reopened because something else took the freed descriptor.
    spare: Option<File>,
    node: Node,
    /// Connections turned away since the last log line.
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Listener {
    /// Wraps `tcp`; `node` counts what is turned away.
    pub fn new(tcp: TcpListener, node: Node) -> Listener {
        Listener {
            tcp,
            spare: open_spare(),
            node,
            unlogged: 0,
            logged_at: None,
        }
    }

    /// Turns one waiting connection away with the spare descriptor's room; false if there was no
    /// spare or no connection.
    fn turn_away(&mut self) -> bool {
        let Some(spare) = self.spare.take() else {
            self.spare = open_spare();
            return false;
        };
        drop(spare);
        let turned_away = turn_away_one(&self.tcp);
        self.spare = open_spare();
        if turned_away {
            self.node.metrics().connection_refused("fd_limit");
            self.unlogged += 1;
        }
        turned_away
    }

    /// Whether a log line about failing accepts may be written now.
    fn log_due(&mut self) -> bool {
        let now = Instant::now();
        if self.logged_at.is_some_and(|at| now - at < LOG_EVERY) {
            return false;
        }
        self.logged_at = Some(now);
        true
    }
}

impl axum::serve::Listener for Listener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.tcp.accept().await {
                Ok(accepted) => return accepted,
                // The client gave up while in the queue; its failure is not the listener's.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) if out_of_files(&e) => {
                    let turned_away = self.turn_away();
                    if self.log_due() {
                        tracing::warn!(
                            event = "server.fd_exhausted",
                            error = %e,
                            refused = std::mem::take(&mut self.unlogged),
                            spare = self.spare.is_some(),
                            "out of file descriptors: new connections are answered 503 and closed"
                        );
                    }
                    if !turned_away {
                        tokio::time::sleep(BACKOFF).await;
                    }
                }
                Err(e) => {
                    if self.log_due() {
                        tracing::error!(event = "server.accept_error", error = %e, "accept failed");
                    }
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

#[cfg(unix)]
fn out_of_files(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let errno = Errno::from_io_error(e);
    errno == Some(Errno::MFILE) || errno == Some(Errno::NFILE)
}

#[cfg(not(unix))]
fn out_of_files(_: &io::Error) -> bool {
    false
}

/// Accepts one waiting connection, answers it [`REFUSAL`] and closes it; false if none was
/// waiting (then the accept's `WouldBlock` also tells the runtime to wait for the next connection
/// instead of retrying) or the accept failed again.
fn turn_away_one(tcp: &TcpListener) -> bool {
    use std::io::{Read, Write};
    let Some(Ok((stream, _))) = tcp.accept().now_or_never() else {
        return false;
    };
    // Out of the runtime's hands, to write without waiting for readiness; if that fails, the
    // connection is closed without an answer.
    let Ok(mut stream) = stream.into_std() else {
        return true;
    };
    // Reading what the request already sent lets the close end in a FIN: unread data would make it
    // a reset, which can discard the answer before the client reads it. The send buffer is empty,
    // so the answer goes out without blocking.
    let _ = stream.read(&mut [0; 4096]);
    let _ = stream.write(REFUSAL);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_one_complete_http_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
    }
}

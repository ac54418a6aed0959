//! Sockets: loopback-only targets, client sockets bound to spread source addresses (so the
//! ephemeral ports of one address never run out), WebSocket and HTTP/1.1 connections over them.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{self, protocol::WebSocketConfig},
};

/// Every fallible step of the tool reports a readable string.
pub type Result<T> = std::result::Result<T, String>;

/// Adds what was being done to an error.
pub trait Context<T> {
    /// `Err(e)` becomes `Err("{what}: {e}")`.
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Refuses anything but IPv4 loopback (127.0.0.0/8): the tool only ever loads this machine.
pub fn check_loopback(addr: SocketAddr) -> Result<()> {
    match addr.ip() {
        IpAddr::V4(v4) if v4.octets()[0] == 127 => Ok(()),
        other => Err(format!(
            "target {other} is not an IPv4 loopback address (127.0.0.0/8); the benchmark only loads this machine"
        )),
    }
}

/// Hands out client source addresses 127.0.0.2, 127.0.0.3, ...: `per_address` connections each.
#[derive(Clone, Debug)]
pub struct Sources {
    first: u32,
    per_address: u32,
    next: Arc<AtomicU32>,
}

/// The last usable loopback address.
const LAST_LOOPBACK: u32 = u32::from_be_bytes([127, 255, 255, 254]);

impl Sources {
    /// Starts at `first` (must be in 127.0.0.0/8), moving on after `per_address` connections.
    pub fn new(first: Ipv4Addr, per_address: u32) -> Result<Self> {
        if first.octets()[0] != 127 {
            return Err(format!("source address {first} is not in 127.0.0.0/8"));
        }
        Ok(Sources {
            first: u32::from(first),
            per_address: per_address.max(1),
            next: Arc::new(AtomicU32::new(0)),
        })
    }

    /// The source address for the next connection.
    pub fn next(&self) -> Ipv4Addr {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let span = LAST_LOOPBACK - self.first + 1;
        Ipv4Addr::from(self.first + (i / self.per_address) % span)
    }

    /// How many distinct addresses were used so far.
    pub fn addresses_used(&self) -> u32 {
        let n = self.next.load(Ordering::Relaxed);
        n.div_ceil(self.per_address)
    }
}

impl Default for Sources {
    fn default() -> Self {
        Sources::new(Ipv4Addr::new(127, 0, 0, 2), 500).expect("loopback")
    }
}

/// A TCP connection from `src` (bound before connecting, any port) to `dst`, with `TCP_NODELAY`.
pub async fn tcp_connect(src: Ipv4Addr, dst: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4().ctx("socket")?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(src), 0))
        .ctx("bind source address")?;
    let stream = socket.connect(dst).await.ctx("connect")?;
    stream.set_nodelay(true).ctx("nodelay")?;
    Ok(stream)
}

/// A client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Small buffers: a benchmark client holds thousands of idle sockets, and frames here are small.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Why a connection attempt failed, for the refusal counts of the `connect` scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The server answered the upgrade with an HTTP status (503 full, 429 over a cap, ...).
    Refused(u16),
    /// No answer within the deadline.
    Timeout,
    /// Anything else (reset, closed, protocol error).
    Failed(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused(status) => write!(f, "refused with HTTP {status}"),
            ConnectError::Timeout => write!(f, "timed out"),
            ConnectError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl From<String> for ConnectError {
    fn from(e: String) -> Self {
        ConnectError::Failed(e)
    }
}

/// Opens a WebSocket to `ws://{dst}{path}` from `src`, within `deadline`.
pub async fn ws_connect(
    src: Ipv4Addr,
    dst: SocketAddr,
    path: &str,
    deadline: Duration,
) -> std::result::Result<Ws, ConnectError> {
    let attempt = async {
        let stream = tcp_connect(src, dst).await?;
        let url = format!("ws://{dst}{path}");
        match tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config())).await {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::Error::Http(response)) => {
                Err(ConnectError::Refused(response.status().as_u16()))
            }
            Err(e) => Err(ConnectError::Failed(format!("websocket handshake: {e}"))),
        }
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout),
    }
}

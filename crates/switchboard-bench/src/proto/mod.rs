//! The protocols the load generator speaks, behind one client type: switchboard (WebSocket, SSE,
//! long-poll), `matchbox_server`, the PeerJS server, and the bare relay built into this tool.
//!
//! Every workload sends one kind of application message: a JSON object `{"t":NS,"p":"xx.."}`
//! whose `t` is the sender's clock (see [`crate::stats::now_ns`]) and whose padding `p` makes the
//! object exactly `size` bytes. Each protocol wraps it its own way:
//!
//! | target | client sends | client receives |
//! |---|---|---|
//! | switchboard | `{"type":"message","room":R,"seq":N,"ts":MS,"to":P,"payload":BODY}` | the same with `from` and the server's `seq` |
//! | matchbox | `{"Signal":{"receiver":UUID,"data":BODY}}` | `{"Signal":{"sender":UUID,"data":BODY}}` |
//! | PeerJS | `{"type":"OFFER","dst":ID,"payload":BODY}` | `{"type":"OFFER","src":ID,"dst":ID,"payload":BODY}` |
//! | bare | `BODY` | `BODY` (forwarded verbatim to the other members of the path's room) |
//!
//! This file holds what a run is configured with ([`Target`], [`Transport`], [`Endpoint`]), the
//! body every workload sends and what a client hands back ([`Incoming`]); `client.rs` holds the
//! connected [`Client`], and `decode.rs` reads the peers' (matchbox, PeerJS) messages.

mod client;
mod decode;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

pub use client::Client;

use crate::{
    net::{Context, Result, Sources},
    shape,
};

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// switchboard (`/v1/ws`, `/v1/sessions`).
    Switchboard,
    /// `matchbox_server` (`ws://host/<room>`).
    Matchbox,
    /// The PeerJS server, npm `peer` (`/peerjs?key=peerjs&id=ID&token=T`).
    Peerjs,
    /// The bare relay of this tool (`ws://host/<room>`, frames forwarded verbatim).
    Bare,
}

impl Target {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Switchboard => "switchboard",
            Target::Matchbox => "matchbox",
            Target::Peerjs => "peerjs",
            Target::Bare => "bare",
        }
    }
}

/// How switchboard sessions are carried (the peers and the bare relay speak WebSocket only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `GET /v1/ws`.
    Ws,
    /// `POST .../messages` + `GET .../events`.
    Sse,
    /// `POST .../messages` + `GET .../poll`.
    Poll,
}

impl Transport {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Poll => "poll",
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    /// The server's protocol.
    pub target: Target,
    /// The transport (switchboard only; others use WebSocket).
    pub transport: Transport,
    /// The server's address (loopback).
    pub addr: SocketAddr,
    /// switchboard's HS256 key.
    pub key: Option<Arc<EncodingKey>>,
    /// Client source addresses.
    pub sources: Sources,
    /// Bound on connecting and joining.
    pub connect_timeout: Duration,
    /// A prefix that makes this run's ids and rooms unique on a long-running server.
    pub run_id: String,
    /// switchboard: send an `ack` after this many server messages (0: never).
    pub ack_every: u32,
    /// switchboard in cluster mode: another node, where the second member of each pair
    /// connects, so every relay crosses nodes (through Redis). `None`: all on `addr`.
    pub peer_addr: Option<SocketAddr>,
}

impl Endpoint {
    /// An endpoint with default sources, a 10 s connect timeout and a random run id.
    pub fn new(
        target: Target,
        transport: Transport,
        addr: SocketAddr,
        secret: Option<&[u8]>,
    ) -> Self {
        let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        Endpoint {
            target,
            transport,
            addr,
            key: secret.map(|s| Arc::new(EncodingKey::from_secret(s))),
            sources: Sources::default(),
            connect_timeout: Duration::from_secs(10),
            run_id,
            ack_every: DEFAULT_ACK_EVERY,
            peer_addr: None,
        }
    }

    /// A token for `user`, valid for every room, signed with the endpoint's secret.
    pub fn mint(&self, user: &str) -> Result<String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            sub: &'a str,
            exp: u64,
            iat: u64,
            room: &'a str,
        }
        let key = self
            .key
            .as_ref()
            .ok_or("switchboard needs the server's secret (--secret or SWITCHBOARD_SECRET)")?;
        let now = unix_ms() / 1000;
        let claims = Claims {
            sub: user,
            exp: now + 24 * 3600,
            iat: now,
            room: "*",
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).ctx("mint token")
    }

    /// A room name unique to this run.
    pub fn room(&self, kind: &str, i: usize) -> String {
        format!("{}-{kind}{i}", self.run_id)
    }

    /// A peer (and user) id unique to this run.
    pub fn peer(&self, kind: &str, i: usize) -> String {
        format!("{}-{kind}{i}", self.run_id)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The application message: `{"t":<t>,"p":"xx.."}`, exactly `size` bytes when `size` allows.
pub fn body(t: u64, size: usize) -> String {
    // Copied in pieces: extending a `String` char by char was the generator's costliest function.
    const PADDING: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let mut s = String::with_capacity(size.max(32));
    s.push_str(r#"{"t":"#);
    s.push_str(itoa::Buffer::new().format(t));
    s.push_str(r#","p":""#);
    let mut pad = size.saturating_sub(s.len() + 2);
    while pad > 0 {
        let piece = pad.min(PADDING.len());
        s.push_str(&PADDING[..piece]);
        pad -= piece;
    }
    s.push_str("\"}");
    s
}

#[derive(Deserialize)]
struct Body {
    t: u64,
}

/// The `t` of a body: read directly when it is as [`body`] wrote it (every target passes it on
/// verbatim, so this is every body a run receives), parsed otherwise.
fn body_time(raw: &str) -> Option<u64> {
    shape::body_time(raw).or_else(|| serde_json::from_str::<Body>(raw).ok().map(|b| b.t))
}

/// What a client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An application message: its sender (when the protocol says) and its timestamp.
    Data {
        /// Sender's id (switchboard `from`, matchbox `sender`, PeerJS `src`).
        from: Option<String>,
        /// The body's `t`.
        t: u64,
    },
    /// Someone joined the room (switchboard `peer_joined`, matchbox `NewPeer`).
    PeerJoined(String),
    /// Our join is done (switchboard `joined`, matchbox `IdAssigned`, PeerJS `OPEN`).
    Joined(String),
    /// Our leave is done (switchboard `left`).
    Left,
    /// An error or warning from the server; the connection goes on.
    Error(String),
    /// switchboard: a signaling message from the SFU (`from: "sfu"`): its `type` (`offer`,
    /// `answer`, `track_map`) and its raw JSON payload.
    Sfu {
        /// The message's `type`.
        kind: String,
        /// Its payload, as JSON text.
        payload: String,
    },
    /// Anything else.
    Other,
}

/// Acknowledge switchboard messages after this many by default: what the browser SDK does
/// (`ackEvery: 32`), so the server can release what a resume would no longer need.
pub const DEFAULT_ACK_EVERY: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_asked_size_and_time() {
        let b = body(123_456, 200);
        assert_eq!(b.len(), 200);
        assert_eq!(body_time(&b), Some(123_456));
        assert_eq!(body_time(&body(7, 1)), Some(7));
        assert_eq!(body(1, 1000).len(), 1000);
        // Bodies written differently are parsed.
        assert_eq!(body_time(r#"{"p":"xx","t":42}"#), Some(42));
        assert_eq!(body_time(r#"{ "t" : 5 , "p" : "" }"#), Some(5));
        assert_eq!(body_time(r#"{"t":-1,"p":""}"#), None);
        assert_eq!(body_time(r#"{"t":+1,"p":""}"#), None);
    }
}

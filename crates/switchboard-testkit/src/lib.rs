//! What switchboard's integration tests share, written once: the server (in-process on an
//! ephemeral port, [`TestServer`], or the real binary, [`Process`]), tokens signed with the test
//! secret ([`tokens`]), bounded waiting ([`eventually`]), HTTP helpers ([`http`]), and the clients:
//!
//! - [`Client`]: a WebSocket client (tungstenite) that checks every message's `seq` on arrival;
//! - [`RawClient`]: a WebSocket client on a bare TCP stream, writing and reading frames byte by
//!   byte, for what a well-behaved client library cannot do (broken framing, never answering a
//!   ping, reading after the server hung up);
//! - [`AnyClient`]: one session API over WebSocket, SSE and long-poll, for the conformance suite.
//!
//! Every wait is bounded by [`DEADLINE`], and silence is proven with a barrier, never a sleep: a
//! client that sends `ping` and gets `pong` as the very next message had nothing queued before it.
//!
//! It is a crate of its own, not a `tests/common` module, so the load generator's smoke test
//! (`switchboard-bench`) starts its server the same way, and so it is compiled once rather than
//! into every test binary.

pub mod any_client;
pub mod api;
pub mod client;
pub mod cluster;
pub mod http;
pub mod metrics;
pub mod process;
pub mod raw;
pub mod redis;
pub mod server;
pub mod tokens;
pub mod wait;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use any_client::{AnyClient, End, Transport};
pub use client::{Client, ws_refusal};
pub use process::Process;
pub use raw::RawClient;
pub use server::TestServer;
pub use tokens::SECRET;
pub use wait::eventually;

use serde_json::Value;
use switchboard_protocol::ServerEnvelope;

/// How long any single expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Milliseconds since the Unix epoch: a client message's `ts`.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as u64
}

/// Seconds since the Unix epoch: a token's `exp` and `iat`.
pub fn unix_s() -> u64 {
    unix_ms() / 1000
}

/// The `hello` of a client that has not read one yet.
fn no_hello() -> ServerEnvelope {
    ServerEnvelope {
        kind: String::new(),
        room: None,
        seq: 0,
        ts: 0,
        from: None,
        id: None,
        payload: Value::Null,
    }
}

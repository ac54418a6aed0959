//! Transports: each only turns bytes into calls on the hub and the hub's output back into bytes.
//! Validation, limits, ordering and resume live in the core, once for all of them.

pub mod http;
pub mod poll;
pub mod sse;
pub mod ws;

use crate::node::Node;

/// Logs and counts the end of one client stream.
fn stream_closed(node: &Node, transport: &'static str, reason: &'static str) {
    tracing::debug!(event = "stream.closed", transport, reason, "stream closed");
    node.metrics().stream_closed(transport, reason);
}

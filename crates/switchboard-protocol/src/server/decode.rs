//! [`ServerEnvelope`]: a server message as a client decodes it (the CLI client, tests and the
//! load generator); the server never reads one.

use serde::{Deserialize, Serialize};

/// A server message as a client decodes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerEnvelope {
    /// Message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Room, on room messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Server sequence number of this session.
    pub seq: u64,
    /// Server time, Unix ms.
    pub ts: u64,
    /// Sender, on relayed messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Echoed correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Type-specific payload.
    #[serde(default)]
    pub payload: serde_json::Value,
}

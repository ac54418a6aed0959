//! [`ClientEnvelope`]: a client message as a client writes it.
//!
//! The server never builds these; the CLI client, the tests and the load generator do, so it is
//! kept out of the parsing path and owns only serialization.

use serde::{Deserialize, Serialize};

/// A client message as a client writes it: what the CLI client, tests and load generator send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientEnvelope {
    /// Message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Room, for room messages.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room: Option<String>,
    /// Client sequence number.
    pub seq: u64,
    /// Client clock, Unix ms.
    pub ts: u64,
    /// Recipient peer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub to: Option<String>,
    /// Correlation id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// Type-specific payload.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payload: Option<serde_json::Value>,
}

impl ClientEnvelope {
    /// A message of `kind` with no room, target or payload yet.
    pub fn new(kind: &str, seq: u64, ts: u64) -> Self {
        ClientEnvelope {
            kind: kind.to_owned(),
            room: None,
            seq,
            ts,
            to: None,
            id: None,
            payload: None,
        }
    }

    /// Sets `room`.
    pub fn room(mut self, room: &str) -> Self {
        self.room = Some(room.to_owned());
        self
    }

    /// Sets `to`.
    pub fn to(mut self, peer: &str) -> Self {
        self.to = Some(peer.to_owned());
        self
    }

    /// Sets `id`.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Sets `payload`.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings, integers and a `Value` cannot fail.
        serde_json::to_string(self).expect("envelope serializes")
    }
}

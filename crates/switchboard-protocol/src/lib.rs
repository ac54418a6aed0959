//! switchboard's wire contract as Rust types.
//!
//! This crate owns everything that is byte-for-byte the same on every transport: the envelope, the
//! message types in both directions, identifiers, limits, and the error codes. It does no IO and
//! keeps no state, so the server, the CLI client, the load generator and the tests all parse and
//! build messages through exactly one code path.

mod client;
mod error;
mod ids;
mod json;
mod limits;
mod server;
pub mod ws;

pub use client::{
    AUTO_SFU_MEMBERS, ClientEnvelope, ClientMessage, MAX_SUBSCRIBE_TRACKS, Media, MediaMode,
    MessageHeader, Mode, ParsedMessage, Rejected, SFU_PEER, SignalKind, View, parse_client_message,
    split_batch,
};
pub use error::{ErrorCode, SignalError};
pub use ids::{IdText, PeerId, PeerRef, Role, RoomGrant, RoomId, RoomRef};
pub use limits::Limits;
pub use server::{
    Admitted, Denied, Envelope, ErrorBody, Hello, IceServer, Joined, Knock, KnockEnd, KnockEnded,
    Knocking, Left, MediaChanged, ModeChanged, Notice, Payload, PeerInfo, PeerLeft, PeerLeftReason,
    Replaced, RoomClosed, RoomClosedReason, ServerBody, ServerEnvelope, ServerMessage, renumber,
};

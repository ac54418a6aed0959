//! Client -> server messages: the one parse and validation path every transport calls.
//!
//! [`parse_client_message`] turns text into a [`ParsedMessage`] or a [`SignalError`]. It checks syntax
//! and limits only; what depends on state (the `seq` guard, the clock window, membership, roles)
//! belongs to the core, which owns that state. Relayed payloads are validated against their typed
//! shape and then kept as the sender's raw JSON, so the recipient gets exactly what was sent.
//!
//! One concept a file: `message` holds the types a frame parses into, `envelope` reads a frame's
//! fields, `parse` holds the entry points and orders the checks, `payload` validates each type's
//! payload, and [`ClientEnvelope`] (in `builder`) is how a client writes a message.

mod builder;
mod envelope;
mod message;
mod parse;
mod payload;
#[cfg(test)]
mod tests;

pub use builder::ClientEnvelope;
pub use message::{
    AUTO_SFU_MEMBERS, ClientMessage, MAX_SUBSCRIBE_TRACKS, Media, MediaMode, MessageHeader, Mode,
    ParsedMessage, Rejected, SFU_PEER, SignalKind, View,
};
pub use parse::{parse_client_message, split_batch};

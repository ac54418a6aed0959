//! Server -> client messages: typed bodies and their one encoding.
//!
//! A [`ServerMessage`] (or, for relayed messages, an [`Envelope`] borrowing the sender's frame) is
//! built by the core without a `seq` or `ts`; those are stamped when it is queued for one recipient
//! session, because `seq` is per session. A resume reassigns seqs with [`renumber`].
//! [`ServerEnvelope`] is the decoding side, for clients.
//!
//! One concept a file: `bodies` holds the typed payloads, `message` the body enum and the
//! unstamped message, `encode` the hand-written encoder and [`renumber`], `decode` the client's
//! [`ServerEnvelope`].

mod bodies;
mod decode;
mod encode;
mod message;
#[cfg(test)]
mod tests;

pub use bodies::{
    Admitted, Denied, ErrorBody, Hello, IceServer, Joined, Knock, KnockEnd, KnockEnded, Knocking,
    Left, MediaChanged, ModeChanged, Notice, PeerInfo, PeerLeft, PeerLeftReason, Replaced,
    RoomClosed, RoomClosedReason,
};
pub use decode::ServerEnvelope;
pub use encode::{Envelope, Payload, renumber};
pub use message::{ServerBody, ServerMessage};

//! switchboard's signaling core, sans IO.
//!
//! The [`Hub`] owns every session and room of a node. The IO layer feeds it what happened (a frame
//! arrived, a transport dropped, time passed), always with the current [`Now`], and takes out what
//! to send ([`Hub::poll_transmit`]) and what to log or count ([`Hub::drain_events`]). Nothing in
//! here opens a socket, spawns a task or reads a clock, so every rule is unit-tested with a virtual
//! clock and no sleeps.

mod clock;
mod config;
mod event;
mod hub;
mod outbox;
mod rate;
mod room;
mod session;

pub use clock::Now;
pub use config::{CoreConfig, RateLimits};
pub use event::{CloseReason, Event};
pub use hub::{Attachment, Disconnect, Hub, Refusal, Stats, Transmit};
pub use outbox::Frame;
pub use rate::TokenBucket;
pub use session::{Identity, SessionId};

//! switchboard's signaling core, sans IO.
//!
//! The [`Hub`] owns every session and room of a node. The IO layer feeds it what happened (a
//! message arrived, a transport dropped, a deadline passed), always with the current [`Now`], and
//! drains what should happen next as values ([`Hub::drain_outputs`]): which sessions' transports
//! have messages to take ([`Hub::transmit`]) or must close, what to log and count, and when to
//! come back for the timers. Nothing in here opens a socket, spawns a task or reads a clock, so
//! every rule is unit-tested with a virtual clock and no sleeps.

mod clock;
mod config;
mod deadlines;
mod event;
mod hub;
mod keyed;
mod outbox;
mod rate;
mod room;
mod session;
mod session_id;
mod shared;

pub use clock::Now;
pub use config::{CoreConfig, RateLimits};
pub use event::{Event, RoomEnd};
#[cfg(feature = "fuzzing")]
pub use hub::fuzz_sequence;
pub use hub::{
    Admission, Attachment, Disconnect, Hub, MAX_KNOCKS_PER_ROOM, MediaCommand, Outputs,
    Participant, Refusal, RoomPolicy, RoomUse, Stats, Transmit,
};
pub use keyed::{KeyedBuckets, Lockout, LockoutPolicy};
pub use outbox::Outgoing;
pub use rate::{Rate, RateScope, TokenBucket};
pub use session::{CloseReason, Identity};
pub use session_id::SessionId;
pub use shared::{LogRecord, RoomView, SessionRecord, SharedKnock, SharedMember, SharedOp};

//! The scenarios, each written once against `AnyClient` for a pair of transports; each returns
//! its clients' transcripts for the parity check.

mod membership;
mod messages;
mod resume;

pub use membership::{host_controls, join_room, leave, replace};
pub use messages::{errors, relay_all_types};
pub use resume::{expiry, resume_after_drop, resume_hello_lost, resume_switch, sse_lifetime};

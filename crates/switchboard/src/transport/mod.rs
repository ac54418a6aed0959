//! Transports: each only turns bytes into calls on the hub and the hub's output back into bytes.
//! Validation, limits, ordering and resume live in the core, once for all of them.

pub mod http;
pub mod poll;
pub mod sse;
pub mod ws;

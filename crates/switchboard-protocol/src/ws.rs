//! The WebSocket wire, sans IO: RFC 6455 frames ([`frame`]) and whole client messages out of the
//! bytes a connection reads ([`reader`]). The server's connection task feeds them; the fuzz
//! targets in `fuzz/` feed them anything.

pub mod frame;
pub mod reader;

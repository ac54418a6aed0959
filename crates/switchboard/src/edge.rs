//! The edge: what stands between the open network and the routes. TLS on the listener ([`tls`]),
//! and who a request really comes from when it arrives through a proxy ([`forwarded`]).

pub mod forwarded;
pub mod tls;

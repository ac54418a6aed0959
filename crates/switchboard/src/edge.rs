//! The edge: what stands between the open network and the routes. TLS on the listener ([`tls`]),
//! HTTP with deadlines a client cannot stretch ([`http`]), and who a request really comes from
//! when it arrives through a proxy ([`forwarded`]).

pub mod forwarded;
pub mod http;
pub mod tls;

//! The edge: what stands between the open network and the routes. Who a request really comes from
//! when it arrives through a proxy ([`forwarded`]).

pub mod forwarded;

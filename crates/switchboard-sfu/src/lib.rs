//! switchboard's selective forwarding unit (SFU), sans-IO.
//!
//! [`Sfu`] holds the rooms of one media worker: rooms -> participants (one str0m [`Rtc`] each)
//! -> published tracks -> subscriptions. It owns no socket, spawns nothing and reads no clock:
//! the IO around it feeds it datagrams, signaling messages and the current [`Instant`], and
//! drains what should happen as values ([`Output`]: datagrams to send and messages to deliver to
//! peers) and when to call it next ([`Sfu::poll_timeout`]). Tests drive it on a virtual clock.
//!
//! The loop follows str0m's rule (its `lib.rs`, "Run loop"): every mutation of an `Rtc` is
//! followed by draining `poll_output` until it returns a timeout, before the next mutation of
//! that `Rtc`. Media from a publisher is forwarded packet by packet (str0m's RTP mode): each
//! subscriber's m-line has its own SSRC, and [`rewrite`] keeps its sequence numbers, timestamps
//! and VP8 picture ids continuous across simulcast layer switches.
//!
//! A participant whose `Rtc` errors or panics is dropped from media alone; its room and every
//! other participant go on.
//!
//! [`Rtc`]: str0m::Rtc
//! [`Instant`]: std::time::Instant

pub mod allocator;
mod arrivals;
mod config;
mod error;
mod keyframe;
pub mod layer_switch;
mod message;
mod participant;
mod rate;
pub mod rewrite;
mod sdp_check;
mod sfu;
pub mod speakers;
mod track;

pub use config::SfuConfig;
pub use error::SfuError;
pub use message::{Inbound, Output, StreamState, ToPeer, TrackInfo, TrackKind, TrackMapEntry};
pub use sfu::{Datagram, Sfu, SfuStats};
/// Which transport a [`Datagram`] came over, and an output [`Output::Transmit`] goes over.
pub use str0m::net::Protocol;
pub use track::TrackId;

/// The reserved peer id the SFU has in every room whose media goes through it.
pub const SFU_PEER: &str = "sfu";

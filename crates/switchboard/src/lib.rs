//! switchboard: a WebRTC signaling server.
//!
//! This crate is the IO shell around [`switchboard_core`]: configuration, token checks, the HTTP
//! routes and transports, logging, and the `switchboard` command line. `main.rs` only parses
//! arguments and calls into here, so everything is testable in-process.

pub mod admission;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod control;
pub mod delivery;
pub mod edge;
pub mod error;
pub mod front;
pub mod guest;
pub mod journal;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod node;
pub mod observe;
pub mod open_files;
pub mod origin;
pub mod pipeline;
pub mod runtime;
pub mod secret;
pub mod server;
pub mod sfu;
pub mod telemetry;
pub mod timer;
pub mod transport;
pub mod turn;
pub mod verified;
pub mod web;

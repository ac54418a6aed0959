//! Load generator and benchmarks for switchboard, its peers and a bare relay.
//!
//! The same workloads ([`scenario`]) run against switchboard (WebSocket, SSE, long-poll),
//! `matchbox_server`, the PeerJS server and the bare relay of [`bare`], each speaking its real
//! protocol ([`proto`]); the `sfu` scenario adds WebRTC endpoints ([`media`]) for the SFU. A run prints one JSON line ([`report::Report`]); [`report::markdown`]
//! compares runs. Targets are loopback only; every loop is bounded in count and time.
//! `docs/benchmarks.md` says how to run it and what it measured.

pub mod bare;
pub mod h1;
pub mod http;
pub mod media;
pub mod net;
pub mod proto;
pub mod report;
pub mod scenario;
pub mod shape;
pub mod stats;

/// Raises this process's soft limit on open files to its hard limit; returns the new soft limit.
pub fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

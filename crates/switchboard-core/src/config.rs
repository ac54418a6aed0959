//! Settings of the core: limits, capacities and timeouts.

use std::time::Duration;

use switchboard_protocol::{IceServer, Limits};

/// Everything the core needs to know about the deployment, fixed for the life of a [`crate::Hub`].
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Per-message size limits and the clock window.
    pub limits: Limits,
    /// Members per room; the next `join` gets `room_full`.
    pub max_peers: usize,
    /// Rooms one session may be in at once.
    pub max_rooms_per_session: usize,
    /// Interval of transport heartbeats, announced in `hello`.
    pub heartbeat_interval: Duration,
    /// Silence after which a transport is considered lost.
    pub heartbeat_timeout: Duration,
    /// How long a session whose transport was lost waits for a resume before its peers see it leave.
    pub resume_window: Duration,
    /// A room with no client message for this long is closed.
    pub room_idle_timeout: Duration,
    /// Server messages a session keeps for resume; past it, unsent messages end the session.
    pub outbox_limit: usize,
    /// ICE servers handed out in `joined`.
    pub ice_servers: Vec<IceServer>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            limits: Limits::default(),
            max_peers: 50,
            max_rooms_per_session: 8,
            heartbeat_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(40),
            resume_window: Duration::from_secs(30),
            room_idle_timeout: Duration::from_secs(3600),
            outbox_limit: 1024,
            ice_servers: Vec::new(),
        }
    }
}

//! Settings of the core: limits, capacities and timeouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_protocol::{IceServer, Limits, MediaMode};

use crate::Rate;

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
    /// How long a lobby guest's knock waits for a host's answer.
    pub knock_timeout: Duration,
    /// Server messages a session keeps for resume; past it, unsent messages end the session.
    pub outbox_limit: usize,
    /// ICE servers handed out in `joined`.
    pub ice_servers: Vec<IceServer>,
    /// Message budgets.
    pub rate: RateLimits,
    /// Sessions one user may hold at once; the next is refused with `rate_limited`.
    pub max_sessions_per_user: usize,
    /// Sessions one client address may hold at once; the next is refused with `rate_limited`.
    pub max_sessions_per_address: usize,
    /// The media setting of new rooms: `mesh` (peers connect directly), `sfu` (through the
    /// server's SFU) or `auto` (mesh for two, the SFU from three).
    pub media_mode: MediaMode,
    /// Whether the IO layer runs an SFU: without one, `auto` rooms stay mesh and `set_media` is
    /// refused.
    pub sfu: bool,
}

/// Budgets: token buckets (a rate per second and a burst). A rate of zero or less turns that budget
/// off. Messages past a budget are dropped; the sender gets at most one `warning` per second, and a
/// sender that keeps sending `abuse_factor` times its budget for `abuse_window_ms` is disconnected.
/// The per-address session budget is enforced in front of the hub, by the server's admission
/// control; it lives here so all budgets are configured in one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Messages per second per session, candidates excepted.
    pub messages_per_sec: f64,
    /// Burst of `messages_per_sec`.
    pub message_burst: f64,
    /// Candidates per second per session (a call gathers dozens at once).
    pub candidates_per_sec: f64,
    /// Burst of `candidates_per_sec`.
    pub candidate_burst: f64,
    /// Relayed messages per second into one room, from all its members together.
    pub room_messages_per_sec: f64,
    /// Burst of `room_messages_per_sec`.
    pub room_message_burst: f64,
    /// Joins per second from one client address, over all its sessions.
    pub joins_per_sec_per_address: f64,
    /// Burst of `joins_per_sec_per_address`.
    pub join_burst_per_address: f64,
    /// New sessions and tokens per second from one client address (HTTP 429 past it).
    pub sessions_per_sec_per_address: f64,
    /// Burst of `sessions_per_sec_per_address`.
    pub session_burst_per_address: f64,
    /// How many times its budget a sender must offer to count as abusive.
    pub abuse_factor: f64,
    /// How long the abuse must last before the session is closed, in ms.
    pub abuse_window_ms: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            messages_per_sec: 50.0,
            message_burst: 100.0,
            candidates_per_sec: 100.0,
            candidate_burst: 300.0,
            room_messages_per_sec: 1000.0,
            room_message_burst: 2000.0,
            joins_per_sec_per_address: 5.0,
            join_burst_per_address: 30.0,
            sessions_per_sec_per_address: 5.0,
            session_burst_per_address: 30.0,
            abuse_factor: 10.0,
            abuse_window_ms: 10_000,
        }
    }
}

impl RateLimits {
    /// A session's budget for messages other than candidates.
    pub fn messages(&self) -> Rate {
        Rate {
            per_sec: self.messages_per_sec,
            burst: self.message_burst,
        }
    }

    /// A session's budget for candidates.
    pub fn candidates(&self) -> Rate {
        Rate {
            per_sec: self.candidates_per_sec,
            burst: self.candidate_burst,
        }
    }

    /// A room's budget, shared by its members.
    pub fn room_messages(&self) -> Rate {
        Rate {
            per_sec: self.room_messages_per_sec,
            burst: self.room_message_burst,
        }
    }

    /// The joins of one client address.
    pub fn joins_per_address(&self) -> Rate {
        Rate {
            per_sec: self.joins_per_sec_per_address,
            burst: self.join_burst_per_address,
        }
    }

    /// New sessions and tokens of one client address.
    pub fn sessions_per_address(&self) -> Rate {
        Rate {
            per_sec: self.sessions_per_sec_per_address,
            burst: self.session_burst_per_address,
        }
    }
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
            knock_timeout: Duration::from_secs(300),
            outbox_limit: 1024,
            ice_servers: Vec::new(),
            rate: RateLimits::default(),
            max_sessions_per_user: 20,
            max_sessions_per_address: 500,
            media_mode: MediaMode::Auto,
            sfu: false,
        }
    }
}

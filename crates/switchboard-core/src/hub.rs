//! The hub: every session and room of a node, and every rule of the contract that needs state.
//!
//! One owner holds the hub (the server keeps it behind a lock taken only for synchronous calls),
//! so membership, outboxes and rooms can never disagree. Each input method takes the current
//! [`Now`]; what should happen next comes out as values ([`Hub::drain_outputs`]): the sinks of
//! sessions with messages to take or a close to act on, the events to log and count, and the next
//! deadline. The rules are split by concern, one module each:
//!
//! | module | owns |
//! |---|---|
//! | [`sessions`] | opening, resuming and ending sessions; transports attaching and leaving |
//! | [`streams`] | sessions carried over HTTP: streams that attach, messages posted apart |
//! | [`receive`] | the one path of a client message: parse, replay guard, clock window, dispatch |
//! | [`admission`] | session caps and message budgets, and what happens to a sender over budget |
//! | [`rooms`] | joining and leaving rooms, closing them |
//! | [`relay`] | relaying signals and messages, and the host's actions (mode, kick) |
//! | [`media`] | rooms whose media goes through the SFU: messages to and from the peer `sfu` |
//! | [`output`] | outboxes filled, sinks signalled, frames taken, outputs handed out |
//! | [`timers`] | heartbeat, resume and idle deadlines, kept by deadline |
//! | [`mirror`] | cluster mode: rooms shared with other nodes, messages from and to them |
//! | [`adopt`] | cluster mode: a session resumed on another node, adopted there and let go here |
//! | [`durable`] | cluster mode: nothing reaches a client before it is in the shared store |
//! | [`shared_budget`] | cluster mode: a room's message budget shared by its members on every node |
//! | [`policy`] | stored rooms' policies: member limit, starting mode and media, expiry |
//! | [`lobby`] | guests knocking on a room, and hosts admitting or denying them |
//! | [`control`] | the control API's actions on live rooms: members, removal, server messages |

mod admission;
mod adopt;
mod control;
mod durable;
mod lobby;
mod media;
mod media_switch;
mod mirror;
mod output;
mod policy;
mod receive;
mod relay;
mod rooms;
mod sessions;
mod shared_budget;
mod streams;
mod timers;

// The simulation also drives the `hub_sequence` fuzz target (`fuzz/`), with the `fuzzing` feature.
#[cfg(any(test, feature = "fuzzing"))]
mod simulation;
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(test), allow(dead_code))] // the fuzz target uses the simulation's share only
mod testkit;

#[cfg(feature = "fuzzing")]
pub use self::simulation::run_bytes as fuzz_sequence;

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use rand::RngCore;
use switchboard_protocol::RoomId;

pub use self::{
    control::Participant,
    lobby::{Admission, MAX_KNOCKS_PER_ROOM},
    media::MediaCommand,
    output::{Outputs, Transmit},
    policy::RoomPolicy,
    receive::Refusal,
    sessions::{Attachment, Disconnect},
    shared_budget::RoomUse,
};
use crate::{
    CoreConfig, Event, SessionId, SharedOp,
    deadlines::{Deadlines, TimerToken},
    rate::TokenBucket,
    room::Room,
    session::Sessions,
};

/// Counts for gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Sessions, attached or waiting for a resume.
    pub sessions: usize,
    /// Sessions with a transport attached.
    pub attached: usize,
    /// Rooms.
    pub rooms: usize,
    /// Room memberships.
    pub members: usize,
}

/// See the module documentation. `S` is what the IO layer hands the hub to reach a session's
/// transport (its sink); the hub only stores it and hands it back in [`Outputs::ready`].
pub struct Hub<S> {
    config: CoreConfig,
    sessions: Sessions<S>,
    /// Boxed, like the sessions, so the table's spare capacity stays small.
    rooms: HashMap<RoomId, Box<Room>>,
    /// Stored rooms' policies, by room id, live or not ([`policy`]).
    policies: HashMap<RoomId, RoomPolicy>,
    /// Guests knocking on rooms ([`lobby`]).
    lobby: lobby::Lobby,
    /// Guests admitted since the outputs were last taken, for the IO layer to mint tokens for.
    admissions: Vec<Admission>,
    rng: Box<dyn RngCore + Send>,
    /// Sinks signalled since the outputs were last taken.
    ready: Vec<S>,
    events: Vec<Event>,
    /// What SFU rooms' media worker must learn, since the outputs were last taken.
    media: Vec<MediaCommand>,
    /// Sessions whose outbox overflowed during the current call; ended once the call's own work is
    /// done, so a broadcast never changes the membership it is iterating.
    overflowed: Vec<SessionId>,
    /// Live sessions per user and per client address, for the session caps.
    sessions_by_user: HashMap<Arc<str>, usize>,
    sessions_by_address: HashMap<IpAddr, usize>,
    /// Join budgets per client address, each with its timer; full buckets are forgotten.
    joins_by_address: HashMap<IpAddr, (TokenBucket, TimerToken)>,
    timers: Deadlines,
    /// Where messages are encoded before their text is moved into an outbox.
    scratch: String,
    /// Cluster mode ([`Hub::clustered`]): rooms may hold members of other nodes.
    clustered: bool,
    /// What a clustered hub changed in shared state since the outputs were last taken.
    shared: Vec<SharedOp>,
    /// Mirrors a member of this node left during the current call: dropped when the call's work
    /// is done if none of this node's sessions is in them then (a join replacing the last one
    /// still needs the mirror).
    unmirrored: Vec<RoomId>,
    /// In cluster mode, where each session's logs are ([`durable`]). Kept here rather than in
    /// the session, whose layout is tuned for a single node.
    logging: HashMap<SessionId, durable::Logging>,
    /// Set while [`Hub::forwarded`] queues a message from another node: that one is in the
    /// session's log already, by position, so it is not logged again.
    handing: bool,
    /// Rooms spread over nodes that look idle here, since the outputs were last taken
    /// ([`Outputs::idle`]).
    idle: Vec<RoomId>,
}

impl std::borrow::Borrow<str> for SessionId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<S: Clone> Hub<S> {
    /// A hub with no sessions. `rng` makes session and peer ids; pass a seeded one in tests.
    pub fn new(config: CoreConfig, rng: impl RngCore + Send + 'static) -> Self {
        Hub {
            config,
            sessions: Sessions::default(),
            rooms: HashMap::new(),
            policies: HashMap::new(),
            lobby: lobby::Lobby::default(),
            admissions: Vec::new(),
            rng: Box::new(rng),
            ready: Vec::new(),
            events: Vec::new(),
            media: Vec::new(),
            overflowed: Vec::new(),
            sessions_by_user: HashMap::new(),
            sessions_by_address: HashMap::new(),
            joins_by_address: HashMap::new(),
            timers: Deadlines::default(),
            scratch: String::new(),
            clustered: false,
            shared: Vec::new(),
            unmirrored: Vec::new(),
            logging: HashMap::new(),
            handing: false,
            idle: Vec::new(),
        }
    }

    /// The hub in cluster mode: its rooms may hold members whose sessions are on other nodes, and
    /// it reports what it changes in shared state as [`SharedOp`]s ([`crate::shared`]).
    pub fn clustered(mut self) -> Self {
        self.clustered = true;
        self
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        Stats {
            sessions: self.sessions.len(),
            attached: self.sessions.values().filter(|s| s.is_attached()).count(),
            rooms: self.rooms.len(),
            members: self.rooms.values().map(|r| r.members.len()).sum(),
        }
    }

    /// How many members `room` has (0 when it does not exist).
    pub fn room_size(&self, room: &RoomId) -> usize {
        self.rooms.get(room).map_or(0, |r| r.members.len())
    }
}

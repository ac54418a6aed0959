//! The simulation's clients: what each one knows of its session and its rooms, built only from
//! what it receives, and the checks every message it reads and every settled moment must pass.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    time::Instant,
};

use rand::{SeedableRng, rngs::StdRng};
use serde_json::Value;
use switchboard_protocol::{ErrorCode, MediaMode, Role, ServerEnvelope};

use super::{SIM_RESUME, USERS};
use crate::{
    Attachment, CloseReason, CoreConfig, Hub, MediaCommand, Now, Outputs, RateLimits, Refusal,
    Transmit,
    hub::testkit::{Sink, T0_UNIX_MS, code, decode, identity, secs},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SimLink {
    Attached,
    /// The transport is gone; the session may be waiting for a resume, or already ended.
    Detached,
    /// A resume was refused (`session_expired`). The hub may still hold the session, silent in
    /// its rooms, until its resume window has passed; after that it is certainly gone.
    Abandoned,
    Gone,
}

/// A client as the simulation sees it, with the room view it builds from what it receives.
pub(super) struct Client {
    pub(super) user: usize,
    pub(super) at: Attachment,
    pub(super) link: SimLink,
    pub(super) stalled: bool,
    /// When the client learned that its transport was gone (Unix ms), never before the hub did.
    pub(super) detached_ms: u64,
    pub(super) next_seq: u64,
    pub(super) last_seq: u64,
    /// Room -> the other members' peer ids, as told by `joined`, `peer_joined` and `peer_left`.
    pub(super) rooms: BTreeMap<String, BTreeSet<String>>,
    /// Room -> where its media goes (`mesh` or `sfu`), as told by `joined` and `media_changed`;
    /// read only for the rooms in `rooms`.
    pub(super) media: HashMap<String, String>,
    /// Ids of relayed messages received, to catch a double delivery.
    pub(super) received: HashSet<String>,
}

pub(super) struct Sent {
    pub(super) sender: usize,
    pub(super) room: String,
    pub(super) from: String,
    pub(super) to: Option<String>,
}

pub(super) struct Sim {
    pub(super) hub: Hub<Sink>,
    pub(super) now: Now,
    pub(super) clients: Vec<Client>,
    pub(super) sent: HashMap<String, Sent>,
    pub(super) next_id: u64,
    /// Room -> the members the SFU holds, from the hub's media commands.
    pub(super) sfu: BTreeMap<String, BTreeSet<String>>,
}

pub(super) fn sim_peer(user: usize) -> String {
    format!("p{user}")
}

pub(super) fn sim_room(r: usize) -> String {
    format!("r{r}")
}

impl Sim {
    pub(super) fn new() -> Self {
        let config = CoreConfig {
            max_peers: 3,
            max_rooms_per_session: 2,
            heartbeat_interval: secs(5),
            heartbeat_timeout: secs(20),
            resume_window: SIM_RESUME,
            room_idle_timeout: secs(45),
            outbox_limit: 6,
            media_mode: MediaMode::Auto,
            sfu: true,
            // No budgets: the invariants here are about delivery, and random traffic with the
            // clock standing still runs through any budget (the fuzzer once joined past the
            // per-address burst of 30). Budgets have tests of their own (`admission`,
            // `shared_budget`).
            rate: RateLimits {
                messages_per_sec: 0.0,
                candidates_per_sec: 0.0,
                room_messages_per_sec: 0.0,
                joins_per_sec_per_address: 0.0,
                ..RateLimits::default()
            },
            ..CoreConfig::default()
        };
        let mut sim = Sim {
            hub: Hub::new(config, StdRng::seed_from_u64(7)),
            now: Now {
                at: Instant::now(),
                unix_ms: T0_UNIX_MS,
            },
            clients: Vec::new(),
            sent: HashMap::new(),
            next_id: 0,
            sfu: BTreeMap::new(),
        };
        for u in 0..USERS {
            sim.open(u);
        }
        sim
    }

    pub(super) fn open(&mut self, user: usize) {
        let role = if user == 0 { Role::Host } else { Role::Guest };
        let at = self
            .hub
            .open(identity(&format!("user{user}"), role, "*"), self.now)
            .expect("session opens");
        self.clients.push(Client {
            user,
            at,
            link: SimLink::Attached,
            stalled: false,
            detached_ms: 0,
            next_seq: 1,
            last_seq: 0,
            rooms: BTreeMap::new(),
            media: HashMap::new(),
            received: HashSet::new(),
        });
        let c = self.clients.len() - 1;
        self.drain(c);
        assert!(self.clients[c].last_seq >= 1, "hello");
    }

    /// The `i`-th client (modulo their number) that satisfies `ok`.
    pub(super) fn pick(&self, i: usize, ok: impl Fn(&Client) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.clients.len())
            .filter(|&c| ok(&self.clients[c]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[i % candidates.len()])
    }

    /// An attached client that reads and writes.
    pub(super) fn active(&self, i: usize) -> Option<usize> {
        self.pick(i, |c| c.link == SimLink::Attached && !c.stalled)
    }

    /// An active client to send a relay; when `aimed`, preferably one that is in a room.
    pub(super) fn sender(&self, i: usize, aimed: bool) -> Option<usize> {
        let in_room = |c: &Client| c.link == SimLink::Attached && !c.stalled && !c.rooms.is_empty();
        aimed
            .then(|| self.pick(i, in_room))
            .flatten()
            .or_else(|| self.active(i))
    }

    /// Sends a frame from client `c`; a refusal is queued as the server does. True if accepted.
    pub(super) fn send(&mut self, c: usize, mut v: Value) -> bool {
        let client = &mut self.clients[c];
        v["seq"] = client.next_seq.into();
        v["ts"] = self.now.unix_ms.into();
        client.next_seq += 1;
        match self.hub.receive(&client.at, &v.to_string(), self.now) {
            Ok(()) => true,
            Err(Refusal::Dropped) => panic!("random traffic hit a rate limit"),
            Err(Refusal::Reply(e)) => {
                let text = e.encode(0, 0);
                assert_ne!(code(&decode(&text)), "internal", "{text}");
                self.hub.reply(&client.at, *e, self.now);
                false
            }
        }
    }

    pub(super) fn drain(&mut self, c: usize) {
        loop {
            let at = self.clients[c].at.clone();
            match self.hub.transmit(&at, 1000) {
                Transmit::Idle => return,
                Transmit::Messages { batch: frames, .. } => {
                    assert!(!frames.is_empty());
                    for f in frames.into_iter().map(|f| f.text.to_string()) {
                        self.process(c, decode(&f));
                    }
                }
                Transmit::Close(reason) => {
                    self.closed(c, reason);
                    return;
                }
            }
        }
    }

    pub(super) fn detached(&mut self, c: usize) {
        let client = &mut self.clients[c];
        client.link = SimLink::Detached;
        client.detached_ms = self.now.unix_ms;
        client.stalled = false;
    }

    pub(super) fn closed(&mut self, c: usize, reason: CloseReason) {
        if matches!(
            reason,
            CloseReason::TransportLost | CloseReason::HeartbeatTimeout
        ) {
            self.detached(c);
            return;
        }
        let client = &mut self.clients[c];
        match reason {
            CloseReason::Replaced
            | CloseReason::Overflow
            | CloseReason::Expired
            | CloseReason::Shutdown => {
                client.link = SimLink::Gone;
                client.rooms.clear();
            }
            other => panic!("client {c} closed with {other:?}"),
        }
        client.stalled = false;
    }

    /// One message as the client reads it: checks it against the client's own view.
    pub(super) fn process(&mut self, c: usize, m: ServerEnvelope) {
        let own = sim_peer(self.clients[c].user);
        let client = &mut self.clients[c];
        assert_eq!(
            m.seq,
            client.last_seq + 1,
            "client {c}: seq gap or repeat: {m:?}"
        );
        client.last_seq = m.seq;
        let room = m.room.clone().unwrap_or_default();
        let text = |key: &str| m.payload[key].as_str().unwrap_or_default().to_owned();
        match m.kind.as_str() {
            "hello" => {
                if m.seq > 1 {
                    assert_eq!(m.payload["resumed"], true);
                    assert_eq!(m.payload["last_client_seq"], client.next_seq - 1);
                }
            }
            "joined" => {
                assert_eq!(text("peer"), own);
                let peers: BTreeSet<String> = m.payload["peers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["peer"].as_str().unwrap().to_owned())
                    .collect();
                assert!(!peers.contains(&own));
                if let Some(known) = client.rooms.get(&room) {
                    assert_eq!(known, &peers, "client {c}: a repeated joined disagrees");
                }
                client.media.insert(room.clone(), text("media"));
                client.rooms.insert(room, peers);
            }
            "peer_joined" => {
                let peer = text("peer");
                assert_ne!(peer, own);
                let view = client.rooms.get_mut(&room).unwrap_or_else(|| {
                    panic!("client {c}: peer_joined for {room}, which it is not in")
                });
                assert!(view.insert(peer), "client {c}: {m:?} for a known member");
            }
            "peer_left" => {
                let peer = text("peer");
                let view = client.rooms.get_mut(&room).unwrap_or_else(|| {
                    panic!("client {c}: peer_left for {room}, which it is not in")
                });
                assert!(view.remove(&peer), "client {c}: {m:?} for a non-member");
            }
            "left" => {
                let was_in = client.rooms.remove(&room).is_some();
                if text("reason") == "kicked" {
                    assert!(was_in, "client {c}: kicked from {room}, which it is not in");
                }
            }
            "room_closed" => {
                assert!(
                    client.rooms.remove(&room).is_some(),
                    "client {c}: {room} closed, which it is not in"
                );
            }
            "mode_changed" => {
                assert!(client.rooms.contains_key(&room), "client {c}: {m:?}");
            }
            "media_changed" => {
                assert!(client.rooms.contains_key(&room), "client {c}: {m:?}");
                client.media.insert(room, text("media"));
            }
            "offer" | "message" => {
                let id = m.id.clone().expect("relayed with its id");
                let sent = self
                    .sent
                    .get(&id)
                    .unwrap_or_else(|| panic!("client {c}: {id} was never accepted"));
                let from = m.from.clone().expect("relayed with from");
                assert_eq!(room, sent.room);
                assert_eq!(from, sent.from);
                assert_ne!(c, sent.sender, "a message came back to its sender");
                assert_ne!(from, own);
                if let Some(to) = &sent.to {
                    assert_eq!(to, &own, "client {c} got a message for {to}");
                }
                let view = client.rooms.get(&room).unwrap_or_else(|| {
                    panic!("client {c} got {id} for {room}, which it is not in")
                });
                assert!(
                    view.contains(&from),
                    "client {c} got {id} from non-member {from}"
                );
                assert!(client.received.insert(id.clone()), "{id} delivered twice");
            }
            "pong" | "replaced" | "error" => {}
            other => panic!("client {c}: unexpected {other}"),
        }
    }

    pub(super) fn drain_all(&mut self) {
        for c in 0..self.clients.len() {
            let client = &self.clients[c];
            if client.link == SimLink::Attached && !client.stalled {
                self.drain(c);
            }
        }
        let mut outputs = Outputs::default();
        self.hub.drain_outputs(&mut outputs);
        for command in outputs.media {
            match command {
                MediaCommand::Joined { room, peer } => {
                    let held = self.sfu.entry(room.to_string()).or_default();
                    assert!(held.insert(peer.to_string()), "{peer} joined the SFU twice");
                }
                MediaCommand::Left { room, peer } => {
                    let held = self.sfu.entry(room.to_string()).or_default();
                    assert!(held.remove(peer.as_str()), "{peer} left the SFU, not in it");
                }
                other => panic!("the simulation sends nothing to the SFU: {other:?}"),
            }
        }
    }

    /// When every client's view is up to date, the views agree with each other and with the hub.
    /// Returns whether it could check.
    pub(super) fn check(&self) -> bool {
        let settled = self
            .clients
            .iter()
            .all(|c| c.link == SimLink::Gone || (c.link == SimLink::Attached && !c.stalled));
        if !settled {
            return false;
        }
        let live: Vec<&Client> = self
            .clients
            .iter()
            .filter(|c| c.link == SimLink::Attached)
            .collect();
        let stats = self.hub.stats();
        assert_eq!(stats.sessions, live.len(), "sessions");
        assert_eq!(stats.attached, live.len(), "attached");
        let members: usize = live.iter().map(|c| c.rooms.len()).sum();
        assert_eq!(stats.members, members, "members");
        let rooms: BTreeSet<&String> = live.iter().flat_map(|c| c.rooms.keys()).collect();
        assert_eq!(stats.rooms, rooms.len(), "rooms");
        for (i, c) in live.iter().enumerate() {
            for (room, view) in &c.rooms {
                let expected: BTreeSet<String> = live
                    .iter()
                    .enumerate()
                    .filter(|(j, d)| *j != i && d.rooms.contains_key(room))
                    .map(|(_, d)| {
                        assert_ne!(d.user, c.user, "two sessions of one user in {room}");
                        sim_peer(d.user)
                    })
                    .collect();
                assert_eq!(view, &expected, "user{}'s view of {room}", c.user);
            }
        }
        // Every member of a room is told the same media, and the SFU holds exactly the members
        // of the rooms whose media is `sfu`.
        for (room, held) in &self.sfu {
            let members: Vec<&&Client> =
                live.iter().filter(|c| c.rooms.contains_key(room)).collect();
            let told: BTreeSet<&str> = members.iter().map(|c| c.media[room].as_str()).collect();
            assert!(
                told.len() <= 1,
                "members of {room} disagree on its media: {told:?}"
            );
            let expected: BTreeSet<String> = match told.first() {
                Some(&"sfu") => members.iter().map(|c| sim_peer(c.user)).collect(),
                _ => BTreeSet::new(),
            };
            assert_eq!(held, &expected, "the SFU's members of {room}");
        }
        true
    }

    pub(super) fn resume(&mut self, c: usize) {
        let client = &self.clients[c];
        let user = format!("user{}", client.user);
        match self
            .hub
            .resume(client.at.session.as_str(), &user, client.last_seq, self.now)
        {
            Ok(at) => {
                let client = &mut self.clients[c];
                client.at = at;
                client.link = SimLink::Attached;
                client.stalled = false;
                let before = client.last_seq;
                self.drain(c);
                assert!(
                    self.clients[c].last_seq > before,
                    "a resume starts with hello"
                );
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::SessionExpired, "{e}");
                let client = &mut self.clients[c];
                client.link = SimLink::Abandoned;
                client.rooms.clear();
            }
        }
    }
}

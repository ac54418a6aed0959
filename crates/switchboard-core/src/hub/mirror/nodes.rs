//! Two clustered hubs sharing rooms through a model of the shared store, for the tests of what
//! peers (and the server's own actions) on different nodes see: the store commits what each hub
//! hands out and delivers forwarded messages as an inbox would.

use std::collections::{HashMap, VecDeque};

use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use switchboard_protocol::{Role, RoomId};

use super::super::testkit::{TestPeer, World, room};
use crate::{CoreConfig, Hub, MediaCommand, RoomView, SessionId, SharedKnock, SharedOp};

/// The shared store as the hubs see it: rooms, and which node holds each session. Forwarded
/// messages wait in `mail` until [`Nodes::flush`] delivers them, as an inbox would.
#[derive(Default)]
pub(in crate::hub) struct Store {
    pub(in crate::hub) rooms: HashMap<RoomId, RoomView>,
    pub(in crate::hub) home: HashMap<SessionId, usize>,
    pub(in crate::hub) mail: VecDeque<(usize, SessionId, u64, &'static str, String)>,
    /// Messages forwarded to each session so far: the next one's position.
    pub(in crate::hub) positions: HashMap<SessionId, u64>,
    /// Knocks by room: apart from the room, which goes with its last member, as in Redis.
    pub(in crate::hub) knocks: HashMap<RoomId, Vec<SharedKnock>>,
}

impl Store {
    /// `r` as a node reads it.
    pub(in crate::hub) fn view(&self, r: &RoomId) -> RoomView {
        let mut view = self.rooms.get(r).cloned().unwrap_or_default();
        view.knocks = self.knocks.get(r).cloned().unwrap_or_default();
        view
    }

    pub(in crate::hub) fn forward(&mut self, to: SessionId, kind: &'static str, text: String) {
        if let Some(&home) = self.home.get(&to) {
            let position = self.positions.entry(to.clone()).or_default();
            *position += 1;
            let position = *position;
            self.mail.push_back((home, to, position, kind, text));
        }
    }

    pub(in crate::hub) fn apply(&mut self, node: usize, ops: Vec<SharedOp>) {
        for op in ops {
            match op {
                SharedOp::Attached { session, .. } => {
                    self.home.insert(session, node);
                }
                SharedOp::Ended { session } => {
                    self.home.remove(&session);
                }
                SharedOp::Joined { room, member } => {
                    self.rooms.entry(room).or_default().members.push(member);
                }
                SharedOp::Left { room, peer } => {
                    if let Some(view) = self.rooms.get_mut(&room) {
                        view.members.retain(|m| m.info.peer != peer);
                        if view.members.is_empty() {
                            self.rooms.remove(&room);
                        }
                    }
                }
                SharedOp::Mode { room, mode } => {
                    self.rooms.entry(room).or_default().mode = mode;
                }
                SharedOp::MediaMode { room, media_mode } => {
                    self.rooms.entry(room).or_default().media_mode = Some(media_mode);
                }
                SharedOp::Banned { room, user } => {
                    self.rooms.entry(room).or_default().banned.push(user);
                }
                SharedOp::Forward { to, kind, text } => self.forward(to, kind, text.to_string()),
                SharedOp::Knocked { room, knock } => {
                    self.knocks.entry(room).or_default().push(knock);
                }
                SharedOp::KnockEnded { room, ticket } => {
                    if let Some(knocks) = self.knocks.get_mut(&room) {
                        knocks.retain(|k| k.ticket != ticket);
                    }
                }
                SharedOp::ToHosts { room, kind, text } => {
                    let hosts: Vec<SessionId> = (self.rooms.get(&room).into_iter())
                        .flat_map(|v| v.members.iter())
                        .filter(|m| m.info.role == Role::Host)
                        .filter(|m| self.home.get(&m.session) != Some(&node))
                        .map(|m| m.session.clone())
                        .collect();
                    for host in hosts {
                        self.forward(host, kind, text.to_string());
                    }
                }
                // The durable outbox log is what adoption reads (`adopt/tests.rs`).
                SharedOp::Logged { .. } | SharedOp::Resumed { .. } | SharedOp::ClientSeq { .. } => {
                }
            }
        }
    }
}

/// Two worlds (one per node) and the store between them.
pub(in crate::hub) struct Nodes {
    pub(in crate::hub) worlds: [World; 2],
    pub(in crate::hub) store: Store,
    /// What each node's hub handed its SFU link so far.
    pub(in crate::hub) media: [Vec<MediaCommand>; 2],
}

impl Nodes {
    pub(in crate::hub) fn new() -> Self {
        Self::with(CoreConfig::default())
    }

    /// Two nodes running with `config`, on one clock.
    pub(in crate::hub) fn with(config: CoreConfig) -> Self {
        let start = World::new().now;
        let world = |seed| {
            let mut w = World::new();
            w.hub = Hub::new(config.clone(), StdRng::seed_from_u64(seed)).clustered();
            w.now = start;
            w
        };
        Nodes {
            worlds: [world(1), world(2)],
            store: Store::default(),
            media: Default::default(),
        }
    }

    /// Advances both nodes' clocks by `d` and runs their timers.
    pub(in crate::hub) fn advance(&mut self, d: std::time::Duration) {
        for w in &mut self.worlds {
            w.advance(d);
            w.tick();
        }
        self.flush();
    }

    /// Commits what node `n`'s last calls changed, and delivers every forwarded message, as the
    /// IO layer does (a membership notice first refreshes the recipient node's mirror).
    pub(in crate::hub) fn flush(&mut self) {
        loop {
            for n in 0..2 {
                let w = &mut self.worlds[n];
                // Committed here and now: what waited for the writes may go.
                w.commit_logs();
                let mut out = w.outputs();
                self.media[n].append(&mut out.media);
                let mut ops = out.shared;
                // A guest a host admitted gets its token, as the node mints it (`Node::call`).
                for a in out.admissions {
                    let token = format!("token of {}", a.user);
                    w.hub.admitted(&a.session, &a.room, token, w.now);
                    w.commit_logs();
                    let mut out = w.outputs();
                    self.media[n].append(&mut out.media);
                    ops.extend(out.shared);
                }
                self.store.apply(n, ops);
            }
            let Some((n, to, position, kind, text)) = self.store.mail.pop_front() else {
                return;
            };
            let room_id = serde_json::from_str::<Value>(&text).unwrap()["room"]
                .as_str()
                .map(room);
            let w = &mut self.worlds[n];
            if let Some(r) = &room_id
                && matches!(kind, "peer_joined" | "peer_left" | "mode_changed")
            {
                let view = self.store.view(r);
                w.hub.mirror_room(r, view, w.now);
                w.hub.release_mirror(r);
            }
            assert!(
                w.hub
                    .forwarded(&to, position, room_id.as_ref(), kind, &text, w.now)
            );
        }
    }

    pub(in crate::hub) fn open(&mut self, n: usize, user: &str, role: Role) -> TestPeer {
        let p = self.worlds[n].open(user, role);
        self.flush();
        p
    }

    /// A join as the node runs it: the room's view loaded under its lock, then the rules.
    pub(in crate::hub) fn join(&mut self, n: usize, p: &mut TestPeer, r: &str) -> Vec<Value> {
        let frame = json!({"type": "join", "room": r, "payload": {"peer": p.user}});
        self.join_with(n, p, r, frame);
        self.read(n, p)
    }

    /// Sends the join `frame` for room `r`, leaving what it brings unread.
    pub(in crate::hub) fn join_with(&mut self, n: usize, p: &mut TestPeer, r: &str, frame: Value) {
        let rid = room(r);
        let view = self.store.view(&rid);
        let w = &mut self.worlds[n];
        w.hub.mirror_room(&rid, view, w.now);
        let frame = w.frame(p, frame);
        if let Err(e) = w.send_text(p, &frame) {
            w.hub.reply(&p.at, *e, w.now);
        }
        w.hub.release_mirror(&rid);
        self.flush();
    }

    pub(in crate::hub) fn send(&mut self, n: usize, p: &mut TestPeer, v: Value) {
        self.worlds[n].send(p, v);
        self.flush();
    }

    /// Moves both nodes' clocks on by `d`, running no timers: the test runs each node's.
    pub(in crate::hub) fn move_clocks(&mut self, d: std::time::Duration) {
        for w in &mut self.worlds {
            w.advance(d);
        }
    }

    /// Node `n`'s idle check of room `r` as its IO runs one: the room looked at as the store has
    /// it, `quiet` since its last activity on any node, checked, and its mirror let go.
    pub(in crate::hub) fn idle_check(&mut self, n: usize, r: &str, quiet: std::time::Duration) {
        let rid = room(r);
        let mut view = self.store.view(&rid);
        view.quiet = quiet;
        let w = &mut self.worlds[n];
        w.hub.look_at(&rid, view, w.now);
        w.hub.idle_check(&rid, w.now);
        w.hub.release_mirror(&rid);
    }

    pub(in crate::hub) fn read(&mut self, n: usize, p: &mut TestPeer) -> Vec<Value> {
        let got = self.worlds[n].drain(p);
        got.into_iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect()
    }
}

pub(in crate::hub) fn types(msgs: &[Value]) -> Vec<&str> {
    msgs.iter().map(|m| m["type"].as_str().unwrap()).collect()
}

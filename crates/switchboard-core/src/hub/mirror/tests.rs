//! Two clustered hubs sharing rooms through a model of the shared store: what peers on different
//! nodes see is what they would see on one.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use switchboard_protocol::{Role, RoomId};

use super::super::testkit::{Sink, TestPeer, World, code, kinds, message_to, room};
use crate::{CoreConfig, Event, Hub, Now, RoomView, SessionId, SharedKnock, SharedOp};

/// The shared store as the hubs see it: rooms, and which node holds each session. Forwarded
/// messages wait in `mail` until [`Nodes::flush`] delivers them, as an inbox would.
#[derive(Default)]
struct Store {
    rooms: HashMap<RoomId, RoomView>,
    home: HashMap<SessionId, usize>,
    mail: VecDeque<(usize, SessionId, u64, &'static str, String)>,
    /// Messages forwarded to each session so far: the next one's position.
    positions: HashMap<SessionId, u64>,
    /// Knocks by room: apart from the room, which goes with its last member, as in Redis.
    knocks: HashMap<RoomId, Vec<SharedKnock>>,
}

impl Store {
    /// `r` as a node reads it.
    fn view(&self, r: &RoomId) -> RoomView {
        let mut view = self.rooms.get(r).cloned().unwrap_or_default();
        view.knocks = self.knocks.get(r).cloned().unwrap_or_default();
        view
    }

    fn forward(&mut self, to: SessionId, kind: &'static str, text: String) {
        if let Some(&home) = self.home.get(&to) {
            let position = self.positions.entry(to.clone()).or_default();
            *position += 1;
            let position = *position;
            self.mail.push_back((home, to, position, kind, text));
        }
    }

    fn apply(&mut self, node: usize, ops: Vec<SharedOp>) {
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
struct Nodes {
    worlds: [World; 2],
    store: Store,
}

impl Nodes {
    fn new() -> Self {
        let world = |seed| {
            let mut w = World::new();
            w.hub = Hub::new(CoreConfig::default(), StdRng::seed_from_u64(seed)).clustered();
            w
        };
        Nodes {
            worlds: [world(1), world(2)],
            store: Store::default(),
        }
    }

    /// Commits what node `n`'s last calls changed, and delivers every forwarded message, as the
    /// IO layer does (a membership notice first refreshes the recipient node's mirror).
    fn flush(&mut self) {
        loop {
            for n in 0..2 {
                let w = &mut self.worlds[n];
                // Committed here and now: what waited for the writes may go.
                w.commit_logs();
                let out = w.outputs();
                let mut ops = out.shared;
                // A guest a host admitted gets its token, as the node mints it (`Node::call`).
                for a in out.admissions {
                    let token = format!("token of {}", a.user);
                    w.hub.admitted(&a.session, &a.room, token, w.now);
                    w.commit_logs();
                    ops.extend(w.outputs().shared);
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

    fn open(&mut self, n: usize, user: &str, role: Role) -> TestPeer {
        let p = self.worlds[n].open(user, role);
        self.flush();
        p
    }

    /// A join as the node runs it: the room's view loaded under its lock, then the rules.
    fn join(&mut self, n: usize, p: &mut TestPeer, r: &str) -> Vec<Value> {
        let frame = json!({"type": "join", "room": r, "payload": {"peer": p.user}});
        self.join_with(n, p, r, frame);
        self.read(n, p)
    }

    /// Sends the join `frame` for room `r`, leaving what it brings unread.
    fn join_with(&mut self, n: usize, p: &mut TestPeer, r: &str, frame: Value) {
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

    fn send(&mut self, n: usize, p: &mut TestPeer, v: Value) {
        self.worlds[n].send(p, v);
        self.flush();
    }

    fn read(&mut self, n: usize, p: &mut TestPeer) -> Vec<Value> {
        let got = self.worlds[n].drain(p);
        got.into_iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect()
    }
}

fn types(msgs: &[Value]) -> Vec<&str> {
    msgs.iter().map(|m| m["type"].as_str().unwrap()).collect()
}

#[test]
fn peers_on_two_nodes_see_what_they_would_on_one() {
    let mut c = Nodes::new();
    let mut alice = c.open(0, "alice", Role::Host);
    let mut bob = c.open(1, "bob", Role::Guest);
    let joined = c.join(0, &mut alice, "r1");
    assert_eq!(types(&joined), ["joined"]);
    let joined = c.join(1, &mut bob, "r1");
    assert_eq!(types(&joined), ["joined"]);
    assert_eq!(joined[0]["payload"]["peers"][0]["peer"], "alice");
    let got = c.read(0, &mut alice);
    assert_eq!(types(&got), ["peer_joined"]);
    assert_eq!(got[0]["payload"]["peer"], "bob");

    // Targeted, both ways, then a broadcast: relayed with the sender's peer id, numbered in the
    // recipient's own outbox (the test world checks the seqs).
    c.send(0, &mut alice, message_to("bob", "m1"));
    c.send(1, &mut bob, message_to("alice", "m2"));
    c.send(
        0,
        &mut alice,
        json!({"type": "offer", "room": "r1", "to": "bob", "payload": {"sdp": "v=0"}}),
    );
    c.send(
        1,
        &mut bob,
        json!({"type": "message", "room": "r1", "payload": {"all": 1}}),
    );
    let to_bob = c.read(1, &mut bob);
    assert_eq!(types(&to_bob), ["message", "offer"]);
    assert!(to_bob.iter().all(|m| m["from"] == "alice"));
    let to_alice = c.read(0, &mut alice);
    assert_eq!(types(&to_alice), ["message", "message"]);
    assert_eq!(to_alice[1]["payload"], json!({"all": 1}));

    // A leave on one node is a peer_left on the other, and the room is gone from the store.
    c.send(1, &mut bob, json!({"type": "leave", "room": "r1"}));
    assert_eq!(types(&c.read(1, &mut bob)), ["left"]);
    let got = c.read(0, &mut alice);
    assert_eq!(types(&got), ["peer_left"]);
    assert_eq!(got[0]["payload"]["reason"], "left");
    assert_eq!(c.store.rooms[&room("r1")].members.len(), 1);
    // Node 1 keeps no mirror of a room it has no member in.
    assert_eq!(c.worlds[1].hub.room_size(&room("r1")), 0);
    let e = c.worlds[0].reject(&mut alice, message_to("bob", "m3"));
    assert_eq!(code(&e), "unknown_peer");
}

#[test]
fn caps_bans_and_replacement_hold_across_nodes() {
    let mut c = Nodes::new();
    let mut alice = c.open(0, "alice", Role::Host);
    let mut bob = c.open(1, "bob", Role::Guest);
    c.join(0, &mut alice, "r1");
    c.join(1, &mut bob, "r1");
    c.read(0, &mut alice);

    // The same user again on the other node: the old session is replaced and ends.
    let mut bob2 = c.open(0, "bob", Role::Guest);
    let joined = c.join(0, &mut bob2, "r1");
    assert_eq!(types(&joined), ["joined"]);
    let (got, reason) = c.worlds[1].drain_to_close(&mut bob);
    assert_eq!(kinds(&got), ["replaced"]);
    assert_eq!(reason, crate::CloseReason::Replaced);
    let got = c.read(0, &mut alice);
    assert_eq!(types(&got), ["peer_left", "peer_joined"]);
    assert_eq!(got[0]["payload"]["reason"], "replaced");
    assert_eq!(c.store.rooms[&room("r1")].members.len(), 2);

    // A host on node 1 kicks a guest on node 0, who cannot come back from either node.
    let mut host = c.open(1, "hank", Role::Host);
    c.join(1, &mut host, "r1");
    c.read(0, &mut alice);
    c.read(0, &mut bob2);
    c.send(
        1,
        &mut host,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "bob"}}),
    );
    let got = c.read(0, &mut bob2);
    assert_eq!(types(&got), ["left"]);
    assert_eq!(got[0]["payload"]["reason"], "kicked");
    assert_eq!(types(&c.read(0, &mut alice)), ["peer_left"]);
    let again = c.join(0, &mut bob2, "r1");
    assert_eq!(again[0]["payload"]["code"], "forbidden");
    let mut bob3 = c.open(1, "bob", Role::Guest);
    let again = c.join(1, &mut bob3, "r1");
    assert_eq!(again[0]["payload"]["code"], "forbidden");

    // The mode a host sets on one node rules the guests of the other.
    c.send(
        1,
        &mut host,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    c.read(1, &mut host);
    assert_eq!(types(&c.read(0, &mut alice)), ["mode_changed"]);
}

#[test]
fn max_peers_counts_the_members_of_every_node() {
    let mut c = Nodes::new();
    for n in 0..2 {
        c.worlds[n].hub = Hub::new(
            CoreConfig {
                max_peers: 2,
                ..CoreConfig::default()
            },
            StdRng::seed_from_u64(n as u64 + 1),
        )
        .clustered();
    }
    let mut a = c.open(0, "a", Role::Guest);
    let mut b = c.open(1, "b", Role::Guest);
    let mut d = c.open(0, "d", Role::Guest);
    c.join(0, &mut a, "r1");
    c.join(1, &mut b, "r1");
    let full = c.join(0, &mut d, "r1");
    assert_eq!(full[0]["payload"]["code"], "room_full");
    assert_eq!(c.store.rooms[&room("r1")].members.len(), 2);
}

#[test]
fn a_stored_rooms_policy_holds_across_nodes() {
    let mut c = Nodes::new();
    let policy = crate::RoomPolicy {
        max_peers: Some(2),
        mode: switchboard_protocol::Mode::HostOnly,
        media: switchboard_protocol::MediaMode::Mesh,
        expires_at: None,
    };
    for w in &mut c.worlds {
        w.hub.set_policy(room("r1"), policy);
    }
    let mut a = c.open(0, "a", Role::Host);
    let mut b = c.open(1, "b", Role::Guest);
    let mut d = c.open(1, "d", Role::Guest);
    assert_eq!(c.join(0, &mut a, "r1")[0]["payload"]["mode"], "host_only");
    // The other node learns the mode the policy started the call in, not the store's default.
    assert_eq!(c.join(1, &mut b, "r1")[0]["payload"]["mode"], "host_only");
    let e = c.worlds[1].reject(
        &mut b,
        json!({"type": "message", "room": "r1", "payload": {"all": 1}}),
    );
    assert_eq!(code(&e), "forbidden");
    let full = c.join(1, &mut d, "r1");
    assert_eq!(full[0]["payload"]["code"], "room_full");
}

#[test]
fn a_user_replaced_from_a_node_with_no_member_keeps_the_others() {
    let mut c = Nodes::new();
    let mut alice = c.open(0, "alice", Role::Host);
    let mut bob = c.open(0, "bob", Role::Guest);
    c.join(0, &mut alice, "r1");
    c.join(0, &mut bob, "r1");
    c.read(0, &mut alice);
    // Node 1 has no member: the old bob leaving its mirror must not take alice with it.
    let mut bob2 = c.open(1, "bob", Role::Guest);
    let joined = c.join(1, &mut bob2, "r1");
    assert_eq!(types(&joined), ["joined"]);
    let peers: Vec<&Value> = joined[0]["payload"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["peer"], "alice");
    let (got, _) = c.worlds[0].drain_to_close(&mut bob);
    assert_eq!(kinds(&got), ["replaced"]);
    assert_eq!(types(&c.read(0, &mut alice)), ["peer_left", "peer_joined"]);
    assert_eq!(c.store.rooms[&room("r1")].members.len(), 2);
}

/// One step of a script run both on one node and on two.
#[derive(Debug, Clone, Copy)]
enum Act {
    Join(usize),
    Leave(usize),
    Signal(usize, usize),
    Broadcast(usize),
    Kick(usize, usize),
    HostOnly(bool),
}

fn act() -> impl proptest::strategy::Strategy<Value = Act> {
    use proptest::prelude::*;
    let user = 0..USERS;
    prop_oneof![
        3 => user.clone().prop_map(Act::Join),
        1 => user.clone().prop_map(Act::Leave),
        4 => (user.clone(), user.clone()).prop_map(|(a, b)| Act::Signal(a, b)),
        2 => user.clone().prop_map(Act::Broadcast),
        1 => (user.clone(), user).prop_map(|(a, b)| Act::Kick(a, b)),
        1 => any::<bool>().prop_map(Act::HostOnly),
    ]
}

const USERS: usize = 4;

/// The frame of `act` for its actor (user 0 is the host), or `None`.
fn frame_of(act: Act, step: usize) -> (usize, Value) {
    let name = |u: usize| format!("u{u}");
    match act {
        Act::Join(u) => (
            u,
            json!({"type": "join", "room": "r1", "payload": {"peer": name(u)}}),
        ),
        Act::Leave(u) => (u, json!({"type": "leave", "room": "r1"})),
        Act::Signal(u, to) => (
            u,
            json!({"type": "candidate", "room": "r1", "to": name(to), "id": format!("s{step}"), "payload": {"candidate": step}}),
        ),
        Act::Broadcast(u) => (
            u,
            json!({"type": "message", "room": "r1", "payload": {"step": step}}),
        ),
        Act::Kick(u, who) => (
            u,
            json!({"type": "kick", "room": "r1", "payload": {"peer": name(who)}}),
        ),
        Act::HostOnly(on) => {
            let mode = if on { "host_only" } else { "free_for_all" };
            (
                0,
                json!({"type": "mode", "room": "r1", "payload": {"mode": mode}}),
            )
        }
    }
}

/// What a client reads, without what differs between runs by design (session ids, seqs, times).
fn normalized(msgs: Vec<switchboard_protocol::ServerEnvelope>) -> Vec<Value> {
    msgs.into_iter()
        .filter(|m| m.kind != "hello")
        .map(|m| json!([m.kind, m.room, m.from, m.id, m.payload]))
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 64, ..Default::default() })]

    /// The same script on one hub and on two clustered hubs sharing the room: every client reads
    /// the same messages, in the same order, wherever its session is.
    #[test]
    fn two_nodes_answer_every_script_as_one_node_does(
        homes in proptest::collection::vec(0usize..2, USERS),
        script in proptest::collection::vec(act(), 1..60),
    ) {
        let mut one = World::new();
        let mut c = Nodes::new();
        let role = |u: usize| if u == 0 { Role::Host } else { Role::Guest };
        let mut solo: Vec<TestPeer> = (0..USERS).map(|u| one.open(&format!("u{u}"), role(u))).collect();
        let mut spread: Vec<TestPeer> =
            (0..USERS).map(|u| c.open(homes[u], &format!("u{u}"), role(u))).collect();
        for (step, &a) in script.iter().enumerate() {
            let (u, v) = frame_of(a, step);
            let text = one.frame(&mut solo[u], v.clone());
            if let Err(e) = one.send_text(&solo[u], &text) {
                one.hub.reply(&solo[u].at, *e, one.now);
            }
            let n = homes[u];
            if let Act::Join(_) = a {
                c.join_with(n, &mut spread[u], "r1", v);
            } else {
                let w = &mut c.worlds[n];
                let text = w.frame(&mut spread[u], v);
                if let Err(e) = w.send_text(&spread[u], &text) {
                    w.hub.reply(&spread[u].at, *e, w.now);
                }
                c.flush();
            }
            for u in 0..USERS {
                let expected = normalized(one.drain(&mut solo[u]));
                let got = normalized(c.worlds[homes[u]].drain(&mut spread[u]));
                proptest::prop_assert_eq!(got, expected, "u{} after {:?} (step {})", u, a, step);
            }
        }
    }
}

#[test]
fn a_user_replaced_on_its_own_node_keeps_the_members_of_others() {
    let mut c = Nodes::new();
    let mut alice = c.open(0, "alice", Role::Host);
    let mut bob = c.open(1, "bob", Role::Guest);
    c.join(0, &mut alice, "r1");
    c.join(1, &mut bob, "r1");
    c.read(0, &mut alice);
    // The old alice was node 0's only member: the mirror must outlive her for the new one.
    let mut alice2 = c.open(0, "alice", Role::Host);
    let joined = c.join(0, &mut alice2, "r1");
    assert_eq!(joined[0]["payload"]["peers"][0]["peer"], "bob");
    let (got, _) = c.worlds[0].drain_to_close(&mut alice);
    assert_eq!(kinds(&got), ["replaced"]);
    assert_eq!(types(&c.read(1, &mut bob)), ["peer_left", "peer_joined"]);
    assert_eq!(c.store.rooms[&room("r1")].members.len(), 2);
}

/// What the control API does on a node none of whose sessions is in the room: node 0 looks at
/// the room as the store has it, acts, and lets the mirror go in the same call.
fn act_from_outside<R>(c: &mut Nodes, r: &str, act: impl FnOnce(&mut Hub<Sink>, Now) -> R) -> R {
    let rid = room(r);
    let view = c.store.view(&rid);
    let w = &mut c.worlds[0];
    w.hub.look_at(&rid, view, w.now);
    let result = act(&mut w.hub, w.now);
    w.hub.release_mirror(&rid);
    let out = w.outputs();
    assert!(
        !out.events
            .iter()
            .any(|e| matches!(e, Event::RoomOpened { .. })),
        "a node that only looks at a call does not start one"
    );
    c.store.apply(0, out.shared);
    c.flush();
    result
}

#[test]
fn the_servers_actions_from_a_node_with_no_member_reach_every_member() {
    let mut c = Nodes::new();
    let mut a = c.open(1, "a", Role::Host);
    let mut b = c.open(1, "b", Role::Guest);
    let mut d = c.open(1, "d", Role::Guest);
    for p in [&mut a, &mut b, &mut d] {
        c.join(1, p, "r1");
    }
    c.read(1, &mut a);
    c.read(1, &mut b);
    let r1 = room("r1");

    let listed = act_from_outside(&mut c, "r1", |hub, _| hub.participants(&r1));
    let peers: Vec<_> = listed.iter().map(|p| p.info.peer.as_str()).collect();
    assert_eq!(peers, ["a", "b", "d"]);
    assert_eq!(c.worlds[0].hub.room_size(&r1), 0, "the mirror went");

    let reached = act_from_outside(&mut c, "r1", |hub, now| {
        hub.announce(&r1, r#"{"note":1}"#, now)
    });
    assert_eq!(reached, 3);
    for p in [&mut a, &mut b, &mut d] {
        let got = c.read(1, p);
        assert_eq!(types(&got), ["announcement"]);
        assert_eq!(got[0]["payload"]["note"], 1);
    }

    let d_peer = switchboard_protocol::PeerId::parse("d").unwrap();
    act_from_outside(&mut c, "r1", |hub, now| hub.remove_peer(&r1, &d_peer, now)).unwrap();
    assert_eq!(types(&c.read(1, &mut d)), ["left"]);
    assert_eq!(types(&c.read(1, &mut a)), ["peer_left"]);
    assert_eq!(types(&c.read(1, &mut b)), ["peer_left"]);
    assert_eq!(c.worlds[1].hub.room_size(&r1), 2);
    assert_eq!(c.store.rooms[&r1].banned, [Arc::from("d")]);

    // A deletion through node 0 closes the call on node 1: the members leave its mirror too.
    act_from_outside(&mut c, "r1", |hub, now| hub.close_deleted(&r1, now));
    for p in [&mut a, &mut b] {
        let got = c.read(1, p);
        assert_eq!(types(&got), ["room_closed"], "{got:?}");
        assert_eq!(got[0]["payload"]["reason"], "deleted");
    }
    assert!(!c.store.rooms.contains_key(&r1));
    assert_eq!(c.worlds[1].hub.room_size(&r1), 0);
    // And the room opens again as a new call.
    assert_eq!(types(&c.join(1, &mut a, "r1")), ["joined"]);
}

#[test]
fn nothing_in_a_room_nobody_is_in_is_opened_by_looking_at_it() {
    let mut c = Nodes::new();
    let r9 = room("r9");
    let listed = act_from_outside(&mut c, "r9", |hub, _| hub.participants(&r9));
    assert!(listed.is_empty());
    let reached = act_from_outside(&mut c, "r9", |hub, now| hub.announce(&r9, "{}", now));
    assert_eq!(reached, 0);
}

/// A lobby session of `user` for `r1` on node `n`.
fn lobby_guest(c: &mut Nodes, n: usize, user: &str) -> TestPeer {
    let p = c.worlds[n].open_as(crate::Identity {
        lobby: true,
        name: Some(format!("Guest {user}")),
        ..super::super::testkit::identity(user, Role::Guest, "r1")
    });
    c.flush();
    p
}

/// `p` on node `n` knocks on `r1`, under the room's lock as the node runs it: its ticket.
fn knock_on(c: &mut Nodes, n: usize, p: &mut TestPeer) -> String {
    c.join_with(n, p, "r1", json!({"type": "knock", "room": "r1"}));
    let got = c.read(n, p);
    assert_eq!(types(&got), ["knocking"]);
    got[0]["payload"]["ticket"].as_str().unwrap().to_owned()
}

fn answer(kind: &str, ticket: &str) -> Value {
    json!({"type": kind, "room": "r1", "id": "d", "payload": {"ticket": ticket}})
}

#[test]
fn a_guest_knocking_on_one_node_is_let_in_by_a_host_on_the_other() {
    let mut c = Nodes::new();
    let mut ann = c.open(1, "ann", Role::Host);
    let mut bob = c.open(1, "bob", Role::Guest);
    c.join(1, &mut ann, "r1");
    c.join(1, &mut bob, "r1");
    c.read(1, &mut ann);
    let mut gus = lobby_guest(&mut c, 0, "gus");
    let ticket = knock_on(&mut c, 0, &mut gus);
    // The host on the other node hears it; a guest does not.
    let got = c.read(1, &mut ann);
    assert_eq!(types(&got), ["knock"]);
    assert_eq!(got[0]["payload"]["ticket"], ticket);
    assert_eq!(got[0]["payload"]["name"], "Guest gus");
    assert!(c.read(1, &mut bob).is_empty());
    // A host joining on either node later is shown the knock.
    let mut cy = c.open(0, "cy", Role::Host);
    assert_eq!(types(&c.join(0, &mut cy, "r1")), ["joined", "knock"]);
    c.read(1, &mut ann);
    c.read(1, &mut bob);
    let mut dee = c.open(1, "dee", Role::Host);
    assert_eq!(types(&c.join(1, &mut dee, "r1")), ["joined", "knock"]);
    c.read(0, &mut cy);
    c.read(1, &mut ann);
    c.read(1, &mut bob);
    // The guest may not join before it is admitted.
    let early = c.worlds[0].reject(&mut gus, json!({"type": "join", "room": "r1"}));
    assert_eq!(code(&early), "forbidden");

    c.join_with(1, &mut ann, "r1", answer("admit", &ticket));
    let got = c.read(0, &mut gus);
    assert_eq!(types(&got), ["admitted"]);
    assert_eq!(got[0]["payload"]["token"], "token of gus");
    // Every host, on both nodes, learns how it ended; the deciding host's copy answers it.
    let ended = json!({"ticket": ticket, "outcome": "admitted", "by": "ann"});
    for (n, host) in [(1, &mut ann), (0, &mut cy), (1, &mut dee)] {
        let got = c.read(n, host);
        assert_eq!(types(&got), ["knock_ended"], "{got:?}");
        assert_eq!(got[0]["payload"], ended);
    }
    assert!(c.store.knocks[&room("r1")].is_empty());
    // The guest's own node let it in.
    assert_eq!(types(&c.join(0, &mut gus, "r1")), ["joined"]);
    // A second answer finds nothing to answer.
    c.read(1, &mut dee);
    let again = c.worlds[1].reject(&mut dee, answer("deny", &ticket));
    assert_eq!(code(&again), "not_found");
}

#[test]
fn a_guest_denied_on_another_node_or_left_waiting_is_told_once() {
    let config = CoreConfig {
        knock_timeout: std::time::Duration::from_secs(30),
        ..CoreConfig::default()
    };
    let mut c = Nodes::new();
    for (n, w) in c.worlds.iter_mut().enumerate() {
        w.hub = Hub::new(config.clone(), StdRng::seed_from_u64(n as u64 + 7)).clustered();
    }
    let mut ann = c.open(1, "ann", Role::Host);
    c.join(1, &mut ann, "r1");
    let mut gus = lobby_guest(&mut c, 0, "gus");
    let ticket = knock_on(&mut c, 0, &mut gus);
    c.read(1, &mut ann);
    c.join_with(1, &mut ann, "r1", answer("deny", &ticket));
    let got = c.read(0, &mut gus);
    assert_eq!(types(&got), ["denied"]);
    assert_eq!(got[0]["payload"]["reason"], "denied");
    assert_eq!(types(&c.read(1, &mut ann)), ["knock_ended"]);
    // Its node forgot the knock: knocking again is a new knock (the same one would answer with
    // its old ticket).
    let again = knock_on(&mut c, 0, &mut gus);
    assert_ne!(again, ticket);
    c.read(1, &mut ann);
    // Nobody answers: the guest's node tells it, and the hosts of every node.
    c.worlds[0].advance(super::super::testkit::secs(31));
    c.worlds[0].tick();
    c.flush();
    let got = c.read(0, &mut gus);
    assert_eq!(types(&got), ["denied"]);
    assert_eq!(got[0]["payload"]["reason"], "expired");
    let got = c.read(1, &mut ann);
    assert_eq!(types(&got), ["knock_ended"]);
    assert_eq!(got[0]["payload"]["outcome"], "expired");
    assert!(c.store.knocks[&room("r1")].is_empty());
}

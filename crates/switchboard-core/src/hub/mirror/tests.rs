//! Two clustered hubs sharing rooms through a model of the shared store: what peers on different
//! nodes see is what they would see on one.

use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use switchboard_protocol::Role;

use super::super::testkit::{TestPeer, World, code, kinds, message_to, room};
use super::nodes::{Nodes, types};
use crate::{CoreConfig, Hub};

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

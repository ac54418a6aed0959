//! Idle rooms in cluster mode, on two clustered hubs: a room whose members are on both nodes is
//! closed for idleness by the node of its longest-present member, only on the store's word that
//! it is idle on every node.

use std::time::Duration;

use switchboard_protocol::Role;

use super::super::{
    mirror::nodes::{Nodes, types},
    testkit::{TestPeer, room, secs},
};
use crate::CoreConfig;

/// Ann (host) on node 0 and cy on node 1, both in `r1`, rooms idle after 60 s and heartbeats
/// out of the way.
fn ann_and_cy_in_r1() -> (Nodes, TestPeer, TestPeer) {
    let mut c = Nodes::with(CoreConfig {
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let mut ann = c.open(0, "ann", Role::Host);
    let mut cy = c.open(1, "cy", Role::Guest);
    c.join(0, &mut ann, "r1");
    c.join(1, &mut cy, "r1");
    (c, ann, cy)
}

#[test]
fn a_room_on_two_nodes_closes_once_the_store_shows_it_idle_on_both() {
    let (mut c, mut ann, mut cy) = ann_and_cy_in_r1();
    c.read(0, &mut ann);
    c.move_clocks(secs(61));
    // Idle by what node 0 sees; cy's node may know better: node 0 asks, and closes nothing.
    c.worlds[0].tick();
    let out = c.worlds[0].outputs();
    assert_eq!(out.idle, [room("r1")]);
    assert!(out.shared.is_empty());
    assert!(c.read(0, &mut ann).is_empty());
    // Ann joined first: her node decides for the room, cy's does not ask.
    c.worlds[1].tick();
    assert!(c.worlds[1].outputs().idle.is_empty());
    // The store says cy was active 5 s ago: the room lives on, 55 s more.
    c.idle_check(0, "r1", secs(5));
    assert!(c.worlds[0].outputs().shared.is_empty());
    c.move_clocks(secs(54));
    c.worlds[0].tick();
    assert!(c.worlds[0].outputs().idle.is_empty());
    c.move_clocks(Duration::from_millis(1500));
    c.worlds[0].tick();
    assert_eq!(c.worlds[0].outputs().idle, [room("r1")]);
    // Nobody did anything since: it closes, for every member, as on one node.
    c.idle_check(0, "r1", secs(61));
    c.flush();
    for (n, p) in [(0, &mut ann), (1, &mut cy)] {
        let got = c.read(n, p);
        assert_eq!(types(&got), ["room_closed"], "{got:?}");
        assert_eq!(got[0]["payload"]["reason"], "idle");
        assert_eq!(c.worlds[n].hub.room_size(&room("r1")), 0);
    }
    assert!(!c.store.rooms.contains_key(&room("r1")));
}

#[test]
fn a_node_that_gets_no_answer_asks_again() {
    let (mut c, _ann, _cy) = ann_and_cy_in_r1();
    c.move_clocks(secs(61));
    c.worlds[0].tick();
    assert_eq!(c.worlds[0].outputs().idle, [room("r1")]);
    c.move_clocks(secs(9));
    c.worlds[0].tick();
    assert!(c.worlds[0].outputs().idle.is_empty());
    c.move_clocks(secs(1));
    c.worlds[0].tick();
    assert_eq!(c.worlds[0].outputs().idle, [room("r1")]);
    assert_eq!(c.worlds[0].hub.room_size(&room("r1")), 2);
}

#[test]
fn the_node_of_the_longest_present_member_decides_and_no_other_closes_the_room() {
    let (mut c, mut ann, mut cy) = ann_and_cy_in_r1();
    c.move_clocks(secs(61));
    // Even on a view that shows the room idle, cy's node leaves the decision to ann's.
    c.idle_check(1, "r1", secs(61));
    c.flush();
    assert!(c.read(1, &mut cy).is_empty());
    assert_eq!(c.worlds[1].hub.room_size(&room("r1")), 2);
    // Once ann leaves, cy's node decides: the room is all its own, and idle.
    c.send(
        0,
        &mut ann,
        serde_json::json!({"type": "leave", "room": "r1"}),
    );
    c.read(1, &mut cy);
    c.move_clocks(secs(61));
    c.worlds[1].tick();
    c.flush();
    let got = c.read(1, &mut cy);
    assert_eq!(types(&got), ["room_closed"], "{got:?}");
}

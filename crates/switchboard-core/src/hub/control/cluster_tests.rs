//! The control API's actions in cluster mode, on two clustered hubs: a node none of whose
//! sessions is in a room lists, messages, removes and closes it as the store has it.

use std::sync::Arc;

use switchboard_protocol::Role;

use super::super::{
    mirror::nodes::{Nodes, types},
    testkit::{Sink, room},
};
use crate::{Event, Hub, Now};

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

//! An `auto` room spread over two nodes: each node hands the SFU its own members exactly once,
//! whichever node decides a move, and every member hears of each move once.

use serde_json::json;
use switchboard_protocol::{MediaMode, Role};

use super::super::{media_switch::AUTO_MESH_DELAY, testkit::peer_id, testkit::room};
use super::nodes::{Nodes, types};
use crate::{CoreConfig, MediaCommand};

fn auto_nodes() -> Nodes {
    Nodes::with(CoreConfig {
        media_mode: MediaMode::Auto,
        sfu: true,
        ..CoreConfig::default()
    })
}

fn joined(peers: &[&str]) -> Vec<MediaCommand> {
    let to = |p: &&str| MediaCommand::Joined {
        room: room("r1"),
        peer: peer_id(p),
    };
    peers.iter().map(to).collect()
}

fn left(peers: &[&str]) -> Vec<MediaCommand> {
    let to = |p: &&str| MediaCommand::Left {
        room: room("r1"),
        peer: peer_id(p),
    };
    peers.iter().map(to).collect()
}

#[test]
fn a_third_member_on_another_node_moves_everyone_to_the_sfu_and_back() {
    let mut c = auto_nodes();
    let mut alice = c.open(0, "alice", Role::Host);
    let mut bob = c.open(0, "bob", Role::Guest);
    let mut carol = c.open(1, "carol", Role::Guest);
    c.join(0, &mut alice, "r1");
    c.join(0, &mut bob, "r1");
    c.read(0, &mut alice);
    let got = c.join(1, &mut carol, "r1");
    assert_eq!(types(&got), ["joined"]);
    assert_eq!(got[0]["payload"]["media"], "sfu");
    for p in [&mut alice, &mut bob] {
        let got = c.read(0, p);
        assert_eq!(types(&got), ["peer_joined", "media_changed"], "{got:?}");
        assert_eq!(got[1]["payload"]["media"], "sfu");
    }
    // Each node hands its own members, once: the joiner's decided, the other followed.
    assert_eq!(c.media[1], joined(&["carol"]));
    assert_eq!(c.media[0], joined(&["alice", "bob"]));

    // A member of the node that followed talks to the SFU through its own node.
    let offer = json!({"type": "offer", "room": "r1", "to": "sfu", "payload": {"type": "offer", "sdp": "v=0\r\n"}});
    c.send(0, &mut alice, offer);
    assert!(matches!(
        c.media[0].last(),
        Some(MediaCommand::Signal { .. })
    ));

    // Down to two: the node of the first member (alice's) moves the room back, a little later.
    c.media = Default::default();
    c.send(1, &mut carol, json!({"type": "leave", "room": "r1"}));
    assert_eq!(c.media[1], left(&["carol"]));
    c.advance(AUTO_MESH_DELAY);
    assert_eq!(c.media[0], left(&["alice", "bob"]));
    assert_eq!(c.media[1], left(&["carol"]));
    for p in [&mut alice, &mut bob] {
        let got = c.read(0, p);
        assert_eq!(types(&got), ["peer_left", "media_changed"], "{got:?}");
        assert_eq!(got[1]["payload"]["media"], "mesh");
    }
}

#[test]
fn the_first_members_node_decides_the_move_back_and_the_others_follow() {
    let mut c = auto_nodes();
    let mut carol = c.open(1, "carol", Role::Guest);
    let mut alice = c.open(0, "alice", Role::Host);
    let mut bob = c.open(0, "bob", Role::Guest);
    c.join(1, &mut carol, "r1");
    c.join(0, &mut alice, "r1");
    let got = c.join(0, &mut bob, "r1");
    assert_eq!(got[0]["payload"]["media"], "sfu");
    assert_eq!(c.media[0], joined(&["alice", "bob"]));
    assert_eq!(c.media[1], joined(&["carol"]));
    let got = c.read(1, &mut carol);
    assert_eq!(types(&got), ["peer_joined", "peer_joined", "media_changed"]);

    c.media = Default::default();
    c.send(0, &mut bob, json!({"type": "leave", "room": "r1"}));
    c.read(0, &mut alice);
    c.read(1, &mut carol);
    c.advance(AUTO_MESH_DELAY);
    // Carol's node decided (she joined first); alice's followed on its notice; bob's own leave
    // was handed by his node.
    assert_eq!(c.media[1], left(&["carol"]));
    assert_eq!(c.media[0], left(&["bob", "alice"]));
    for (n, p) in [(0, &mut alice), (1, &mut carol)] {
        let got = c.read(n, p);
        assert_eq!(types(&got), ["media_changed"], "{got:?}");
        assert_eq!(got[0]["payload"]["media"], "mesh");
    }
    // A third member again: its node hands its own members, the other follows.
    let mut dave = c.open(1, "dave", Role::Guest);
    c.join(1, &mut dave, "r1");
    assert_eq!(
        c.media[1],
        [left(&["carol"]), joined(&["carol", "dave"])].concat()
    );
    assert_eq!(
        c.media[0],
        [left(&["bob", "alice"]), joined(&["alice"])].concat()
    );
}

#[test]
fn a_hosts_set_media_holds_on_every_node_and_for_a_node_joining_later() {
    let mut c = auto_nodes();
    let mut alice = c.open(0, "alice", Role::Host);
    let mut bob = c.open(0, "bob", Role::Guest);
    c.join(0, &mut alice, "r1");
    c.join(0, &mut bob, "r1");
    c.read(0, &mut alice);
    let set = json!({"type": "set_media", "room": "r1", "payload": {"media": "sfu"}});
    c.send(0, &mut alice, set);
    for p in [&mut alice, &mut bob] {
        let got = c.read(0, p);
        assert_eq!(types(&got), ["media_changed"], "{got:?}");
        assert_eq!(got[0]["payload"]["by"], "alice");
    }
    assert_eq!(c.media[0], joined(&["alice", "bob"]));
    assert_eq!(c.store.rooms[&room("r1")].media_mode, Some(MediaMode::Sfu));

    // A node none of whose members was in the room when the host set it reads the setting from
    // the store: the joiner is told the room's media, and nobody hears of a move.
    let mut carol = c.open(1, "carol", Role::Guest);
    let got = c.join(1, &mut carol, "r1");
    assert_eq!(got[0]["payload"]["media"], "sfu");
    assert_eq!(got[0]["payload"]["media_mode"], "sfu");
    assert_eq!(c.media[1], joined(&["carol"]));
    for p in [&mut alice, &mut bob] {
        assert_eq!(types(&c.read(0, p)), ["peer_joined"]);
    }
    // Back to mesh from the other node: everyone moves, each node handing its own.
    c.send(1, &mut carol, json!({"type": "leave", "room": "r1"}));
    let mut dave = c.open(1, "dave", Role::Host);
    c.join(1, &mut dave, "r1");
    c.media = Default::default();
    let set = json!({"type": "set_media", "room": "r1", "payload": {"media": "mesh"}});
    c.send(1, &mut dave, set);
    assert_eq!(c.media[1], left(&["dave"]));
    assert_eq!(c.media[0], left(&["alice", "bob"]));
    for p in [&mut alice, &mut bob] {
        let got = c.read(0, p);
        assert_eq!(got.last().unwrap()["payload"]["media"], "mesh", "{got:?}");
    }
}

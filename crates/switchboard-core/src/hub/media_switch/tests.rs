//! Tests of media modes: an `auto` room goes to the SFU at its third member and back to mesh a
//! little after it is two again; a host's `set_media`; a server without an SFU stays mesh.

use serde_json::json;
use switchboard_protocol::{MediaMode, Role};

use super::AUTO_MESH_DELAY;
use crate::{
    CoreConfig, MediaCommand,
    hub::testkit::{World, code, kinds, pair, peer_id, room, secs},
};

fn auto_world(sfu: bool) -> World {
    World::with(CoreConfig {
        media_mode: MediaMode::Auto,
        sfu,
        ..CoreConfig::default()
    })
}

fn joined_to_sfu(peers: &[&str]) -> Vec<MediaCommand> {
    let to = |p: &&str| MediaCommand::Joined {
        room: room("r1"),
        peer: peer_id(p),
    };
    peers.iter().map(to).collect()
}

fn left_sfu(peers: &[&str]) -> Vec<MediaCommand> {
    let to = |p: &&str| MediaCommand::Left {
        room: room("r1"),
        peer: peer_id(p),
    };
    peers.iter().map(to).collect()
}

fn set_media(media: &str) -> serde_json::Value {
    json!({"type": "set_media", "room": "r1", "id": "m1", "payload": {"media": media}})
}

#[test]
fn auto_moves_to_the_sfu_at_the_third_member_and_back_after_the_delay() {
    let mut w = auto_world(true);
    let (mut alice, mut bob) = pair(&mut w);
    w.drain(&mut bob);
    assert!(w.outputs().media.is_empty(), "two members: mesh");

    let mut carol = w.open("carol", Role::Guest);
    let joined = w.join(&mut carol, "r1");
    assert_eq!(
        joined.payload["media"], "sfu",
        "the joiner learns it in joined"
    );
    assert_eq!(joined.payload["media_mode"], "auto");
    assert_eq!(w.outputs().media, joined_to_sfu(&["alice", "bob", "carol"]));
    for p in [&mut alice, &mut bob] {
        let got = w.drain(p);
        assert_eq!(
            kinds(&got),
            ["peer_joined", "media_changed"],
            "after the join"
        );
        assert_eq!(
            got[1].payload,
            json!({"media": "sfu", "media_mode": "auto"})
        );
    }
    w.assert_quiet(&mut carol);

    // Down to two: still on the SFU until the delay has passed.
    w.send(&mut carol, json!({"type": "leave", "room": "r1"}));
    assert_eq!(w.outputs().media, left_sfu(&["carol"]));
    w.advance(AUTO_MESH_DELAY - secs(1));
    w.tick();
    assert!(w.outputs().media.is_empty());
    assert_eq!(kinds(&w.drain(&mut alice)), ["peer_left"]);
    w.advance(secs(1));
    w.tick();
    assert_eq!(w.outputs().media, left_sfu(&["alice", "bob"]));
    for p in [&mut alice, &mut bob] {
        let got = w.drain(p);
        let changed: Vec<_> = got.iter().filter(|m| m.kind == "media_changed").collect();
        assert_eq!(changed.len(), 1);
        assert_eq!(
            changed[0].payload,
            json!({"media": "mesh", "media_mode": "auto"})
        );
    }
    let mut dave = w.open("dave", Role::Guest);
    assert_eq!(
        w.join(&mut dave, "r1").payload["media"],
        "sfu",
        "three again"
    );
}

#[test]
fn a_member_reloading_its_page_moves_nobodys_media() {
    let mut w = auto_world(true);
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    w.join(&mut carol, "r1");
    w.outputs();
    w.drain(&mut alice);
    w.drain(&mut bob);
    // Carol's new session (same user) replaces the old one: it leaves, then joins.
    let mut carol2 = w.open("carol", Role::Guest);
    assert_eq!(w.join(&mut carol2, "r1").payload["media"], "sfu");
    assert_eq!(
        w.outputs().media,
        [left_sfu(&["carol"]), joined_to_sfu(&["carol"])].concat()
    );
    w.advance(AUTO_MESH_DELAY * 2);
    w.tick();
    assert!(w.outputs().media.is_empty(), "never went back to mesh");
    let seen = w.drain(&mut alice);
    assert!(
        !kinds(&seen).contains(&"media_changed"),
        "{:?}",
        kinds(&seen)
    );
}

#[test]
fn without_an_sfu_auto_stays_mesh_and_set_media_sfu_is_refused() {
    let mut w = auto_world(false);
    let (mut alice, _bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    let joined = w.join(&mut carol, "r1");
    assert_eq!(joined.payload["media"], "mesh");
    assert_eq!(joined.payload["media_mode"], "auto");
    assert!(w.outputs().media.is_empty());
    assert_eq!(
        kinds(&w.drain(&mut alice)),
        ["peer_joined"],
        "nothing moves"
    );
    let refused = w.reject(&mut alice, set_media("sfu"));
    assert_eq!(code(&refused), "media_unavailable");
    assert_eq!(refused.id.as_deref(), Some("m1"));
    w.send(&mut alice, set_media("mesh"));
    let changed = w.drain(&mut alice);
    assert_eq!(changed[0].payload["media_mode"], "mesh");
    w.send(&mut alice, set_media("auto"));
    assert_eq!(
        w.drain(&mut alice)[0].payload["media"],
        "mesh",
        "auto without an SFU"
    );
}

#[test]
fn a_host_sets_the_media_at_once_and_everyone_is_told_once() {
    let mut w = auto_world(true);
    let (mut alice, mut bob) = pair(&mut w);
    w.drain(&mut bob);
    assert_eq!(code(&w.reject(&mut bob, set_media("sfu"))), "forbidden");

    w.send(&mut alice, set_media("sfu"));
    assert_eq!(w.outputs().media, joined_to_sfu(&["alice", "bob"]));
    let to_alice = w.drain(&mut alice);
    assert_eq!(kinds(&to_alice), ["media_changed"]);
    assert_eq!(to_alice[0].id.as_deref(), Some("m1"), "the answer");
    assert_eq!(
        to_alice[0].payload,
        json!({"media": "sfu", "media_mode": "sfu", "by": "alice"})
    );
    let to_bob = w.drain(&mut bob);
    assert_eq!(to_bob[0].payload, to_alice[0].payload);
    assert_eq!(to_bob[0].id, None);

    // The same setting again: only the sender hears, as its answer.
    w.send(&mut alice, set_media("sfu"));
    assert_eq!(kinds(&w.drain(&mut alice)), ["media_changed"]);
    w.assert_quiet(&mut bob);

    // Back to mesh: no delay for a host's choice.
    w.send(&mut alice, set_media("mesh"));
    assert_eq!(w.outputs().media, left_sfu(&["alice", "bob"]));
    assert_eq!(w.drain(&mut bob)[0].payload["media"], "mesh");
    let offer = json!({"type": "offer", "room": "r1", "to": "sfu", "payload": {"type": "offer", "sdp": "v=0\r\n"}});
    assert_eq!(code(&w.reject(&mut bob, offer)), "unknown_peer");

    // `auto` with two members: the setting changes, the media stays.
    w.drain(&mut alice);
    w.send(&mut alice, set_media("auto"));
    assert!(w.outputs().media.is_empty());
    assert_eq!(
        w.drain(&mut bob)[0].payload,
        json!({"media": "mesh", "media_mode": "auto", "by": "alice"})
    );
}

#[test]
fn a_room_replaced_under_its_last_member_keeps_its_setting() {
    let mut w = auto_world(true);
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    w.send(&mut alice, set_media("sfu"));
    let mut alice2 = w.open("alice", Role::Host);
    let joined = w.join(&mut alice2, "r1");
    assert_eq!(joined.payload["media_mode"], "sfu");
    assert_eq!(joined.payload["media"], "sfu");
}

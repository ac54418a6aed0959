//! Tests of SFU rooms: joins, leaves and messages to `sfu` become media commands under the usual
//! rules; the SFU's messages reach members `from: "sfu"`; mesh rooms are untouched.

use serde_json::json;
use switchboard_protocol::{ErrorCode, MediaMode, Role, SignalKind};

use crate::{
    CoreConfig, MediaCommand,
    hub::testkit::{World, code, kinds, pair, peer_id, room},
};

fn sfu_world() -> World {
    World::with(CoreConfig {
        media_mode: MediaMode::Sfu,
        ..CoreConfig::default()
    })
}

fn offer_to_sfu() -> serde_json::Value {
    json!({"type": "offer", "room": "r1", "to": "sfu", "payload": {"type": "offer", "sdp": "v=0\r\n"}})
}

#[test]
fn joins_leaves_and_signals_to_sfu_become_media_commands_in_order() {
    let mut w = sfu_world();
    let (mut alice, mut bob) = pair(&mut w);
    assert_eq!(
        w.outputs().media,
        [
            MediaCommand::Joined {
                room: room("r1"),
                peer: peer_id("alice")
            },
            MediaCommand::Joined {
                room: room("r1"),
                peer: peer_id("bob")
            },
        ]
    );
    w.send(&mut alice, offer_to_sfu());
    w.send(
        &mut alice,
        json!({"type": "candidate", "room": "r1", "to": "sfu", "payload": {"candidate": ""}}),
    );
    w.send(
        &mut bob,
        json!({"type": "subscribe", "room": "r1", "payload": {"tracks": ["t1"], "subscribe": false}}),
    );
    w.send(&mut bob, json!({"type": "leave", "room": "r1"}));
    assert_eq!(
        w.outputs().media,
        [
            MediaCommand::Signal {
                room: room("r1"),
                peer: peer_id("alice"),
                kind: SignalKind::Offer,
                payload: r#"{"sdp":"v=0\r\n","type":"offer"}"#.into(),
            },
            MediaCommand::Signal {
                room: room("r1"),
                peer: peer_id("alice"),
                kind: SignalKind::Candidate,
                payload: r#"{"candidate":""}"#.into(),
            },
            MediaCommand::Subscribe {
                room: room("r1"),
                peer: peer_id("bob"),
                tracks: vec!["t1".into()],
                subscribe: false,
                view: None,
            },
            MediaCommand::Left {
                room: room("r1"),
                peer: peer_id("bob")
            },
        ]
    );
    assert!(
        w.drain(&mut alice).iter().all(|m| m.kind == "peer_left"),
        "nothing relayed"
    );
}

#[test]
fn mute_goes_to_the_sfu_with_the_senders_role() {
    let mut w = sfu_world();
    // Alice is a host, bob a guest; the SFU decides whose track each may mute.
    let (mut alice, mut bob) = pair(&mut w);
    w.outputs();
    let mute =
        |muted| json!({"type": "mute", "room": "r1", "payload": {"track": "t1", "muted": muted}});
    w.send(&mut alice, mute(true));
    w.send(&mut bob, mute(false));
    assert_eq!(
        w.outputs().media,
        [
            MediaCommand::Mute {
                room: room("r1"),
                peer: peer_id("alice"),
                track: "t1".into(),
                muted: true,
                host: true,
            },
            MediaCommand::Mute {
                room: room("r1"),
                peer: peer_id("bob"),
                track: "t1".into(),
                muted: false,
                host: false,
            },
        ]
    );
    let mut eve = w.open("eve", Role::Guest);
    assert_eq!(code(&w.reject(&mut eve, mute(true))), "not_in_room");
    let no_track = json!({"type": "mute", "room": "r1", "payload": {"muted": true}});
    assert_eq!(code(&w.reject(&mut alice, no_track)), "invalid_message");
    assert!(w.outputs().media.is_empty());
}

#[test]
fn joined_tells_the_media_mode() {
    let mut w = sfu_world();
    let mut alice = w.open("alice", Role::Host);
    assert_eq!(w.join(&mut alice, "r1").payload["media"], "sfu");
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    assert_eq!(w.join(&mut alice, "r1").payload["media"], "mesh");
}

#[test]
fn the_sfu_peer_id_is_reserved_and_absent_from_mesh_rooms() {
    let mut w = World::new();
    let mut mallory = w.open("mallory", Role::Guest);
    let e = w.reject(
        &mut mallory,
        json!({"type": "join", "room": "r1", "payload": {"peer": "sfu"}}),
    );
    assert_eq!(code(&e), "invalid_message");

    let (mut alice, _bob) = pair(&mut w);
    let e = w.reject(&mut alice, offer_to_sfu());
    assert_eq!(code(&e), "unknown_peer");
    let subscribe =
        json!({"type": "subscribe", "room": "r1", "payload": {"tracks": [], "subscribe": true}});
    assert_eq!(code(&w.reject(&mut alice, subscribe)), "unknown_peer");
    let mute = json!({"type": "mute", "room": "r1", "payload": {"track": "t1", "muted": true}});
    assert_eq!(code(&w.reject(&mut alice, mute)), "unknown_peer");
    assert!(
        w.outputs().media.is_empty(),
        "mesh rooms hand the SFU nothing"
    );
}

#[test]
fn messages_to_sfu_follow_the_room_rules() {
    let mut w = sfu_world();
    let (mut alice, _bob) = pair(&mut w);
    let mut eve = w.open("eve", Role::Guest);
    w.outputs();
    assert_eq!(code(&w.reject(&mut eve, offer_to_sfu())), "not_in_room");
    let call =
        json!({"type": "call_start", "room": "r1", "to": "sfu", "payload": {"call_id": "c"}});
    assert_eq!(code(&w.reject(&mut alice, call)), "invalid_message");
    let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let subscribe =
        json!({"type": "subscribe", "room": "r1", "payload": {"tracks": many, "subscribe": true}});
    assert_eq!(code(&w.reject(&mut alice, subscribe)), "payload_too_large");
    assert!(w.outputs().media.is_empty());
}

#[test]
fn the_sfus_messages_reach_members_from_sfu() {
    let mut w = sfu_world();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub
        .media_message("r1", "alice", None, "track_map", r#"{"mids":[]}"#, w.now);
    w.hub.media_error(
        "r1",
        "bob",
        None,
        ErrorCode::BadSdp,
        "offer: no m-lines".into(),
        w.now,
    );
    // Not members, or not an SFU room: dropped.
    w.hub
        .media_message("r1", "carol", None, "track_map", "{}", w.now);
    w.hub
        .media_message("r2", "alice", None, "track_map", "{}", w.now);

    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["track_map"]);
    assert_eq!(got[0].from.as_deref(), Some("sfu"));
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(got[0].payload, json!({"mids": []}));
    let got = w.drain(&mut bob);
    assert_eq!(code(&got[0]), "bad_sdp");
    assert_eq!(got[0].room.as_deref(), Some("r1"));
}

#[test]
fn a_closing_room_tells_the_sfu_every_member_left() {
    let mut w = sfu_world();
    let (_alice, _bob) = pair(&mut w);
    w.outputs();
    w.hub.shutdown(w.now);
    let left: Vec<_> = w
        .outputs()
        .media
        .into_iter()
        .filter(|c| matches!(c, MediaCommand::Left { .. }))
        .collect();
    assert_eq!(left.len(), 2);
}

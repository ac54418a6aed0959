//! Tests of relaying and the host's actions: a targeted message reaches only its target, a
//! broadcast every other member, nothing crosses rooms; `host_only` mode and who may change the
//! mode; `kick` and the ban it leaves.

use serde_json::{Value, json};
use switchboard_protocol::{Mode, Role};

use crate::{
    Event,
    hub::testkit::{World, code, decode, identity, kinds, message_to, pair, room, trio},
};

// ---------------------------------------------------------------------------------------------
// relay
// ---------------------------------------------------------------------------------------------

#[test]
fn targeted_messages_reach_only_to_with_from_set_and_payload_and_id_verbatim() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    let cases = [
        (
            "offer",
            r#"{"sdp":"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n", "extra" : [1, 2.50, "\u00e9"]}"#,
        ),
        ("answer", r#"{ "sdp" : "v=0\r\n" }"#),
        (
            "candidate",
            r#"{"candidate":"candidate:1 1 udp 2122260223 10.0.0.1 54400 typ host","sdp_mid":"0","sdp_m_line_index":0,"username_fragment":"abcd"}"#,
        ),
        ("candidate", r#"{"candidate":""}"#),
        ("call_start", r#"{"call_id":"c-1"}"#),
        ("call_end", r#"{"call_id":"c-1","reason":"hangup"}"#),
        ("message", r#"{"text":"hi","n":1e3,"nested":{"a":[]}}"#),
    ];
    for (i, (kind, payload)) in cases.into_iter().enumerate() {
        let id = format!("id-{i}");
        let text = format!(
            r#"{{"type":"{kind}","room":"r1","seq":{},"ts":{},"to":"bob","id":"{id}","payload":{payload}}}"#,
            alice.next_seq, w.now.unix_ms
        );
        alice.next_seq += 1;
        w.send_text(&alice, &text)
            .unwrap_or_else(|e| panic!("{kind}: {}", e.encode(0, 0)));
        let raw = w.drain_raw(&mut bob);
        assert_eq!(raw.len(), 1, "{kind}: {raw:?}");
        assert!(
            raw[0].ends_with(&format!(r#","id":"{id}","payload":{payload}}}"#)),
            "{kind}: payload not relayed verbatim: {}",
            raw[0]
        );
        let sent: Value = serde_json::from_str(&raw[0]).unwrap();
        assert!(
            sent.get("to").is_none(),
            "server messages carry no `to`: {}",
            raw[0]
        );
        let env = decode(&raw[0]);
        assert_eq!(env.kind, kind);
        assert_eq!(env.room.as_deref(), Some("r1"));
        assert_eq!(env.from.as_deref(), Some("alice"));
        assert_eq!(env.id.as_deref(), Some(id.as_str()));
        assert_eq!(env.ts, w.now.unix_ms);
        w.assert_quiet(&mut alice);
        w.assert_quiet(&mut carol);
    }
}

#[test]
fn broadcast_message_reaches_all_others_but_not_the_sender() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(
        &mut bob,
        json!({"type": "message", "room": "r1", "id": "all", "payload": {"chat": "hello all"}}),
    );
    for other in [&mut alice, &mut carol] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["message"]);
        assert_eq!(got[0].from.as_deref(), Some("bob"));
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].id.as_deref(), Some("all"));
        assert_eq!(got[0].payload, json!({"chat": "hello all"}));
    }
    w.assert_quiet(&mut bob);
    assert!(w.events().contains(&Event::Relayed {
        kind: "message",
        recipients: 2
    }));
    // Each recipient gets the payload byte for byte, and no `to`.
    let payload = r#"{"kind":"chat", "text" : "hi all","at":[1, 2.50]}"#;
    let text = format!(
        r#"{{"type":"message","room":"r1","seq":{},"ts":{},"id":"bc-1","payload":{payload}}}"#,
        bob.next_seq, w.now.unix_ms
    );
    bob.next_seq += 1;
    w.send_text(&bob, &text)
        .unwrap_or_else(|e| panic!("{}", e.encode(0, 0)));
    for other in [&mut alice, &mut carol] {
        let raw = w.drain_raw(other);
        assert_eq!(raw.len(), 1, "{raw:?}");
        assert!(
            raw[0].ends_with(&format!(r#","id":"bc-1","payload":{payload}}}"#)),
            "payload not relayed verbatim: {}",
            raw[0]
        );
        let sent: Value = serde_json::from_str(&raw[0]).unwrap();
        assert!(
            sent.get("to").is_none(),
            "a broadcast names no `to`: {}",
            raw[0]
        );
        assert_eq!(sent["from"], "bob");
    }
    w.assert_quiet(&mut bob);
}

#[test]
fn nothing_crosses_rooms() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Host);
    w.join(&mut carol, "r2");
    // Naming a room carol is not in.
    let e = w.reject(
        &mut carol,
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "not_in_room");
    assert_eq!(e.room.as_deref(), Some("r1"));
    // Naming a peer that is only in another room.
    let e = w.reject(
        &mut carol,
        json!({"type": "offer", "room": "r2", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "unknown_peer");
    // A broadcast in r2 stays in r2.
    w.send(
        &mut carol,
        json!({"type": "message", "room": "r2", "payload": {"x": 1}}),
    );
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut bob);
    assert!(w.events().contains(&Event::Relayed {
        kind: "message",
        recipients: 0
    }));
    // And the other way round.
    let e = w.reject(&mut alice, message_to("carol", "x"));
    assert_eq!(code(&e), "unknown_peer");
    w.assert_quiet(&mut carol);
}

#[test]
fn a_member_of_two_rooms_hears_and_speaks_in_each_apart() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    w.join(&mut alice, "r2");
    let mut bob = w.open_as(identity("bob", Role::Guest, "r1"));
    w.join(&mut bob, "r1");
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["peer_joined"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    let mut carol = w.open_as(identity("carol", Role::Guest, "r2"));
    let joined = w.join(&mut carol, "r2");
    assert_eq!(
        joined.payload["peers"],
        json!([{"peer": "alice", "role": "host", "meta": null}]),
        "r2 lists only its own members"
    );
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["peer_joined"]);
    assert_eq!(got[0].room.as_deref(), Some("r2"));
    assert_eq!(got[0].payload["peer"], "carol");
    w.assert_quiet(&mut bob);

    // A broadcast stays in the room it names.
    w.send(
        &mut alice,
        json!({"type": "message", "room": "r1", "payload": {"text": "r1 only"}}),
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["message"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    w.assert_quiet(&mut carol);
    w.send(
        &mut alice,
        json!({"type": "message", "room": "r2", "payload": {"text": "r2 only"}}),
    );
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["message"]);
    assert_eq!(got[0].room.as_deref(), Some("r2"));
    assert_eq!(got[0].payload, json!({"text": "r2 only"}));
    w.assert_quiet(&mut bob);

    // Bob and carol share no room: each is unknown in the other's, and a room one is not in is
    // refused as such.
    let offer = |room: &str, to: &str| json!({"type": "offer", "room": room, "to": to, "payload": {"sdp": "v=0"}});
    let e = w.reject(&mut carol, offer("r2", "bob"));
    assert_eq!(code(&e), "unknown_peer");
    let e = w.reject(&mut carol, offer("r1", "bob"));
    assert_eq!(code(&e), "not_in_room");
    let e = w.reject(&mut bob, offer("r1", "carol"));
    assert_eq!(code(&e), "unknown_peer");

    // Alice reaches carol in r2, and the relay is tagged with r2.
    w.send(&mut alice, offer("r2", "carol"));
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["offer"]);
    assert_eq!(got[0].room.as_deref(), Some("r2"));

    // Membership news stays in its room too.
    w.send(&mut bob, json!({"type": "leave", "room": "r1"}));
    assert_eq!(kinds(&w.drain(&mut bob)), ["left"]);
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    w.assert_quiet(&mut carol);
}

#[test]
fn every_room_message_of_a_non_member_is_not_in_room_and_to_one_unknown_peer() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    // A host, so that `mode` and `kick` are refused for the room and not for the role.
    let mut carol = w.open("carol", Role::Host);
    for (kind, to, payload) in [
        ("offer", Some("alice"), json!({"sdp": "v=0"})),
        ("answer", Some("alice"), json!({"sdp": "v=0"})),
        ("candidate", Some("alice"), json!({"candidate": ""})),
        ("call_start", Some("alice"), json!({"call_id": "c"})),
        ("call_end", Some("alice"), json!({"call_id": "c"})),
        ("message", Some("alice"), json!({})),
        ("message", None, json!({})),
        ("mode", None, json!({"mode": "host_only"})),
        ("kick", None, json!({"peer": "alice"})),
    ] {
        let mut frame = json!({"type": kind, "room": "r1", "id": kind, "payload": payload});
        if let Some(to) = to {
            frame["to"] = to.into();
        }
        let e = w.reject(&mut carol, frame);
        assert_eq!(code(&e), "not_in_room", "{kind}");
        assert_eq!(e.id.as_deref(), Some(kind));
        assert_eq!(e.room.as_deref(), Some("r1"));
    }
    w.assert_quiet(&mut alice);

    for (kind, payload) in [
        ("offer", json!({"sdp": "v=0"})),
        ("candidate", json!({"candidate": ""})),
        ("message", json!({})),
    ] {
        let e = w.reject(
            &mut bob,
            json!({"type": kind, "room": "r1", "to": "ghost", "id": kind, "payload": payload}),
        );
        assert_eq!(code(&e), "unknown_peer", "{kind}");
        assert_eq!(e.id.as_deref(), Some(kind));
        assert_eq!(e.room.as_deref(), Some("r1"));
    }
    let e = w.reject(
        &mut alice,
        json!({"type": "kick", "room": "r1", "id": "kick-ghost", "payload": {"peer": "ghost"}}),
    );
    assert_eq!(code(&e), "unknown_peer");
    assert_eq!(e.id.as_deref(), Some("kick-ghost"));
    w.assert_quiet(&mut bob);
}

#[test]
fn unknown_target_is_unknown_peer() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(&mut alice, message_to("nobody", "q"));
    assert_eq!(code(&e), "unknown_peer");
    assert_eq!(e.id.as_deref(), Some("q"));
    assert_eq!(e.payload["type"], "message");
    w.assert_quiet(&mut bob);
}

#[test]
fn sending_to_yourself_is_invalid_message() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(
        &mut alice,
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    w.assert_quiet(&mut bob);
}

// ---------------------------------------------------------------------------------------------
// mode
// ---------------------------------------------------------------------------------------------

#[test]
fn free_for_all_is_the_default_mode() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(&mut carol, json!({"type": "leave", "room": "r1"}));
    w.drain(&mut carol);
    w.drain(&mut alice);
    w.drain(&mut bob);
    let joined = w.join(&mut carol, "r1");
    assert_eq!(joined.payload["mode"], "free_for_all");
    w.drain(&mut alice);
    w.drain(&mut bob);
    // Guest to guest, and a guest broadcast.
    w.send(&mut bob, message_to("carol", "g2g"));
    assert_eq!(kinds(&w.drain(&mut carol)), ["message"]);
    w.send(
        &mut bob,
        json!({"type": "message", "room": "r1", "payload": {}}),
    );
    assert_eq!(kinds(&w.drain(&mut carol)), ["message"]);
    assert_eq!(kinds(&w.drain(&mut alice)), ["message"]);
}

#[test]
fn host_only_limits_guests_to_the_host_and_forbids_their_broadcasts() {
    let mut w = World::new();
    let (mut host, mut g1, mut g2) = trio(&mut w);
    w.send(
        &mut host,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    for p in [&mut host, &mut g1, &mut g2] {
        assert_eq!(kinds(&w.drain(p)), ["mode_changed"]);
    }
    // Guest to guest: forbidden, nothing relayed.
    let e = w.reject(
        &mut g1,
        json!({"type": "offer", "room": "r1", "to": "carol", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.room.as_deref(), Some("r1"));
    w.assert_quiet(&mut g2);
    for (kind, payload) in [
        ("candidate", json!({"candidate": ""})),
        ("call_start", json!({"call_id": "c1"})),
        ("message", json!({"t": 2})),
    ] {
        let e = w.reject(
            &mut g1,
            json!({"type": kind, "room": "r1", "to": "carol", "payload": payload}),
        );
        assert_eq!(code(&e), "forbidden", "{kind}");
        assert_eq!(e.room.as_deref(), Some("r1"));
    }
    w.assert_quiet(&mut g2);
    // Guest broadcast: forbidden.
    let e = w.reject(
        &mut g1,
        json!({"type": "message", "room": "r1", "payload": {"x": 1}}),
    );
    assert_eq!(code(&e), "forbidden");
    w.assert_quiet(&mut g2);
    w.assert_quiet(&mut host);
    // Guest to host: allowed.
    w.send(
        &mut g1,
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    let got = w.drain(&mut host);
    assert_eq!(kinds(&got), ["offer"]);
    assert_eq!(got[0].from.as_deref(), Some("bob"));
    // Host to guest and host broadcast: allowed.
    w.send(
        &mut host,
        json!({"type": "answer", "room": "r1", "to": "bob", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(kinds(&w.drain(&mut g1)), ["answer"]);
    w.assert_quiet(&mut g2);
    w.send(
        &mut host,
        json!({"type": "message", "room": "r1", "payload": {"x": 2}}),
    );
    assert_eq!(kinds(&w.drain(&mut g1)), ["message"]);
    assert_eq!(kinds(&w.drain(&mut g2)), ["message"]);
    // Back to free_for_all: guest to guest works again.
    w.send(
        &mut host,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "free_for_all"}}),
    );
    for p in [&mut host, &mut g1, &mut g2] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["mode_changed"]);
        assert_eq!(got[0].payload["mode"], "free_for_all");
    }
    w.send(
        &mut g1,
        json!({"type": "offer", "room": "r1", "to": "carol", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(kinds(&w.drain(&mut g2)), ["offer"]);
}

#[test]
fn a_room_that_empties_forgets_its_mode() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.send(
        &mut alice,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    assert_eq!(kinds(&w.drain(&mut bob)), ["mode_changed"]);
    w.send(&mut bob, json!({"type": "leave", "room": "r1"}));
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    w.drain(&mut alice);
    w.drain(&mut bob);
    let joined = w.join(&mut bob, "r1");
    assert_eq!(joined.payload["mode"], "free_for_all");
}

#[test]
fn mode_by_a_guest_is_forbidden() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(
        &mut bob,
        json!({"type": "mode", "room": "r1", "id": "m", "payload": {"mode": "host_only"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("m"));
    w.assert_quiet(&mut alice);
    // The mode did not change.
    let mut carol = w.open("carol", Role::Guest);
    assert_eq!(w.join(&mut carol, "r1").payload["mode"], "free_for_all");
    // Not being in the room is reported as such, before the role.
    let mut dave = w.open("dave", Role::Host);
    let e = w.reject(
        &mut dave,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    assert_eq!(code(&e), "not_in_room");
}

#[test]
fn mode_by_host_is_announced_to_all_members_with_id_echoed_only_to_the_host() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.events();
    w.send(
        &mut alice,
        json!({"type": "mode", "room": "r1", "id": "m-1", "payload": {"mode": "host_only"}}),
    );
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["mode_changed"]);
    assert_eq!(got[0].id.as_deref(), Some("m-1"));
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(got[0].payload, json!({"mode": "host_only", "by": "alice"}));
    for p in [&mut bob, &mut carol] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["mode_changed"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].id, None);
        assert_eq!(got[0].payload, json!({"mode": "host_only", "by": "alice"}));
    }
    assert_eq!(
        w.events(),
        [
            Event::ModeChanged {
                room: room("r1"),
                mode: Mode::HostOnly
            },
            Event::Received { kind: "mode" }
        ]
    );
    // A newcomer sees the current mode.
    let mut dave = w.open("dave", Role::Guest);
    assert_eq!(w.join(&mut dave, "r1").payload["mode"], "host_only");
    for p in [&mut alice, &mut bob, &mut carol] {
        w.drain(p);
    }
    // Setting the same mode again only answers the host.
    w.send(
        &mut alice,
        json!({"type": "mode", "room": "r1", "id": "m-2", "payload": {"mode": "host_only"}}),
    );
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["mode_changed"]);
    assert_eq!(got[0].id.as_deref(), Some("m-2"));
    w.assert_quiet(&mut bob);
    w.assert_quiet(&mut dave);
}

// ---------------------------------------------------------------------------------------------
// kick
// ---------------------------------------------------------------------------------------------

#[test]
fn kick_by_a_guest_is_forbidden() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    let e = w.reject(
        &mut bob,
        json!({"type": "kick", "room": "r1", "id": "k-guest", "payload": {"peer": "carol"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("k-guest"));
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut carol);
    assert_eq!(w.hub.stats().members, 3);
}

#[test]
fn kick_by_host_removes_the_target_tells_everyone_and_bans_the_user() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(
        &mut alice,
        json!({"type": "kick", "room": "r1", "id": "k-1", "payload": {"peer": "bob"}}),
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["left"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(got[0].payload, json!({"reason": "kicked", "by": "alice"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(
        got[0].id.as_deref(),
        Some("k-1"),
        "the host's copy answers the kick"
    );
    assert_eq!(got[0].payload, json!({"peer": "bob", "reason": "kicked"}));
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(got[0].id, None);
    assert_eq!(got[0].payload, json!({"peer": "bob", "reason": "kicked"}));
    assert_eq!(w.hub.stats().members, 2);
    // Bob cannot rejoin, not even from a new session; his session stays usable elsewhere.
    let e = w.reject(
        &mut bob,
        json!({"type": "join", "room": "r1", "id": "rejoin", "payload": {"peer": "bob"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("rejoin"));
    let mut bob2 = w.open("bob", Role::Guest);
    let e = w.reject(
        &mut bob2,
        json!({"type": "join", "room": "r1", "payload": {"peer": "bob"}}),
    );
    assert_eq!(code(&e), "forbidden");
    w.join(&mut bob, "r2");
    let e = w.reject(&mut bob, message_to("alice", "x"));
    assert_eq!(code(&e), "not_in_room");
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut carol);
    assert_eq!(w.hub.stats().members, 3);
}

#[test]
fn kick_of_an_unknown_peer_is_unknown_peer_and_of_yourself_invalid() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "zed"}}),
    );
    assert_eq!(code(&e), "unknown_peer");
    let e = w.reject(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "alice"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().members, 2);
}

//! Tests of rooms and membership: `join` and what `joined` lists, `leave`, a room that empties,
//! a newer session of the same user replacing the older, `room_full`, peer ids, grants and the
//! cap on rooms per session.
//!
//! Rooms closed for idleness are in the timers' tests.

use serde_json::json;
use switchboard_protocol::{ErrorCode, IceServer, Role, RoomId};

use crate::{
    CloseReason, CoreConfig, Disconnect, Event, Identity, RoomEnd, Stats, Transmit,
    hub::testkit::{World, code, identity, kinds, message_to, pair, room, trio},
};

// ---------------------------------------------------------------------------------------------
// join and leave
// ---------------------------------------------------------------------------------------------

#[test]
fn join_answers_joined_with_earlier_members_in_join_order_and_ice_servers() {
    let ice = vec![
        IceServer {
            urls: vec!["stun:stun.example.org:3478".into()],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
            username: Some("u".into()),
            credential: Some("c".into()),
        },
    ];
    let mut w = World::with(CoreConfig {
        ice_servers: ice,
        ..CoreConfig::default()
    });
    let mut alice = w.open_as(Identity {
        name: Some("Alice A.".into()),
        ..identity("alice", Role::Host, "*")
    });
    let mut bob = w.open("bob", Role::Guest);
    let mut carol = w.open("carol", Role::Guest);
    w.send(
        &mut alice,
        json!({"type": "join", "room": "r1", "payload": {"peer": "alice", "meta": {"cam": true}}}),
    );
    w.drain(&mut alice);
    w.join(&mut bob, "r1");
    w.drain(&mut alice);
    w.send(
        &mut carol,
        json!({"type": "join", "room": "r1", "id": "j-1", "payload": {"peer": "carol", "meta": {"n": 3}}}),
    );
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["joined"]);
    let joined = &got[0];
    assert_eq!(joined.room.as_deref(), Some("r1"));
    assert_eq!(joined.id.as_deref(), Some("j-1"));
    assert_eq!(joined.from, None);
    assert_eq!(
        joined.payload,
        json!({
            "peer": "carol",
            "role": "guest",
            "mode": "free_for_all",
            "media": "mesh",
            "media_mode": "auto",
            "peers": [
                {"peer": "alice", "role": "host", "name": "Alice A.", "meta": {"cam": true}},
                {"peer": "bob", "role": "guest", "meta": null},
            ],
            "ice_servers": [
                {"urls": ["stun:stun.example.org:3478"]},
                {"urls": ["turn:turn.example.org:3478?transport=udp"], "username": "u", "credential": "c"},
            ],
        })
    );
    for other in [&mut alice, &mut bob] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["peer_joined"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].from, None, "an announcement comes from the server");
        assert_eq!(
            got[0].id, None,
            "the joiner's id is echoed only to the joiner"
        );
        assert_eq!(
            got[0].payload,
            json!({"peer": "carol", "role": "guest", "meta": {"n": 3}})
        );
    }
}

#[test]
fn joined_lists_the_configured_ice_servers_then_the_sessions_own() {
    let stun = IceServer {
        urls: vec!["stun:stun.example.org:3478".into()],
        username: None,
        credential: None,
    };
    let mut w = World::with(CoreConfig {
        ice_servers: vec![stun],
        ..CoreConfig::default()
    });
    let turn = |user: &str| IceServer {
        urls: vec!["turn:turn.example.org:3478".into()],
        username: Some(format!("1763786400:{user}")),
        credential: Some(format!("secret-of-{user}")),
    };
    let mut alice = w.open_as(Identity {
        ice_servers: vec![turn("alice")],
        ..identity("alice", Role::Host, "*")
    });
    let mut bob = w.open("bob", Role::Guest);
    w.send(&mut alice, json!({"type": "join", "room": "r1"}));
    let got = w.drain(&mut alice);
    assert_eq!(
        got[0].payload["ice_servers"],
        json!([
            {"urls": ["stun:stun.example.org:3478"]},
            {"urls": ["turn:turn.example.org:3478"], "username": "1763786400:alice", "credential": "secret-of-alice"},
        ])
    );
    let r1 = RoomId::parse("r1").unwrap();
    assert_eq!(w.hub.room_size(&r1), 1);
    // Another session gets only the configured ones, never alice's credentials.
    w.send(&mut bob, json!({"type": "join", "room": "r1"}));
    let got = w.drain(&mut bob);
    assert_eq!(w.hub.room_size(&r1), 2);
    assert_eq!(w.hub.room_size(&RoomId::parse("nowhere").unwrap()), 0);
    assert_eq!(
        got[0].payload["ice_servers"],
        json!([{"urls": ["stun:stun.example.org:3478"]}])
    );
}

#[test]
fn join_without_a_peer_id_gets_a_generated_one_kept_for_the_session() {
    let mut w = World::new();
    let mut bob = w.open("bob", Role::Guest);
    w.join(&mut bob, "r1");
    let mut alice = w.open("alice", Role::Host);
    w.send(&mut alice, json!({"type": "join", "room": "r1"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["joined"]);
    let peer = got[0].payload["peer"].as_str().unwrap().to_owned();
    assert_eq!(peer.len(), 12);
    assert!(peer.bytes().all(|c| c.is_ascii_alphanumeric()));
    // The members hear of it as of any chosen id.
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["peer_joined"]);
    assert_eq!(got[0].payload["peer"], peer.as_str());
    w.send(&mut alice, json!({"type": "join", "room": "r2"}));
    let got = w.drain(&mut alice);
    assert_eq!(got[0].payload["peer"], peer.as_str());
}

#[test]
fn second_join_of_the_same_room_answers_joined_again_and_tells_nobody() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.events();
    let first_members = w.hub.stats().members;
    w.send(
        &mut bob,
        json!({"type": "join", "room": "r1", "id": "again", "payload": {"peer": "bob"}}),
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["joined"]);
    assert_eq!(got[0].id.as_deref(), Some("again"));
    assert_eq!(got[0].payload["peer"], "bob");
    assert_eq!(
        got[0].payload["peers"],
        json!([{"peer": "alice", "role": "host", "meta": null}])
    );
    w.assert_quiet(&mut alice);
    assert_eq!(w.hub.stats().members, first_members);
    assert_eq!(w.events(), [Event::Received { kind: "join" }]);
    // A join without a payload is answered the same way.
    w.send(&mut bob, json!({"type": "join", "room": "r1"}));
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["joined"]);
    assert_eq!(got[0].payload["peer"], "bob");
    w.assert_quiet(&mut alice);
    assert_eq!(w.hub.stats().members, first_members);
    assert_eq!(w.events(), [Event::Received { kind: "join" }]);
}

#[test]
fn leave_answers_left_and_others_get_peer_left_with_reason_left() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(
        &mut bob,
        json!({"type": "leave", "room": "r1", "id": "bye"}),
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["left"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(got[0].id.as_deref(), Some("bye"));
    assert_eq!(got[0].payload, json!({"reason": "left"}));
    for other in [&mut alice, &mut carol] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["peer_left"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].id, None);
        assert_eq!(got[0].payload, json!({"peer": "bob", "reason": "left"}));
    }
    // Bob is out: he can no longer signal into r1, and nobody there can reach him.
    let e = w.reject(&mut bob, message_to("alice", "x"));
    assert_eq!(code(&e), "not_in_room");
    let e = w.reject(&mut alice, message_to("bob", "y"));
    assert_eq!(code(&e), "unknown_peer");
    // Leaving is not a ban: he joins again under the same peer id.
    let joined = w.join(&mut bob, "r1");
    assert_eq!(joined.payload["peer"], "bob");
    assert_eq!(joined.payload["peers"][0]["peer"], "alice");
    for other in [&mut alice, &mut carol] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["peer_joined"]);
        assert_eq!(got[0].payload["peer"], "bob");
    }
}

#[test]
fn leave_of_a_room_you_are_not_in_answers_left_and_tells_nobody() {
    let mut w = World::new();
    let (mut alice, _bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    // r1 exists but carol is not in it; r9 does not exist at all.
    for r in ["r1", "r9"] {
        w.send(&mut carol, json!({"type": "leave", "room": r, "id": r}));
        let got = w.drain(&mut carol);
        assert_eq!(kinds(&got), ["left"]);
        assert_eq!(got[0].room.as_deref(), Some(r));
        assert_eq!(got[0].id.as_deref(), Some(r));
        assert_eq!(got[0].payload, json!({"reason": "left"}));
    }
    w.assert_quiet(&mut alice);
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 3,
            attached: 3,
            rooms: 1,
            members: 2
        }
    );
}

#[test]
fn empty_room_disappears_at_once() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    w.send(&mut bob, json!({"type": "leave", "room": "r1"}));
    assert_eq!(w.hub.stats().rooms, 1);
    assert_eq!(w.hub.stats().members, 1);
    w.events();
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 0,
            members: 0
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: RoomEnd::Empty
    }));
    // A later join starts a fresh room.
    w.drain(&mut bob);
    let joined = w.join(&mut bob, "r1");
    assert_eq!(joined.payload["peers"], json!([]));
    assert!(w.events().contains(&Event::RoomOpened { room: room("r1") }));
}

// ---------------------------------------------------------------------------------------------
// replace
// ---------------------------------------------------------------------------------------------

#[test]
fn a_newer_session_of_the_same_user_joining_the_room_replaces_the_older() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.join(&mut alice, "r2");
    w.events();
    let mut alice2 = w.open("alice", Role::Host);
    w.send(
        &mut alice2,
        json!({"type": "join", "room": "r1", "payload": {"peer": "alice"}}),
    );
    let (got, reason) = w.drain_to_close(&mut alice);
    assert_eq!(kinds(&got), ["replaced"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert!(got[0].payload["reason"].is_string());
    assert_eq!(reason, CloseReason::Replaced);
    // The old transport is gone for good.
    assert_eq!(w.poll(&alice), Transmit::Close(CloseReason::Expired));
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["peer_left", "peer_joined"]);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "replaced"})
    );
    assert_eq!(
        got[1].payload,
        json!({"peer": "alice", "role": "host", "meta": null})
    );
    let got = w.drain(&mut alice2);
    assert_eq!(kinds(&got), ["joined"]);
    assert_eq!(
        got[0].payload["peers"],
        json!([{"peer": "bob", "role": "guest", "meta": null}])
    );
    // The old session left every room (r2 had only it, so r2 is gone).
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::Replaced {
        room: room("r1"),
        user: "alice".into(),
        old: alice.session(),
        new: alice2.session(),
    }));
    assert!(events.contains(&Event::SessionClosed {
        session: alice.session(),
        user: "alice".into(),
        reason: CloseReason::Replaced,
    }));
    // The old session's frames are ignored from now on.
    let text = w.frame(&mut alice, message_to("bob", "ghost"));
    assert!(w.send_text(&alice, &text).is_ok());
    w.assert_quiet(&mut bob);
}

#[test]
fn a_replaced_session_leaves_every_room_it_was_in_and_cannot_be_resumed() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    let mut carol = w.open("carol", Role::Guest);
    w.join(&mut alice, "r1");
    w.join(&mut alice, "r2");
    w.join(&mut bob, "r1");
    w.join(&mut carol, "r2");
    w.drain(&mut alice);
    let mut alice2 = w.open("alice", Role::Host);
    let joined = w.join(&mut alice2, "r1");
    assert_eq!(
        joined.payload["peers"],
        json!([{"peer": "bob", "role": "guest", "meta": null}])
    );
    let (got, reason) = w.drain_to_close(&mut alice);
    assert_eq!(kinds(&got), ["replaced"]);
    assert_eq!(reason, CloseReason::Replaced);
    assert_eq!(kinds(&w.drain(&mut bob)), ["peer_left", "peer_joined"]);
    // Carol shares only r2 with the old session, which the new one has not joined.
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(got[0].room.as_deref(), Some("r2"));
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "replaced"})
    );
    // Signalling alice now reaches the new session.
    w.send(
        &mut bob,
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(kinds(&w.drain(&mut alice2)), ["offer"]);
    w.assert_quiet(&mut carol);
    // The replaced session is over: it cannot be resumed.
    let e = w.resume(&mut alice).unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired);
}

#[test]
fn replacing_a_detached_session_removes_it_and_its_resume_fails() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    w.assert_quiet(&mut bob);
    let mut alice2 = w.open("alice", Role::Host);
    w.join(&mut alice2, "r1");
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["peer_left", "peer_joined"]);
    assert_eq!(got[0].payload["reason"], "replaced");
    assert_eq!(w.hub.stats().sessions, 2);
    let e = w.resume(&mut alice).unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired);
}

#[test]
fn replacing_the_only_member_keeps_the_rooms_mode_and_bans() {
    // A lone host reloading its page: the old session leaves the room empty for a moment, but the
    // room, its mode and its bans carry over to the new session.
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.send(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "bob"}}),
    );
    w.send(
        &mut alice,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    w.drain(&mut alice);
    w.drain(&mut bob);
    w.events();
    let mut alice2 = w.open("alice", Role::Host);
    let joined = w.join(&mut alice2, "r1");
    assert_eq!(joined.payload["mode"], "host_only");
    assert_eq!(joined.payload["peers"], json!([]));
    assert_eq!(w.drain_to_close(&mut alice).1, CloseReason::Replaced);
    let e = w.reject(
        &mut bob,
        json!({"type": "join", "room": "r1", "payload": {"peer": "bob"}}),
    );
    assert_eq!(code(&e), "forbidden");
}

#[test]
fn room_full_past_max_peers_and_a_replacement_does_not_count_as_extra() {
    let mut w = World::with(CoreConfig {
        max_peers: 2,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    let e = w.reject(
        &mut carol,
        json!({"type": "join", "room": "r1", "id": "j", "payload": {"peer": "carol"}}),
    );
    assert_eq!(code(&e), "room_full");
    assert_eq!(e.id.as_deref(), Some("j"));
    assert_eq!(e.room.as_deref(), Some("r1"));
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut bob);
    // Bob's newer session takes his place in the full room.
    let mut bob2 = w.open("bob", Role::Guest);
    w.join(&mut bob2, "r1");
    assert_eq!(w.drain_to_close(&mut bob).1, CloseReason::Replaced);
    assert_eq!(w.hub.stats().members, 2);
    assert_eq!(kinds(&w.drain(&mut alice)), ["peer_left", "peer_joined"]);
    // Once someone leaves, carol fits.
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    w.join(&mut carol, "r1");
    let got = w.drain(&mut bob2);
    assert_eq!(kinds(&got), ["peer_left", "peer_joined"]);
    assert_eq!(got[1].payload["peer"], "carol");
}

// ---------------------------------------------------------------------------------------------
// peer ids, grants, room count
// ---------------------------------------------------------------------------------------------

#[test]
fn peer_id_is_chosen_by_the_client_and_peer_taken_when_another_user_has_it() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    w.send(
        &mut alice,
        json!({"type": "join", "room": "r1", "payload": {"peer": "desk-1"}}),
    );
    assert_eq!(w.drain(&mut alice)[0].payload["peer"], "desk-1");
    let e = w.reject(
        &mut bob,
        json!({"type": "join", "room": "r1", "id": "t", "payload": {"peer": "desk-1"}}),
    );
    assert_eq!(code(&e), "peer_taken");
    assert_eq!(e.id.as_deref(), Some("t"));
    assert_eq!(e.room.as_deref(), Some("r1"));
    w.assert_quiet(&mut alice);
    assert_eq!(w.hub.stats().members, 1);
    // The refused join did not fix bob's peer id: he can still pick another.
    w.send(
        &mut bob,
        json!({"type": "join", "room": "r1", "payload": {"peer": "desk-2"}}),
    );
    assert_eq!(w.drain(&mut bob)[0].payload["peer"], "desk-2");
    // Relays use the chosen ids.
    w.send(
        &mut bob,
        json!({"type": "offer", "room": "r1", "to": "desk-1", "payload": {"sdp": "v=0"}}),
    );
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["peer_joined", "offer"]);
    assert_eq!(got[1].from.as_deref(), Some("desk-2"));
}

#[test]
fn peer_id_is_fixed_for_the_session() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    let e = w.reject(
        &mut alice,
        json!({"type": "join", "room": "r2", "payload": {"peer": "other"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(w.hub.stats().members, 1);
    // Without a peer, or with the same one, it is the session's peer id.
    w.send(&mut alice, json!({"type": "join", "room": "r2"}));
    assert_eq!(w.drain(&mut alice)[0].payload["peer"], "alice");
    assert_eq!(w.join(&mut alice, "r3").payload["peer"], "alice");
    // It survives leaving every room.
    for r in ["r1", "r2", "r3"] {
        w.send(&mut alice, json!({"type": "leave", "room": r}));
    }
    w.drain(&mut alice);
    assert_eq!(w.hub.stats().members, 0);
    let e = w.reject(
        &mut alice,
        json!({"type": "join", "room": "r4", "payload": {"peer": "other"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(w.join(&mut alice, "r4").payload["peer"], "alice");
}

#[test]
fn join_outside_the_tokens_grant_is_forbidden() {
    let mut w = World::new();
    let mut alice = w.open_as(identity("alice", Role::Host, "r1"));
    let e = w.reject(
        &mut alice,
        json!({"type": "join", "room": "r2", "id": "g", "payload": {"peer": "alice"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("g"));
    assert_eq!(e.room.as_deref(), Some("r2"));
    assert_eq!(w.hub.stats().rooms, 0);
    w.join(&mut alice, "r1");
}

#[test]
fn prefix_grants_allow_every_room_with_the_prefix_and_nothing_else() {
    let mut w = World::new();
    let mut alice = w.open_as(identity("alice", Role::Host, "team-*"));
    w.join(&mut alice, "team-a");
    w.join(&mut alice, "team-b.c:d");
    for r in ["team", "other", "teams-a", "xteam-a"] {
        let e = w.reject(&mut alice, json!({"type": "join", "room": r}));
        assert_eq!(code(&e), "forbidden", "{r}");
    }
    assert_eq!(w.hub.stats().rooms, 2);
}

#[test]
fn max_rooms_per_session_is_enforced() {
    let mut w = World::with(CoreConfig {
        max_rooms_per_session: 2,
        ..CoreConfig::default()
    });
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    w.join(&mut alice, "r2");
    let e = w.reject(&mut alice, json!({"type": "join", "room": "r3"}));
    assert_eq!(code(&e), "forbidden");
    assert_eq!(w.hub.stats().rooms, 2);
    // Rejoining a room it is in is still answered.
    w.join(&mut alice, "r2");
    // After a leave there is room for another.
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    w.drain(&mut alice);
    w.join(&mut alice, "r3");
}

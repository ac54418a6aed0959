//! Tests of sessions: the `hello` a session opens with and its id, a transport that the client
//! closes, resuming a session on a new transport (what is replayed, who may resume, a superseded
//! transport, messages released by an `ack`), and shutdown ending every session.
//!
//! What happens when a transport goes silent or a resume never comes is in the timers' tests.

use serde_json::json;
use switchboard_protocol::{ErrorCode, Hello, Limits, Role, RoomClosedReason, ServerMessage};

use crate::{
    CloseReason, CoreConfig, Disconnect, Event, RoomEnd, Stats, Transmit,
    hub::testkit::{
        T0_UNIX_MS, World, code, identity, kinds, message_to, pair, peer_id, room, secs, trio,
    },
};

// ---------------------------------------------------------------------------------------------
// opening
// ---------------------------------------------------------------------------------------------

#[test]
fn hello_is_the_first_message_with_seq_1_limits_heartbeat_and_resume_values() {
    let limits = Limits {
        ts_skew_ms: 5_000,
        max_sdp_bytes: 1_000,
        ..Limits::default()
    };
    let mut w = World::with(CoreConfig {
        limits: limits.clone(),
        heartbeat_interval: secs(12),
        resume_window: secs(45),
        ..CoreConfig::default()
    });
    let mut alice = w.open_raw(identity("alice", Role::Host, "r1"));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["hello"]);
    let hello = &got[0];
    assert_eq!(hello.seq, 1);
    assert_eq!(hello.ts, T0_UNIX_MS);
    assert_eq!(hello.room, None);
    assert_eq!(hello.from, None);
    assert_eq!(hello.id, None);
    let body: Hello = serde_json::from_value(hello.payload.clone()).unwrap();
    assert_eq!(
        body,
        Hello {
            session: alice.session().to_string(),
            peer: None,
            heartbeat_ms: 12_000,
            resume_ms: 45_000,
            limits,
            last_client_seq: 0,
            resumed: false,
        }
    );
    assert_eq!(
        w.events(),
        [Event::SessionOpened {
            session: alice.session(),
            user: "alice".into()
        }]
    );
    assert_eq!(w.poll(&alice), Transmit::Idle);
}

#[test]
fn session_ids_are_distinct_and_long() {
    let mut w = World::new();
    let a = w.open("alice", Role::Host);
    let b = w.open("alice", Role::Host);
    assert_ne!(a.session(), b.session());
    assert_eq!(a.session().as_str().len(), 22);
    assert!(
        a.session()
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric())
    );
}

// ---------------------------------------------------------------------------------------------
// transports leaving, resume
// ---------------------------------------------------------------------------------------------

#[test]
fn closed_disconnect_tells_peers_disconnected_at_once_and_ends_the_session() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.events();
    w.hub.disconnect(&bob.at, Disconnect::Closed, w.now);
    for p in [&mut alice, &mut carol] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["peer_left"]);
        assert_eq!(
            got[0].payload,
            json!({"peer": "bob", "reason": "disconnected"})
        );
    }
    // The transport is gone, so nothing is left of the session.
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    assert!(w.events().contains(&Event::SessionClosed {
        session: bob.session(),
        user: "bob".into(),
        reason: CloseReason::ClientClosed
    }));
    assert_eq!(
        w.resume(&mut bob).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    // A second report of the same end is harmless.
    w.hub.disconnect(&bob.at, Disconnect::Closed, w.now);
    w.assert_quiet(&mut alice);
}

#[test]
fn lost_transport_resumed_in_the_window_replays_every_missed_message_once_in_order() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.events();
    w.send(&mut bob, message_to("alice", "m1"));
    w.send(&mut bob, message_to("alice", "m2"));
    // Alice's transport takes m1 and m2 but dies before the client sees them.
    match w.poll(&alice) {
        Transmit::Messages { batch: frames, .. } => assert_eq!(frames.len(), 2),
        other => panic!("{other:?}"),
    }
    w.send(&mut bob, message_to("alice", "m3"));
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    assert_eq!(w.poll(&alice), Transmit::Close(CloseReason::TransportLost));
    w.send(&mut bob, message_to("alice", "m4"));
    w.advance(secs(29));
    w.hub.heard_from(&bob.at, w.now);
    w.tick();
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().attached, 1);
    assert_eq!(w.hub.stats().members, 2);

    let old = alice.at.clone();
    let before = alice.last_seq;
    w.resume(&mut alice).unwrap();
    let got = w.drain(&mut alice);
    assert_eq!(
        kinds(&got),
        ["hello", "message", "message", "message", "message"]
    );
    assert_eq!(got[0].seq, before + 1, "numbering continues after last_seq");
    let hello: Hello = serde_json::from_value(got[0].payload.clone()).unwrap();
    assert!(hello.resumed);
    assert_eq!(hello.session, alice.session().as_str());
    assert_eq!(hello.peer, Some(peer_id("alice")));
    assert_eq!(hello.last_client_seq, 1, "alice sent only her join");
    let ids: Vec<_> = got[1..].iter().map(|m| m.id.clone().unwrap()).collect();
    assert_eq!(ids, ["m1", "m2", "m3", "m4"]);
    assert!(got[1..].iter().all(|m| m.from.as_deref() == Some("bob")));
    // Bob never saw alice leave.
    w.assert_quiet(&mut bob);
    assert_eq!(w.poll(&alice), Transmit::Idle);
    assert_eq!(
        w.hub.transmit(&old, 10),
        Transmit::Close(CloseReason::Superseded)
    );
    let events = w.events();
    assert!(events.contains(&Event::SessionDetached {
        session: alice.session(),
        reason: CloseReason::TransportLost
    }));
    assert!(events.contains(&Event::SessionResumed {
        session: alice.session(),
        user: "alice".into(),
        replayed: 4
    }));
    // The resumed session works as before; its replay guard survived.
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 1}));
    assert_eq!(code(&e), "duplicate_seq");
    w.send(&mut alice, message_to("bob", "back"));
    assert_eq!(w.drain(&mut bob)[0].id.as_deref(), Some("back"));
    assert_eq!(w.hub.stats().attached, 2);
}

#[test]
fn resume_by_another_user_is_forbidden() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    let e = w
        .hub
        .resume(alice.at.session.as_str(), "bob", alice.last_seq, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    // The refused attempt changed nothing: the owner can still resume.
    w.resume(&mut alice).unwrap();
    assert_eq!(kinds(&w.drain(&mut alice)), ["hello"]);
    w.assert_quiet(&mut bob);
}

#[test]
fn a_superseded_attachment_is_closed_and_its_frames_ignored() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let old = alice.at.clone();
    // A second transport resumes the session while the first is still up.
    w.resume(&mut alice).unwrap();
    assert_eq!(
        w.hub.transmit(&old, 10),
        Transmit::Close(CloseReason::Superseded)
    );
    let text = w.frame(&mut alice, message_to("bob", "from-old"));
    assert!(w.hub.receive(&old, &text, w.now).is_ok());
    w.hub.heard_from(&old, w.now);
    w.hub.reply(
        &old,
        ServerMessage::new(switchboard_protocol::ServerBody::Pong),
        w.now,
    );
    w.hub.disconnect(&old, Disconnect::Closed, w.now);
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().sessions, 2);
    // The new transport gets the resumed hello and nothing from the old one's calls.
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["hello"]);
    assert_eq!(got[0].payload["resumed"], true);
    // The seq the old transport's frame used is not consumed: it was dropped unread.
    alice.next_seq -= 1;
    w.send(&mut alice, message_to("bob", "from-new"));
    assert_eq!(w.drain(&mut bob)[0].id.as_deref(), Some("from-new"));
}

#[test]
fn ack_releases_messages_so_a_resume_from_below_it_is_session_expired() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    for n in 0..3 {
        w.send(&mut bob, message_to("alice", &format!("a{n}")));
    }
    w.drain(&mut alice);
    let n = alice.last_seq;
    w.send(
        &mut alice,
        json!({"type": "ack", "payload": {"seq": n - 1}}),
    );
    w.assert_quiet(&mut alice);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    // A position the server never reached is refused, and the session can still resume.
    let e = w
        .hub
        .resume(alice.at.session.as_str(), "alice", n + 5, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidMessage);
    // From the acked seq itself the one unacked message is replayed.
    alice.last_seq = n - 1;
    w.resume(&mut alice).unwrap();
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["hello", "message"]);
    assert_eq!(got[1].id.as_deref(), Some("a2"));
    w.assert_quiet(&mut bob);
    // From below the acked seq the session cannot be served: the refusal ends it at once.
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    let e = w
        .hub
        .resume(alice.at.session.as_str(), "alice", n - 2, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired);
    let got = w.drain(&mut bob);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
    assert_eq!(
        w.hub
            .resume(alice.at.session.as_str(), "alice", n, w.now)
            .unwrap_err()
            .code(),
        ErrorCode::SessionExpired
    );
    w.assert_quiet(&mut bob);
}

#[test]
fn a_resume_refused_for_released_messages_ends_the_session_at_once() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 3,
        resume_window: secs(30),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    // Alice's outbox holds hello, joined and peer_joined, all received. m1 is taken by her
    // transport, which dies before she sees it.
    w.send(&mut bob, message_to("alice", "m1"));
    match w.poll(&alice) {
        Transmit::Messages { batch: frames, .. } => assert_eq!(frames.len(), 1),
        other => panic!("{other:?}"),
    }
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    // Three more messages need the space: the sent ones go, m1 (sent, never received) last.
    for n in 2..=4 {
        w.send(&mut bob, message_to("alice", &format!("m{n}")));
    }
    assert_eq!(
        w.resume(&mut alice).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    // Those messages are gone for good, so the session ends now and the peers hear it.
    assert_eq!(w.hub.stats().sessions, 1);
    assert_eq!(w.hub.stats().members, 1);
    let got = w.drain(&mut bob);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
}

// ---------------------------------------------------------------------------------------------
// shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn shutdown_sends_room_closed_then_closes_every_transport() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    let mut dave = w.open("dave", Role::Guest);
    w.join(&mut dave, "r2");
    w.hub.disconnect(&dave.at, Disconnect::Lost, w.now);
    w.events();
    w.hub.shutdown(w.now);
    for p in [&mut alice, &mut bob] {
        let (got, reason) = w.drain_to_close(p);
        assert_eq!(kinds(&got), ["room_closed"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].payload, json!({"reason": "shutdown"}));
        assert_eq!(reason, CloseReason::Shutdown);
    }
    let (got, reason) = w.drain_to_close(&mut carol);
    assert!(got.is_empty());
    assert_eq!(reason, CloseReason::Shutdown);
    // A detached session has no transport to drain: it is gone at once.
    assert_eq!(
        w.resume(&mut dave).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    assert_eq!(w.hub.stats(), Stats::default());
    let events = w.events();
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: RoomEnd::Closed(RoomClosedReason::Shutdown)
    }));
    assert!(events.contains(&Event::SessionClosed {
        session: carol.session(),
        user: "carol".into(),
        reason: CloseReason::Shutdown
    }));
}

#[test]
fn frames_after_shutdown_are_ignored() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.shutdown(w.now);
    let text = w.frame(&mut alice, message_to("bob", "late"));
    assert!(w.send_text(&alice, &text).is_ok());
    let (got, _) = w.drain_to_close(&mut bob);
    assert_eq!(kinds(&got), ["room_closed"]);
}

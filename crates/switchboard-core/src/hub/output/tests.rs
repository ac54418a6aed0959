//! Tests of what the hub hands back: server `seq` numbering across transmit batches, outboxes
//! (overflow ends the recipient, delivered messages are released), the events drained with the
//! outputs, and sinks signalled once per batch of work and when their transport must close.

use serde_json::json;
use switchboard_protocol::{ErrorCode, PeerLeftReason, Role};

use crate::{
    CloseReason, CoreConfig, Disconnect, Event, RoomEnd, Stats, Transmit,
    hub::testkit::{NONE, World, decode, kinds, message_to, pair, peer_id, room, secs, trio},
};

// ---------------------------------------------------------------------------------------------
// numbering
// ---------------------------------------------------------------------------------------------

#[test]
fn server_seq_is_strictly_increasing_without_gaps_across_batches() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    for n in 0..7 {
        w.send(&mut bob, message_to("alice", &format!("m{n}")));
    }
    w.send(&mut alice, json!({"type": "ping"}));
    // Read in batches of 3, as a transport with a small batch would.
    let mut seqs = Vec::new();
    let mut ids = Vec::new();
    while let Transmit::Messages { batch: frames, .. } = w.hub.transmit(&alice.at, 3) {
        assert!(frames.len() <= 3);
        for f in frames.into_iter().map(|f| f.text) {
            let env = decode(&f);
            seqs.push(env.seq);
            ids.push(env.id.unwrap_or_default());
        }
    }
    let first = alice.last_seq + 1;
    assert_eq!(seqs, (first..first + 8).collect::<Vec<_>>());
    assert_eq!(ids, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", ""]);
    // Bob's numbering is his own: hello, joined, then nothing.
    assert_eq!(bob.last_seq, 2);
}

// ---------------------------------------------------------------------------------------------
// outboxes
// ---------------------------------------------------------------------------------------------

#[test]
fn outbox_overflow_ends_a_detached_recipient_and_spares_the_sender() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 4,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.drain(&mut carol);
    w.hub.disconnect(&bob.at, Disconnect::Lost, w.now);
    w.events();
    // Bob's outbox keeps what he already received until it needs the space, then fills with
    // unsent messages: 4 fit, the 5th cannot.
    for n in 1..=4 {
        w.send(&mut alice, message_to("bob", &format!("f{n}")));
        w.assert_quiet(&mut carol);
    }
    w.send(&mut alice, message_to("bob", "f5"));
    for p in [&mut alice, &mut carol] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["peer_left"]);
        assert_eq!(
            got[0].payload,
            json!({"peer": "bob", "reason": "disconnected"})
        );
    }
    assert!(w.events().contains(&Event::SessionClosed {
        session: bob.session(),
        user: "bob".into(),
        reason: CloseReason::Overflow
    }));
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    assert_eq!(
        w.resume(&mut bob).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    // The sender carries on.
    w.send(&mut alice, message_to("carol", "still here"));
    assert_eq!(w.drain(&mut carol)[0].id.as_deref(), Some("still here"));
}

#[test]
fn outbox_overflow_ends_an_attached_recipient_that_does_not_read() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 4,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.drain(&mut carol);
    for n in 1..=5 {
        w.send(&mut alice, message_to("bob", &format!("f{n}")));
    }
    let got = w.drain(&mut carol);
    assert_eq!(
        got[0].payload,
        json!({"peer": "bob", "reason": "disconnected"})
    );
    // Bob's transport still gets what was kept, then is closed.
    let (got, reason) = w.drain_to_close(&mut bob);
    let ids: Vec<_> = got.iter().map(|m| m.id.clone().unwrap()).collect();
    assert_eq!(ids, ["f1", "f2", "f3", "f4"]);
    assert_eq!(reason, CloseReason::Overflow);
    assert_eq!(w.hub.stats().sessions, 2);
    assert_eq!(kinds(&w.drain(&mut alice)), ["peer_left"]);
}

#[test]
fn outbox_releases_delivered_messages_so_a_reading_client_never_overflows() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 4,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    for n in 0..50 {
        w.send(&mut alice, message_to("bob", &format!("x{n}")));
        assert_eq!(w.drain(&mut bob).len(), 1);
    }
    assert_eq!(w.hub.stats().sessions, 2);
}

// ---------------------------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------------------------

#[test]
fn events_report_joins_relays_leaves_and_room_lifecycle() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    assert_eq!(
        w.events(),
        [
            Event::SessionOpened {
                session: alice.session(),
                user: "alice".into()
            },
            Event::SessionOpened {
                session: bob.session(),
                user: "bob".into()
            },
        ]
    );
    w.join(&mut alice, "r1");
    assert_eq!(
        w.events(),
        [
            Event::RoomOpened { room: room("r1") },
            Event::Joined {
                room: room("r1"),
                peer: peer_id("alice"),
                user: "alice".into(),
                members: 1
            },
            Event::Received { kind: "join" },
        ]
    );
    w.join(&mut bob, "r1");
    assert_eq!(
        w.events(),
        [
            Event::Joined {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                members: 2
            },
            Event::Received { kind: "join" },
        ]
    );
    w.send(
        &mut alice,
        json!({"type": "candidate", "room": "r1", "to": "bob", "payload": {"candidate": ""}}),
    );
    assert_eq!(
        w.events(),
        [
            Event::Relayed {
                kind: "candidate",
                recipients: 1
            },
            Event::Received { kind: "candidate" },
        ]
    );
    assert_eq!(kinds(&w.drain(&mut bob)), ["candidate"]);
    w.reject(&mut bob, message_to("nobody", "x"));
    assert_eq!(
        w.events(),
        [Event::Rejected {
            code: ErrorCode::UnknownPeer
        }]
    );
    w.send(&mut bob, json!({"type": "leave", "room": "r1"}));
    assert_eq!(
        w.events(),
        [
            Event::Left {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                reason: PeerLeftReason::Left,
                members: 1
            },
            Event::Received { kind: "leave" },
        ]
    );
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    let events = w.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.contains(&Event::Left {
        room: room("r1"),
        peer: peer_id("alice"),
        user: "alice".into(),
        reason: PeerLeftReason::Left,
        members: 0
    }));
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: RoomEnd::Empty
    }));
    assert_eq!(events[2], Event::Received { kind: "leave" });
    w.send(&mut alice, json!({"type": "ping"}));
    w.send(&mut alice, json!({"type": "ack", "payload": {"seq": 1}}));
    assert_eq!(
        w.events(),
        [
            Event::Received { kind: "ping" },
            Event::Received { kind: "ack" }
        ]
    );
    assert_eq!(w.events(), [], "drain_outputs empties the queue");
}

#[test]
fn events_report_detach_resume_replace_kick_and_close() {
    let mut w = World::new();
    let (mut alice, mut bob, carol) = trio(&mut w);
    w.events();
    w.hub.disconnect(&bob.at, Disconnect::Lost, w.now);
    w.resume(&mut bob).unwrap();
    assert!(
        w.hub
            .resume(bob.at.session.as_str(), "mallory", bob.last_seq, w.now)
            .is_err()
    );
    assert_eq!(
        w.events(),
        [
            Event::SessionDetached {
                session: bob.session(),
                reason: CloseReason::TransportLost
            },
            Event::SessionResumed {
                session: bob.session(),
                user: "bob".into(),
                replayed: 0
            },
            Event::ResumeFailed {
                code: ErrorCode::Forbidden
            },
        ]
    );
    w.drain(&mut bob);
    let mut bob2 = w.open("bob", Role::Guest);
    w.events();
    w.join(&mut bob2, "r1");
    assert_eq!(
        w.events(),
        [
            Event::Replaced {
                room: room("r1"),
                user: "bob".into(),
                old: bob.session(),
                new: bob2.session()
            },
            Event::Left {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                reason: PeerLeftReason::Replaced,
                members: 2
            },
            Event::SessionClosed {
                session: bob.session(),
                user: "bob".into(),
                reason: CloseReason::Replaced
            },
            Event::Joined {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                members: 3
            },
            Event::Received { kind: "join" },
        ]
    );
    w.send(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "bob"}}),
    );
    assert_eq!(
        w.events(),
        [
            Event::Left {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                reason: PeerLeftReason::Kicked,
                members: 2
            },
            Event::Received { kind: "kick" },
        ]
    );
    w.hub.disconnect(&carol.at, Disconnect::Closed, w.now);
    assert_eq!(
        w.events(),
        [
            Event::Left {
                room: room("r1"),
                peer: peer_id("carol"),
                user: "carol".into(),
                reason: PeerLeftReason::Disconnected,
                members: 1
            },
            Event::SessionClosed {
                session: carol.session(),
                user: "carol".into(),
                reason: CloseReason::ClientClosed
            },
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// sinks
// ---------------------------------------------------------------------------------------------

#[test]
fn a_connected_sink_is_ready_once_per_batch_of_work_and_when_its_transport_must_close() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.connect(&alice.at, "alice");
    // Connecting signals at once, so a transport takes what is already queued.
    assert_eq!(w.ready(), ["alice"]);
    assert_eq!(w.hub.transmit(&alice.at, 10), Transmit::Idle);
    // Something for another session does not signal alice's sink.
    w.send(&mut alice, message_to("bob", "to-bob"));
    assert_eq!(w.ready(), NONE);
    w.drain(&mut bob);
    // A message for alice does.
    w.send(&mut bob, message_to("alice", "to-alice"));
    assert_eq!(w.ready(), ["alice"]);
    // Signalled once: the transport has not taken since, so no second signal.
    w.send(&mut bob, message_to("alice", "again"));
    assert_eq!(w.ready(), NONE);
    match w.hub.transmit(&alice.at, 10) {
        Transmit::Messages { batch, more } => {
            assert_eq!(batch.len(), 2);
            assert!(!more, "nothing else is queued");
        }
        other => panic!("{other:?}"),
    }
    alice.last_seq += 2;
    // Taken: a peer leaving signals it again.
    w.hub.disconnect(&bob.at, Disconnect::Closed, w.now);
    assert_eq!(w.ready(), ["alice"]);
    assert_eq!(kinds(&w.drain(&mut alice)), ["peer_left"]);
    // And so does a heartbeat timeout, which must close the transport.
    w.advance(secs(40));
    w.tick();
    assert_eq!(w.ready(), ["alice"]);
    assert_eq!(
        w.hub.transmit(&alice.at, 10),
        Transmit::Close(CloseReason::HeartbeatTimeout)
    );
}

#[test]
fn a_transport_that_took_a_partial_batch_is_told_to_come_back_without_a_signal() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.connect(&alice.at, "alice");
    w.drain(&mut alice);
    assert_eq!(w.ready(), ["alice"]);
    for n in 0..3 {
        w.send(&mut bob, message_to("alice", &format!("m{n}")));
    }
    assert_eq!(w.ready(), ["alice"]);
    let Transmit::Messages { batch, more } = w.hub.transmit(&alice.at, 2) else {
        panic!("messages are queued");
    };
    assert_eq!((batch.len(), more), (2, true));
    // More was said: a new message does not signal again, the transport is coming back anyway.
    w.send(&mut bob, message_to("alice", "m3"));
    assert_eq!(w.ready(), NONE);
    let Transmit::Messages { batch, more } = w.hub.transmit(&alice.at, 10) else {
        panic!("messages are queued");
    };
    assert_eq!((batch.len(), more), (2, false));
    alice.last_seq += 4;
    // A session that ends says so after the last batch, so its transport comes back to close.
    w.send(&mut bob, message_to("alice", "m4"));
    assert_eq!(w.ready(), ["alice"]);
    w.hub.shutdown(w.now);
    let Transmit::Messages { more, .. } = w.hub.transmit(&alice.at, 10) else {
        panic!("messages are queued");
    };
    assert!(more, "the close follows");
    assert_eq!(
        w.hub.transmit(&alice.at, 10),
        Transmit::Close(CloseReason::Shutdown)
    );
}

#[test]
fn a_superseded_transports_sink_is_signalled_so_it_can_close() {
    let mut w = World::new();
    let (mut alice, _bob) = pair(&mut w);
    let old = alice.at.clone();
    w.hub.connect(&old, "old");
    assert_eq!(w.ready(), ["old"]);
    assert_eq!(w.hub.transmit(&old, 10), Transmit::Idle);
    w.resume(&mut alice).unwrap();
    assert_eq!(w.ready(), ["old"]);
    assert_eq!(
        w.hub.transmit(&old, 10),
        Transmit::Close(CloseReason::Superseded)
    );
    // The new transport brings its own sink; a superseded one cannot take the session back.
    w.hub.connect(&old, "old");
    w.hub.connect(&alice.at, "new");
    assert_eq!(w.ready(), ["new"]);
}

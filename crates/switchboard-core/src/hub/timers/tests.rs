//! Tests of the rules that run on deadlines: a silent transport detached after
//! `heartbeat_timeout`, a detached session ended once `resume_window` has passed, a room closed
//! after `room_idle_timeout` without activity; and of the deadline the hub reports in
//! [`Outputs::deadline`](crate::Outputs::deadline) as its timers (`crate::deadlines`) keep it.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_protocol::{ErrorCode, PeerLeftReason, Role, RoomClosedReason};

use crate::{
    CloseReason, CoreConfig, Disconnect, Event, RoomEnd, Stats, Transmit,
    hub::testkit::{NONE, TestPeer, World, code, kinds, message_to, pair, peer_id, room, secs},
};

// ---------------------------------------------------------------------------------------------
// heartbeats and resume windows
// ---------------------------------------------------------------------------------------------

#[test]
fn heartbeat_timeout_detaches_and_peers_see_timeout_only_after_the_resume_window() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        resume_window: secs(30),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.events();
    w.advance(secs(20));
    w.hub.heard_from(&bob.at, w.now);
    w.advance(secs(19));
    w.tick();
    assert_eq!(w.poll(&alice), Transmit::Idle, "39 s of silence is fine");
    w.hub.heard_from(&bob.at, w.now);
    w.advance(secs(1));
    w.tick();
    assert_eq!(
        w.poll(&alice),
        Transmit::Close(CloseReason::HeartbeatTimeout)
    );
    assert_eq!(
        w.events(),
        [Event::SessionDetached {
            session: alice.session(),
            reason: CloseReason::HeartbeatTimeout
        }]
    );
    w.assert_quiet(&mut bob);
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 1,
            rooms: 1,
            members: 2
        }
    );
    // Frames on the dead transport are ignored.
    let text = w.frame(&mut alice, message_to("bob", "late"));
    assert!(w.send_text(&alice, &text).is_ok());
    w.assert_quiet(&mut bob);
    // The peers learn nothing until the resume window has passed.
    w.advance(secs(29));
    w.hub.heard_from(&bob.at, w.now);
    w.tick();
    w.assert_quiet(&mut bob);
    w.advance(secs(1));
    w.hub.heard_from(&bob.at, w.now);
    w.tick();
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 1,
            attached: 1,
            rooms: 1,
            members: 1
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::SessionClosed {
        session: alice.session(),
        user: "alice".into(),
        reason: CloseReason::Expired
    }));
    assert_eq!(
        w.resume(&mut alice).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
}

#[test]
fn heard_from_and_any_frame_keep_an_attached_session_alive() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        ..CoreConfig::default()
    });
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    for _ in 0..5 {
        w.advance(secs(30));
        w.hub.heard_from(&alice.at, w.now);
        w.send(&mut bob, json!({"type": "ping"}));
        w.tick();
        w.assert_quiet(&mut alice);
        assert_eq!(kinds(&w.drain(&mut bob)), ["pong"]);
    }
    // Even a refused frame shows the transport is alive.
    w.advance(secs(30));
    w.hub.heard_from(&alice.at, w.now);
    w.reject_text(&mut bob, "garbage");
    w.advance(secs(30));
    w.hub.heard_from(&alice.at, w.now);
    w.tick();
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().attached, 2);
}

#[test]
fn resume_after_the_window_is_session_expired() {
    let mut w = World::with(CoreConfig {
        resume_window: secs(30),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    w.advance(secs(30));
    w.tick();
    let got = w.drain(&mut bob);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
    w.events();
    assert_eq!(
        w.resume(&mut alice).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    assert_eq!(
        w.events(),
        [Event::ResumeFailed {
            code: ErrorCode::SessionExpired
        }]
    );
    // An id that never existed fails the same way.
    let e = w
        .hub
        .resume("nosuchsession", "alice", 0, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired);
}

// ---------------------------------------------------------------------------------------------
// idle rooms
// ---------------------------------------------------------------------------------------------

#[test]
fn an_idle_room_is_closed_and_a_room_with_activity_is_kept() {
    let mut w = World::with(CoreConfig {
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    w.join(&mut carol, "r2");
    let mut dave = w.open("dave", Role::Guest);
    let mut erin = w.open("erin", Role::Guest);
    w.join(&mut dave, "r3");
    w.join(&mut erin, "r3");
    w.drain(&mut dave);
    w.advance(secs(30));
    // Transport heartbeats are not room activity.
    w.hub.heard_from(&alice.at, w.now);
    w.hub.heard_from(&bob.at, w.now);
    // Activity: a ping keeps r2, a message keeps r3.
    w.send(&mut carol, json!({"type": "ping"}));
    w.drain(&mut carol);
    w.send(
        &mut dave,
        json!({"type": "message", "room": "r3", "payload": {}}),
    );
    w.drain(&mut erin);
    w.advance(secs(29));
    w.tick();
    for p in [&mut alice, &mut bob, &mut carol, &mut dave, &mut erin] {
        w.assert_quiet(p);
    }
    w.events();
    w.advance(secs(1));
    w.tick();
    for p in [&mut alice, &mut bob] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["room_closed"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].payload, json!({"reason": "idle"}));
    }
    for p in [&mut carol, &mut dave, &mut erin] {
        w.assert_quiet(p);
    }
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 5,
            attached: 5,
            rooms: 2,
            members: 3
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: RoomEnd::Closed(RoomClosedReason::Idle)
    }));
    assert!(events.contains(&Event::Left {
        room: room("r1"),
        peer: peer_id("alice"),
        user: "alice".into(),
        reason: PeerLeftReason::RoomClosed,
        members: 0
    }));
    // The members are out of the room but their sessions live on.
    let e = w.reject(&mut alice, message_to("bob", "x"));
    assert_eq!(code(&e), "not_in_room");
    assert_eq!(w.join(&mut alice, "r1").payload["peers"], json!([]));
    // r2 and r3 go 60 s after their last activity.
    w.advance(secs(30));
    w.tick();
    for p in [&mut carol, &mut dave, &mut erin] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["room_closed"]);
        assert_eq!(got[0].payload, json!({"reason": "idle"}));
    }
    assert_eq!(w.hub.stats().rooms, 1);
}

#[test]
fn a_members_activity_counts_for_a_room_after_it_leaves_but_its_leave_does_not() {
    let mut w = World::with(CoreConfig {
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.advance(secs(30));
    w.send(&mut alice, message_to("bob", "x"));
    w.advance(secs(10));
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    w.drain(&mut bob);
    w.advance(secs(49));
    w.tick();
    w.assert_quiet(&mut bob);
    w.advance(secs(1));
    w.tick();
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["room_closed"]);
    assert_eq!(got[0].payload, json!({"reason": "idle"}));
}

#[test]
fn a_room_closed_for_idleness_no_longer_counts_against_max_rooms() {
    let mut w = World::with(CoreConfig {
        max_rooms_per_session: 2,
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    w.join(&mut alice, "r2");
    w.advance(secs(60));
    w.tick();
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["room_closed", "room_closed"]);
    assert_eq!(w.hub.stats().rooms, 0);
    w.join(&mut alice, "r3");
    w.join(&mut alice, "r4");
}

#[test]
fn rooms_and_sessions_that_come_and_go_leave_no_timer_entries_behind() {
    // The soak benchmark's churn: sessions open, join a room nobody else is in, leave it and
    // close. Each closed room and forgotten session leaves its timer entry, due up to an hour
    // later; the timers must not keep them all.
    let mut w = World::with(CoreConfig {
        room_idle_timeout: secs(3600),
        heartbeat_timeout: secs(7200),
        ..CoreConfig::default()
    });
    let mut host = w.open("host", Role::Host);
    w.join(&mut host, "kept");
    for i in 0..5_000 {
        let mut guest = w.open(&format!("guest-{i}"), Role::Guest);
        w.join(&mut guest, &format!("room-{}", i % 7));
        w.send(
            &mut guest,
            json!({"type": "leave", "room": format!("room-{}", i % 7)}),
        );
        w.hub
            .disconnect(&guest.at, crate::Disconnect::Closed, w.now);
    }
    assert_eq!(w.hub.stats().rooms, 1);
    assert!(
        w.hub.timers.len() < 2 * 2 + 2 * 1024,
        "{} timer entries for one room and one session",
        w.hub.timers.len()
    );
    // The live ones still come due.
    w.advance(secs(3600));
    w.tick();
    assert!(kinds(&w.drain(&mut host)).contains(&"room_closed"));
}

// ---------------------------------------------------------------------------------------------
// the reported deadline
// ---------------------------------------------------------------------------------------------

/// Follows the deadlines the hub reports up to `until`, running its timers at each as the IO
/// layer does, and returns the events of the way.
fn follow_deadlines(w: &mut World, until: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    // Few entries are ever live in these tests; more steps mean the hub keeps coming back early.
    for _ in 0..10 {
        let outputs = w.outputs();
        events.extend(outputs.events);
        match outputs.deadline {
            Some(at) if at <= until => {
                w.advance(at.saturating_duration_since(w.now.at));
                w.tick();
            }
            _ => return events,
        }
    }
    panic!("more than 10 deadlines before {until:?}");
}

/// Follows the deadlines to `at`: nothing happens before it, and then `p`'s session is detached
/// for its silence.
fn detached_for_silence_at(w: &mut World, p: &TestPeer, at: Instant) {
    let before = follow_deadlines(w, at - Duration::from_millis(1));
    assert_eq!(before, [], "nothing is due before {at:?}");
    assert_eq!(
        follow_deadlines(w, at),
        [Event::SessionDetached {
            session: p.session(),
            reason: CloseReason::HeartbeatTimeout
        }]
    );
}

#[test]
fn the_deadline_after_open_is_the_heartbeat_timeout() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        ..CoreConfig::default()
    });
    let start = w.now.at;
    assert_eq!(w.outputs().deadline, None, "no sessions, no timers");
    w.advance(secs(5));
    w.open("alice", Role::Host);
    assert_eq!(w.outputs().deadline, Some(start + secs(45)));
    w.advance(secs(5));
    w.open("bob", Role::Guest);
    assert_eq!(w.outputs().deadline, Some(start + secs(45)), "the earliest");
}

#[test]
fn a_busy_session_costs_no_timer_work_per_message_and_its_deadline_moves_when_due() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        ..CoreConfig::default()
    });
    let start = w.now.at;
    let mut alice = w.open("alice", Role::Host);
    for _ in 0..30 {
        w.advance(secs(1));
        for _ in 0..5 {
            w.send(&mut alice, json!({"type": "ping"}));
        }
    }
    assert_eq!(w.drain(&mut alice).len(), 150);
    let last_frame = w.now.at;
    // 150 frames moved the session's real deadline, but not its entry in the timers.
    assert_eq!(w.outputs().deadline, Some(start + secs(40)));
    // Just before the entry is due, the timers do nothing.
    w.advance(secs(10) - Duration::from_millis(1));
    w.tick();
    let outputs = w.outputs();
    assert_eq!(outputs.deadline, Some(start + secs(40)));
    assert_eq!(outputs.events, []);
    assert_eq!(outputs.ready, NONE);
    // When it is due, the session (heard from since) is not detached: its entry is scheduled
    // again at its real deadline, the only one left, so no frame left an entry of its own.
    w.advance(Duration::from_millis(1));
    w.tick();
    let outputs = w.outputs();
    assert_eq!(outputs.deadline, Some(last_frame + secs(40)));
    assert_eq!(outputs.events, []);
    assert_eq!(w.poll(&alice), Transmit::Idle);
    assert_eq!(w.hub.stats().attached, 1);
    // And that deadline is the real one: silent since its last frame, the session goes then.
    detached_for_silence_at(&mut w, &alice, last_frame + secs(40));
}

#[test]
fn a_detached_sessions_resume_deadline_is_reported_before_its_heartbeat_deadline() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        resume_window: secs(10),
        ..CoreConfig::default()
    });
    let start = w.now.at;
    let alice = w.open("alice", Role::Host);
    assert_eq!(w.outputs().deadline, Some(start + secs(40)));
    w.advance(secs(5));
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    assert_eq!(w.outputs().deadline, Some(start + secs(15)));
    w.advance(secs(10) - Duration::from_millis(1));
    w.tick();
    assert_eq!(w.outputs().events, []);
    assert_eq!(
        w.hub.stats().sessions,
        1,
        "not before the window has passed"
    );
    w.advance(Duration::from_millis(1));
    w.tick();
    assert_eq!(
        w.events(),
        [Event::SessionClosed {
            session: alice.session(),
            user: "alice".into(),
            reason: CloseReason::Expired
        }]
    );
    assert_eq!(w.hub.stats(), Stats::default());
    // The heartbeat entry it left behind may bring the hub back once more, for nothing; then
    // no timer is left.
    assert_eq!(follow_deadlines(&mut w, start + secs(3600)), []);
    assert_eq!(w.outputs().deadline, None);
}

#[test]
fn a_session_resumed_in_its_window_counts_its_heartbeat_deadline_from_the_resume() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        resume_window: secs(10),
        ..CoreConfig::default()
    });
    let start = w.now.at;
    let mut alice = w.open("alice", Role::Host);
    w.advance(secs(5));
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    w.advance(secs(5));
    w.resume(&mut alice).unwrap();
    w.drain(&mut alice);
    // The resume deadline's entry stays; when due it finds the session attached.
    assert_eq!(w.outputs().deadline, Some(start + secs(15)));
    let resumed = w.now.at;
    detached_for_silence_at(&mut w, &alice, resumed + secs(40));
}

#[test]
fn a_rooms_idle_deadline_is_reported_and_moves_on_with_its_members_activity() {
    let mut w = World::with(CoreConfig {
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let start = w.now.at;
    let mut alice = w.open("alice", Role::Host);
    assert_eq!(w.outputs().deadline, Some(start + secs(3600)));
    w.advance(secs(10));
    w.join(&mut alice, "r1");
    assert_eq!(w.outputs().deadline, Some(start + secs(70)));
    w.advance(secs(20));
    w.send(&mut alice, json!({"type": "ping"}));
    w.drain(&mut alice);
    assert_eq!(
        w.outputs().deadline,
        Some(start + secs(70)),
        "activity costs the timers nothing"
    );
    // Due at 70 s, the room takes up the activity at 30 s and moves its deadline to 90 s.
    w.advance(secs(40));
    w.tick();
    let outputs = w.outputs();
    assert_eq!(outputs.deadline, Some(start + secs(90)));
    assert_eq!(outputs.events, []);
    w.assert_quiet(&mut alice);
    assert_eq!(w.hub.stats().rooms, 1);
    w.advance(secs(20) - Duration::from_millis(1));
    w.tick();
    w.assert_quiet(&mut alice);
    w.advance(Duration::from_millis(1));
    w.tick();
    assert_eq!(kinds(&w.drain(&mut alice)), ["room_closed"]);
    let outputs = w.outputs();
    assert!(outputs.events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: RoomEnd::Closed(RoomClosedReason::Idle)
    }));
    assert_eq!(
        outputs.deadline,
        Some(start + secs(3600)),
        "only the heartbeat is left"
    );
}

//! Tests of sessions carried over HTTP: a stream attaching to a session (continuing after the
//! client's last event, with the same seqs and no `hello`, superseding the previous stream), the
//! owner check, messages posted on their own requests, and errors queued with `reply_to`.

use serde_json::{Value, json};
use switchboard_protocol::{ErrorCode, ServerBody, ServerMessage};

use crate::{
    CloseReason, CoreConfig, Disconnect, Event, Refusal, Transmit,
    hub::testkit::{TestPeer, World, code, kinds, message_to, pair, secs},
};

/// Posts `v` for the peer's session as `POST .../messages` does, with the peer's next `seq`.
fn post(w: &mut World, p: &mut TestPeer, v: Value) -> Result<(), Refusal> {
    let text = w.frame(p, v);
    let session = p.session();
    w.hub
        .receive_posted(session.as_str(), &p.user, &text, w.now)
}

#[test]
fn a_stream_continues_after_the_clients_last_event_with_the_same_seqs_and_no_hello() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    for n in 1..=3 {
        w.send(&mut bob, message_to("alice", &format!("m{n}")));
    }
    let first = w.drain(&mut alice);
    assert_eq!(kinds(&first), ["message"; 3]);
    w.events();
    // The client saw m1 before its stream broke off; the new stream continues from there while
    // the old one is still attached.
    let old = alice.at.clone();
    let after = first[0].seq;
    let session = alice.session();
    alice.at = w
        .hub
        .attach(session.as_str(), "alice", after, w.now)
        .unwrap();
    alice.last_seq = after;
    let again = w.drain(&mut alice);
    assert_eq!(again, first[1..], "sent again as they were, seqs included");
    assert_eq!(
        w.hub.transmit(&old, 10),
        Transmit::Close(CloseReason::Superseded)
    );
    // Continuing an attached session's stream is no resume.
    assert_eq!(w.events(), []);
    w.assert_quiet(&mut bob);
    // The new stream carries on as the old one did.
    w.send(&mut bob, message_to("alice", "m4"));
    assert_eq!(w.drain(&mut alice)[0].id.as_deref(), Some("m4"));
}

#[test]
fn a_stream_attaching_to_a_detached_session_resumes_it_and_is_refused_as_a_resume_is() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    // The transport takes a message and dies before the client sees it.
    w.send(&mut bob, message_to("alice", "missed"));
    assert!(matches!(w.poll(&alice), Transmit::Messages { .. }));
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    w.events();
    let session = alice.session();
    // Another user's stream, a position never reached, and an unknown session are refused.
    let refused = [
        w.hub.attach(session.as_str(), "bob", alice.last_seq, w.now),
        w.hub
            .attach(session.as_str(), "alice", alice.last_seq + 5, w.now),
        w.hub.attach("nosuchsession", "alice", 0, w.now),
    ]
    .map(|r| r.unwrap_err().code());
    assert_eq!(
        refused,
        [
            ErrorCode::Forbidden,
            ErrorCode::InvalidMessage,
            ErrorCode::SessionExpired
        ]
    );
    // None of that ended the session: its owner's stream takes it back.
    alice.at = w
        .hub
        .attach(session.as_str(), "alice", alice.last_seq, w.now)
        .unwrap();
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["message"]);
    assert_eq!(got[0].id.as_deref(), Some("missed"));
    let events = w.events();
    assert!(events.contains(&Event::SessionResumed {
        session: alice.session(),
        user: "alice".into(),
        replayed: 1
    }));
    assert_eq!(w.hub.stats().attached, 2);
    w.assert_quiet(&mut bob);
}

#[test]
fn check_owner_accepts_only_the_owner_of_a_live_session() {
    let mut w = World::new();
    let (alice, _bob) = pair(&mut w);
    let session = alice.session();
    assert!(w.hub.check_owner(session.as_str(), "alice").is_ok());
    let refused = [
        w.hub.check_owner(session.as_str(), "bob"),
        w.hub.check_owner("nosuchsession", "alice"),
    ]
    .map(|r| r.unwrap_err().code());
    assert_eq!(refused, [ErrorCode::Forbidden, ErrorCode::SessionExpired]);
    w.hub.disconnect(&alice.at, Disconnect::Closed, w.now);
    assert_eq!(
        w.hub
            .check_owner(session.as_str(), "alice")
            .unwrap_err()
            .code(),
        ErrorCode::SessionExpired
    );
}

#[test]
fn posted_messages_take_the_one_path_and_their_errors_go_on_the_stream() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let frame = json!({"type": "message", "room": "r1", "to": "bob", "seq": 10, "id": "p", "payload": {"n": 1}});
    assert!(post(&mut w, &mut alice, frame.clone()).is_ok());
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["message"]);
    assert_eq!(got[0].from.as_deref(), Some("alice"));
    assert_eq!(got[0].id.as_deref(), Some("p"));
    // The replay guard is the session's, whichever way its frames come.
    w.send(&mut alice, json!({"type": "ping", "seq": 11}));
    assert_eq!(kinds(&w.drain(&mut alice)), ["pong"]);
    let Err(Refusal::Reply(error)) = post(&mut w, &mut alice, frame) else {
        panic!("a repeated seq must be refused");
    };
    let session = alice.session();
    w.hub.reply_to(session.as_str(), *error, w.now);
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["error"]);
    assert_eq!(code(&got[0]), "duplicate_seq");
    assert_eq!(got[0].id.as_deref(), Some("p"));
    w.assert_quiet(&mut bob);
    // For a session that is gone, a posted frame is dropped and a reply goes nowhere.
    assert!(
        w.hub
            .receive_posted("nosuchsession", "alice", "{}", w.now)
            .is_ok()
    );
    w.hub
        .reply_to("nosuchsession", ServerMessage::new(ServerBody::Pong), w.now);
    w.assert_quiet(&mut alice);
}

#[test]
fn a_posted_message_keeps_the_attached_stream_alive_and_another_users_is_dropped() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.advance(secs(30));
    assert!(post(&mut w, &mut alice, json!({"type": "ping"})).is_ok());
    assert_eq!(kinds(&w.drain(&mut alice)), ["pong"]);
    w.hub.heard_from(&bob.at, w.now);
    w.advance(secs(30));
    w.hub.heard_from(&bob.at, w.now);
    w.tick();
    assert_eq!(
        w.hub.stats().attached,
        2,
        "the post counted as the stream's activity"
    );
    // A frame posted for alice's session by another user is not acted on.
    let text = w.frame(&mut bob, message_to("bob", "spoofed"));
    let session = alice.session();
    assert!(
        w.hub
            .receive_posted(session.as_str(), "bob", &text, w.now)
            .is_ok()
    );
    w.assert_quiet(&mut bob);
    w.assert_quiet(&mut alice);
}

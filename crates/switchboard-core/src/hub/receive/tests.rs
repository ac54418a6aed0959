//! Tests of the one path of a client message: `ping`, the `seq` replay guard, the `ts` clock
//! window, frames that fail to parse or validate (each with its documented code, echoed `id`, and
//! its seq used up), and a `from` that claims another peer.

use serde_json::json;
use switchboard_protocol::{ErrorCode, Limits, Role};

use crate::{
    CoreConfig, Event,
    hub::testkit::{World, code, kinds, message_to, pair, trio},
};

#[test]
fn ping_answers_pong_with_the_id_echoed() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    w.send(&mut alice, json!({"type": "ping", "id": "p-1"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["pong"]);
    assert_eq!(got[0].id.as_deref(), Some("p-1"));
    assert_eq!(got[0].room, None);
    assert_eq!(got[0].payload, json!({}));
    w.send(&mut alice, json!({"type": "ping"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["pong"]);
    assert_eq!(got[0].id, None);
}

#[test]
fn duplicate_seq_is_refused_and_nothing_is_relayed_twice() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let frame = json!({"type": "message", "room": "r1", "to": "bob", "seq": 5, "id": "d", "payload": {"n": 1}});
    w.send(&mut alice, frame.clone());
    assert_eq!(kinds(&w.drain(&mut bob)), ["message"]);
    // The very same frame again, and an older seq.
    let e = w.reject(&mut alice, frame);
    assert_eq!(code(&e), "duplicate_seq");
    assert_eq!(e.id.as_deref(), Some("d"));
    assert_eq!(e.room, None, "envelope-level errors carry no room");
    assert_eq!(e.payload["client_seq"], 5);
    assert_eq!(e.payload["type"], "message");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 4, "id": "old"}));
    assert_eq!(code(&e), "duplicate_seq");
    assert_eq!(e.id.as_deref(), Some("old"));
    // Even an invalid frame with an old seq is reported as the duplicate it is.
    let e = w.reject(&mut alice, json!({"type": "zap", "seq": 3}));
    assert_eq!(code(&e), "duplicate_seq");
    w.assert_quiet(&mut bob);
    // Seqs may skip; the guard only needs them to rise.
    w.send(
        &mut alice,
        json!({"type": "message", "room": "r1", "to": "bob", "seq": 50, "payload": {"n": 2}}),
    );
    assert_eq!(kinds(&w.drain(&mut bob)), ["message"]);
}

#[test]
fn stale_ts_outside_the_window_in_both_directions() {
    let mut w = World::new(); // 60 s window
    let (mut alice, mut bob) = pair(&mut w);
    let now = w.now.unix_ms;
    for ts in [now - 60_001, now + 60_001, 0] {
        let seq = alice.next_seq;
        let e = w.reject(&mut alice, {
            let mut f = message_to("bob", "s");
            f["ts"] = ts.into();
            f
        });
        assert_eq!(code(&e), "stale_ts", "ts {ts}");
        assert_eq!(e.id.as_deref(), Some("s"));
        assert_eq!(e.room, None);
        assert_eq!(e.payload["type"], "message");
        assert_eq!(e.payload["client_seq"], seq);
    }
    w.assert_quiet(&mut bob);
    // The edges of the window are accepted.
    for ts in [now - 60_000, now + 60_000] {
        let mut f = message_to("bob", "ok");
        f["ts"] = ts.into();
        w.send(&mut alice, f);
        assert_eq!(kinds(&w.drain(&mut bob)), ["message"]);
    }
    // A stale frame still used up its seq.
    let seq = alice.next_seq;
    let e = w.reject(
        &mut alice,
        json!({"type": "ping", "seq": seq, "ts": now + 100_000}),
    );
    assert_eq!(code(&e), "stale_ts");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": seq}));
    assert_eq!(code(&e), "duplicate_seq");
}

#[test]
fn invalid_frames_get_their_documented_code_echo_id_and_use_up_their_seq() {
    let mut w = World::with(CoreConfig {
        limits: Limits {
            max_sdp_bytes: 16,
            max_frame_bytes: 1_000,
            ..Limits::default()
        },
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);

    // Not JSON: nothing readable, so nothing echoed.
    let e = w.reject_text(&mut alice, "{nope");
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(e.id, None);
    assert_eq!(e.payload.get("client_seq"), None);

    // Unknown type.
    let e = w.reject(&mut alice, json!({"type": "zap", "seq": 10, "id": "z"}));
    assert_eq!(code(&e), "unknown_type");
    assert_eq!(e.id.as_deref(), Some("z"));
    assert_eq!(e.payload["client_seq"], 10);
    assert_eq!(e.payload["type"], "zap");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 10}));
    assert_eq!(code(&e), "duplicate_seq");

    // A field over its limit.
    let e = w.reject(
        &mut alice,
        json!({"type": "offer", "room": "r1", "to": "bob", "seq": 20, "id": "big", "payload": {"sdp": "x".repeat(17)}}),
    );
    assert_eq!(code(&e), "payload_too_large");
    assert_eq!(e.id.as_deref(), Some("big"));
    assert_eq!(e.room, None);
    assert_eq!(e.payload["type"], "offer");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 20}));
    assert_eq!(code(&e), "duplicate_seq");

    // A missing field.
    let e = w.reject(
        &mut alice,
        json!({"type": "offer", "room": "r1", "seq": 30, "id": "no-to", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(e.id.as_deref(), Some("no-to"));
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 30}));
    assert_eq!(code(&e), "duplicate_seq");

    // A whole frame over the limit cannot be read at all.
    let text = format!(
        r#"{{"type":"ping","seq":40,"ts":{},"id":"huge","pad":"{}"}}"#,
        w.now.unix_ms,
        "x".repeat(1_000)
    );
    let e = w.reject_text(&mut alice, &text);
    assert_eq!(code(&e), "payload_too_large");
    assert_eq!(e.id, None);

    // None of this relayed anything or hurt the connection.
    w.assert_quiet(&mut bob);
    w.send(
        &mut alice,
        json!({"type": "ping", "seq": 41, "id": "alive"}),
    );
    assert_eq!(w.drain(&mut alice)[0].id.as_deref(), Some("alive"));
    assert_eq!(w.hub.stats().attached, 2);
    let rejected: Vec<_> = w
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Rejected { code } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        [
            ErrorCode::InvalidMessage,
            ErrorCode::UnknownType,
            ErrorCode::DuplicateSeq,
            ErrorCode::PayloadTooLarge,
            ErrorCode::DuplicateSeq,
            ErrorCode::InvalidMessage,
            ErrorCode::DuplicateSeq,
            ErrorCode::PayloadTooLarge,
        ]
    );
}

#[test]
fn an_unknown_type_is_named_in_the_error_and_server_only_types_are_unknown() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    let e = w.reject(
        &mut alice,
        json!({"type": "zap", "room": "r1", "id": "u-1"}),
    );
    assert_eq!(code(&e), "unknown_type");
    assert_eq!(e.id.as_deref(), Some("u-1"));
    let message = e.payload["message"].as_str().unwrap();
    assert!(message.contains("zap"), "{message}");
    for kind in ["hello", "pong", "joined", "error"] {
        let e = w.reject(&mut alice, json!({"type": kind, "id": kind}));
        assert_eq!(code(&e), "unknown_type", "{kind}");
        assert_eq!(e.id.as_deref(), Some(kind));
    }
}

#[test]
fn every_refusal_is_one_numbered_error_that_explains_itself() {
    let mut w = World::with(CoreConfig {
        max_peers: 2,
        ..CoreConfig::default()
    });
    let (alice, mut bob) = pair(&mut w);
    w.join(&mut bob, "r2");
    let carol = w.open("carol", Role::Guest);
    let mut peers = [alice, bob, carol];
    let (alice, bob, carol) = (0, 1, 2);
    let sdp = json!({"sdp": "x".repeat(Limits::default().max_sdp_bytes + 1)});
    let cases = [
        ("unknown_type", alice, json!({"type": "zap"})),
        (
            "payload_too_large",
            alice,
            json!({"type": "offer", "room": "r1", "to": "bob", "payload": sdp}),
        ),
        (
            "forbidden",
            bob,
            json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
        ),
        ("not_in_room", carol, message_to("alice", "n")),
        ("unknown_peer", alice, message_to("nobody", "u")),
        (
            "room_full",
            carol,
            json!({"type": "join", "room": "r1", "payload": {"peer": "carol"}}),
        ),
        (
            "peer_taken",
            carol,
            json!({"type": "join", "room": "r2", "payload": {"peer": "bob"}}),
        ),
        ("duplicate_seq", alice, json!({"type": "ping", "seq": 1})),
        ("stale_ts", alice, json!({"type": "ping", "ts": 0})),
    ];
    for (expected, p, frame) in cases {
        let e = w.reject(&mut peers[p], frame);
        assert_eq!(code(&e), expected);
        assert_ne!(e.seq, 0, "{expected}: in-session errors are numbered");
        let message = e.payload["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{expected}: an error explains itself");
    }
    let e = w.reject_text(&mut peers[alice], "nope");
    assert_eq!(code(&e), "invalid_message");
    assert_ne!(e.seq, 0);
    assert!(!e.payload["message"].as_str().unwrap_or_default().is_empty());
}

#[test]
fn client_from_naming_another_peer_is_forbidden_and_own_from_is_accepted() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    let e = w.reject(
        &mut bob,
        json!({"type": "offer", "room": "r1", "to": "carol", "from": "alice", "id": "spoof", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("spoof"));
    assert_eq!(e.room.as_deref(), Some("r1"));
    assert_eq!(e.payload["type"], "offer");
    w.assert_quiet(&mut carol);
    w.assert_quiet(&mut alice);
    // Claiming one's own peer id is harmless; the server sets `from` either way.
    w.send(
        &mut bob,
        json!({"type": "offer", "room": "r1", "to": "carol", "from": "bob", "id": "own", "payload": {"sdp": "v=0"}}),
    );
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["offer"]);
    assert_eq!(got[0].from.as_deref(), Some("bob"));
    assert_eq!(got[0].id.as_deref(), Some("own"));
    w.assert_quiet(&mut bob);
    w.assert_quiet(&mut alice);
    // A session with no peer id yet may not claim any.
    let mut dave = w.open("dave", Role::Guest);
    let e = w.reject(&mut dave, json!({"type": "ping", "from": "dave"}));
    assert_eq!(code(&e), "forbidden");
}

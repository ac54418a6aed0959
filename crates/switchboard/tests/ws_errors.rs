//! The error answers over WebSocket that depend on the server, end to end: frames as the socket
//! delivers them (malformed text, a binary frame), a frame between `max_frame_bytes` and the
//! transport's hard cap, grants taken from the token and `max_rooms_per_session` from the server's
//! settings, a refused resume (one `error` with seq 0, then close 4004), and a frame over the hard
//! cap (close 1009). Each in-session refusal is one `error` (with the request's `id` echoed when it
//! could be read) and the connection stays open, which the ping barrier after it proves.
//!
//! The codes that only the hub's rules decide (`unknown_type`, `not_in_room`, `unknown_peer`,
//! `room_full`, `peer_taken`, `duplicate_seq`, `stale_ts`) are tested where they are owned, in
//! `switchboard-core`'s `hub/<module>/tests.rs`, and over every pair of transports by the
//! `errors` scenario of `conformance/`.

use futures_util::SinkExt;
use serde_json::{Value, json};
use switchboard_protocol::{Limits, Role};
use switchboard_testkit::{Client, TestServer, unix_ms};
use tokio_tungstenite::tungstenite::Message;

/// Sends `text`, expects one `error` with `code` (which explains itself), then proves the
/// connection is still open and nothing else was queued.
async fn refused(c: &mut Client, text: &str, code: &str) -> Value {
    c.send_text(text).await;
    let error = c.expect_error(code).await;
    assert_ne!(error.seq, 0, "in-session errors are numbered");
    c.expect_quiet().await;
    serde_json::to_value(&error).unwrap()
}

/// The next client `seq` and the current time, for hand-written frames.
fn next(c: &mut Client) -> (u64, u64) {
    (c.next_seq(), unix_ms())
}

/// Two members of `r1`: alice (host) and bob (guest), with the announcements read.
async fn pair(server: &TestServer) -> (Client, Client) {
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    (alice, bob)
}

#[tokio::test]
async fn invalid_message_for_malformed_frames_keeps_the_connection_open() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(&server).await;

    // Not JSON, not an object: nothing is readable, so nothing is echoed.
    for text in ["nope", "[1,2]", "{\"type\":\"ping\"", "", "null"] {
        let e = refused(&mut alice, text, "invalid_message").await;
        assert!(e.get("id").is_none(), "{e}");
    }

    // Missing or bad envelope fields; the id is still echoed.
    let cases = [
        json!({"type": "ping", "id": "no-seq"}),
        json!({"type": "ping", "seq": 0, "id": "seq-zero"}),
        json!({"type": "ping", "seq": "7", "id": "seq-string"}),
        json!({"type": "ping", "seq": 1, "id": "no-ts"}),
        json!({"type": "ping", "seq": 1, "ts": -5, "id": "ts-negative"}),
        json!({"type": "ping", "seq": 1, "id": "type-number"}),
        json!({"type": "ping", "seq": 1, "id": "no-type"}),
    ];
    for mut case in cases {
        let id = case["id"].clone();
        if case["seq"] == 1 {
            case["seq"] = next(&mut alice).0.into();
        }
        if id != "no-ts" && case.get("ts").is_none() {
            case["ts"] = unix_ms().into();
        }
        if id == "type-number" {
            case["type"] = 5.into();
        }
        if id == "no-type" {
            case.as_object_mut().unwrap().remove("type");
        }
        let e = refused(&mut alice, &case.to_string(), "invalid_message").await;
        assert_eq!(e["id"], id, "{e}");
    }

    // Envelope fine, body wrong.
    let (seq, ts) = next(&mut alice);
    let no_to = json!({"type": "offer", "room": "r1", "seq": seq, "ts": ts, "id": "no-to",
        "payload": {"sdp": "v=0"}});
    let e = refused(&mut alice, &no_to.to_string(), "invalid_message").await;
    assert_eq!(e["id"], "no-to");
    assert_eq!(e["payload"]["type"], "offer");
    assert_eq!(e["payload"]["client_seq"], seq);
    let bodies = [
        json!({"type": "offer", "room": "r1", "to": "bob", "payload": {"sdp": ""}}),
        json!({"type": "offer", "room": "r1", "to": "bob", "payload": {"sdp": 5}}),
        json!({"type": "offer", "room": "r1", "to": "bob"}),
        json!({"type": "join", "room": "bad room"}),
        json!({"type": "offer", "room": "r1", "to": "b@d", "payload": {"sdp": "v=0"}}),
        json!({"type": "message", "room": "r1", "payload": "not an object"}),
        json!({"type": "mode", "room": "r1", "payload": {"mode": "anarchy"}}),
        json!({"type": "call_start", "room": "r1", "to": "bob", "payload": {"call_id": ""}}),
        json!({"type": "join", "room": "r1", "payload": {"meta": [1]}}),
        // To yourself.
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    ];
    for mut body in bodies {
        let (seq, ts) = next(&mut alice);
        body["seq"] = seq.into();
        body["ts"] = ts.into();
        body["id"] = format!("body-{seq}").into();
        let e = refused(&mut alice, &body.to_string(), "invalid_message").await;
        assert_eq!(e["id"], format!("body-{seq}"), "{e}");
    }
    // A duplicate key is refused too.
    let (seq, ts) = next(&mut alice);
    let dup = format!(
        r#"{{"type":"ping","seq":{seq},"seq":{},"ts":{ts}}}"#,
        seq + 1
    );
    alice.seq += 1;
    refused(&mut alice, &dup, "invalid_message").await;

    // A binary frame.
    alice
        .ws
        .send(Message::Binary(br#"{"type":"ping"}"#.to_vec().into()))
        .await
        .unwrap();
    alice.expect_error("invalid_message").await;
    alice.expect_quiet().await;
    bob.expect_quiet().await;

    // A peer id is fixed for the session: asking for another one in a second room is refused.
    let mut multi = server.client("multi", "r*", Role::Guest).await;
    multi.join("r2", "multi").await;
    let join = multi
        .msg("join")
        .room("r3")
        .id("rename")
        .payload(json!({"peer": "other"}));
    let e = refused(&mut multi, &join.to_json(), "invalid_message").await;
    assert_eq!(e["id"], "rename");
}

#[tokio::test]
async fn payload_too_large_for_the_frame_and_every_field() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(&server).await;
    let limits = Limits::default();
    let big = |n: usize| "x".repeat(n);

    // A frame over max_frame_bytes but under the hard cap: refused, the connection stays open.
    let (seq, ts) = next(&mut alice);
    let frame = format!(
        r#"{{"type":"message","room":"r1","seq":{seq},"ts":{ts},"id":"frame","payload":{{"pad":"{}"}}}}"#,
        big(limits.max_frame_bytes + 1)
    );
    assert!(frame.len() < 256 * 1024);
    let e = refused(&mut alice, &frame, "payload_too_large").await;
    assert!(e.get("id").is_none(), "the frame is not read at all: {e}");

    let cases = [
        (
            "sdp",
            json!({"type": "offer", "to": "bob", "payload": {"sdp": big(limits.max_sdp_bytes + 1)}}),
        ),
        (
            "candidate",
            json!({"type": "candidate", "to": "bob",
                "payload": {"candidate": big(limits.max_candidate_bytes + 1)}}),
        ),
        (
            "sdp_mid",
            json!({"type": "candidate", "to": "bob",
                "payload": {"candidate": "", "sdp_mid": big(limits.max_token_bytes + 1)}}),
        ),
        (
            "meta",
            json!({"type": "join", "payload": {"peer": "alice",
                "meta": {"m": big(limits.max_meta_bytes)}}}),
        ),
        (
            "message",
            json!({"type": "message", "payload": {"m": big(limits.max_message_bytes)}}),
        ),
        (
            "call_id",
            json!({"type": "call_start", "to": "bob",
                "payload": {"call_id": big(limits.max_token_bytes + 1)}}),
        ),
        (
            "reason",
            json!({"type": "call_end", "to": "bob",
                "payload": {"call_id": "c", "reason": big(limits.max_token_bytes + 1)}}),
        ),
    ];
    for (what, mut env) in cases {
        let (seq, ts) = next(&mut alice);
        env["room"] = "r1".into();
        env["seq"] = seq.into();
        env["ts"] = ts.into();
        env["id"] = what.into();
        let e = refused(&mut alice, &env.to_string(), "payload_too_large").await;
        assert_eq!(e["id"], what);
        assert_eq!(e["payload"]["client_seq"], seq);
    }
    // An over-long id cannot be echoed.
    let (seq, ts) = next(&mut alice);
    let long_id =
        json!({"type": "ping", "seq": seq, "ts": ts, "id": big(limits.max_token_bytes + 1)});
    let e = refused(&mut alice, &long_id.to_string(), "payload_too_large").await;
    assert!(e.get("id").is_none());

    // At the limits, everything passes.
    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .payload(json!({"sdp": big(limits.max_sdp_bytes)}));
    alice.send(offer).await;
    let got = bob.expect("offer").await;
    assert_eq!(
        got.payload["sdp"].as_str().unwrap().len(),
        limits.max_sdp_bytes
    );
    bob.expect_quiet().await;
}

#[tokio::test]
async fn forbidden_for_grants_roles_modes_spoofing_and_room_count() {
    let server = TestServer::start_with(|c| c.max_rooms_per_session = 2).await;
    let (mut alice, mut bob) = pair(&server).await;

    // A room outside the token's grant.
    let join = bob
        .msg("join")
        .room("r2")
        .id("grant")
        .payload(json!({"peer": "bob"}));
    let e = refused(&mut bob, &join.to_json(), "forbidden").await;
    assert_eq!(e["id"], "grant");
    assert_eq!(e["room"], "r2");
    // Host-only actions.
    let mode = bob
        .msg("mode")
        .room("r1")
        .id("mode")
        .payload(json!({"mode": "host_only"}));
    assert_eq!(
        refused(&mut bob, &mode.to_json(), "forbidden").await["id"],
        "mode"
    );
    let kick = bob
        .msg("kick")
        .room("r1")
        .id("kick")
        .payload(json!({"peer": "alice"}));
    assert_eq!(
        refused(&mut bob, &kick.to_json(), "forbidden").await["id"],
        "kick"
    );
    // A spoofed `from`.
    let (seq, ts) = next(&mut bob);
    let spoof = json!({"type": "message", "room": "r1", "seq": seq, "ts": ts, "from": "alice",
        "id": "spoof", "payload": {}});
    assert_eq!(
        refused(&mut bob, &spoof.to_string(), "forbidden").await["id"],
        "spoof"
    );
    // A guest broadcasting in host_only mode.
    let mode = alice
        .msg("mode")
        .room("r1")
        .payload(json!({"mode": "host_only"}));
    alice.send(mode).await;
    alice.expect("mode_changed").await;
    bob.expect("mode_changed").await;
    let all = bob.msg("message").room("r1").id("bc").payload(json!({}));
    assert_eq!(
        refused(&mut bob, &all.to_json(), "forbidden").await["id"],
        "bc"
    );
    alice.expect_quiet().await;

    // More rooms than max_rooms_per_session.
    let mut multi = server.client("multi", "m*", Role::Guest).await;
    multi.join("m1", "multi").await;
    multi.join("m2", "multi").await;
    let join = multi.msg("join").room("m3").id("third");
    let e = refused(&mut multi, &join.to_json(), "forbidden").await;
    assert_eq!(e["id"], "third");
}

#[tokio::test]
async fn a_refused_resume_is_one_error_with_seq_0_then_close_4004() {
    let server = TestServer::start().await;
    let token = server.token("alice", "r1", Role::Host);

    // An unknown session.
    let url = format!(
        "{}?token={token}&resume=AAAAAAAAAAAAAAAAAAAAAA&last_seq=3",
        server.ws_url()
    );
    let mut c = Client::connect_raw(&url).await;
    let e = c.expect_error("session_expired").await;
    assert_eq!(e.seq, 0);
    assert!(!e.payload["message"].as_str().unwrap().is_empty());
    let close = c.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4004);

    // A last_seq above anything the server sent.
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let url = format!(
        "{}?token={token}&resume={}&last_seq={}",
        server.ws_url(),
        alice.session,
        alice.last_seq + 100
    );
    let mut c = Client::connect_raw(&url).await;
    let e = c.expect_error("invalid_message").await;
    assert_eq!(e.seq, 0);
    let close = c.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4004);
    // The session itself was not disturbed.
    alice.expect_quiet().await;
}

#[tokio::test]
async fn a_frame_over_the_hard_cap_closes_1009_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = pair(&server).await;
    let hard_cap = (Limits::default().max_frame_bytes * 4).max(256 * 1024);

    let huge = format!(
        r#"{{"type":"ping","seq":99,"ts":{},"pad":"{}"}}"#,
        unix_ms(),
        "x".repeat(hard_cap)
    );
    // The server may close before it has read all of it, so the write itself may fail.
    let _ = alice.ws.send(Message::Text(huge.into())).await;
    let close = alice.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1009);

    // Others are unaffected, and new clients get in.
    bob.expect_quiet().await;
    let offer = bob
        .msg("offer")
        .room("r1")
        .to("alice")
        .payload(json!({"sdp": "v=0"}));
    bob.send(offer).await;
    bob.expect_quiet().await;
    let mut carol = server.joined("carol", "r1", Role::Guest, "carol").await;
    assert_eq!(bob.expect("peer_joined").await.payload["peer"], "carol");
    carol.expect_quiet().await;
}

//! What members send each other: every relayed type delivered verbatim, and every error a
//! message can earn.

use serde_json::json;
use switchboard_protocol::{ClientEnvelope, Role};
use switchboard_testkit::{Transport, any_client::accepted, unix_ms};

use crate::harness::*;

/// Every relayed type, targeted and broadcast, delivered verbatim to its recipients only.
pub async fn relay_all_types(a: Transport, b: Transport) -> Transcript {
    let server = server(|_| {}).await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;
    let mut carol = joined(&server, a, "carol", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "carol", None).await;
    expect_peer(&mut bob, "peer_joined", "carol", None).await;

    let sdp = "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    relay(
        &mut alice,
        &mut bob,
        "offer",
        Some("o-1"),
        json!({"type": "offer", "sdp": sdp}),
    )
    .await;
    relay(
        &mut bob,
        &mut alice,
        "answer",
        None,
        json!({"type": "answer", "sdp": sdp}),
    )
    .await;
    relay(
        &mut alice,
        &mut bob,
        "call_start",
        Some("c-1"),
        json!({"call_id": "call-1"}),
    )
    .await;

    // Candidates, the last one the end-of-candidates marker, in one batch.
    let candidates = [
        json!({"candidate": "candidate:1 1 udp 2122260223 192.0.2.10 54400 typ host", "sdp_mid": "0", "sdp_m_line_index": 0}),
        json!({"candidate": "candidate:2 1 udp 1686052607 198.51.100.7 61000 typ srflx", "sdp_mid": "0", "sdp_m_line_index": 0, "username_fragment": "uf"}),
        json!({"candidate": "", "sdp_mid": "0", "sdp_m_line_index": 0}),
    ];
    let batch: Vec<ClientEnvelope> = candidates
        .iter()
        .map(|p| {
            bob.msg("candidate")
                .room(ROOM)
                .to("alice")
                .payload(p.clone())
        })
        .collect();
    for answer in bob.send_batch(batch).await {
        accepted(&answer);
    }
    for p in &candidates {
        let got = alice.expect("candidate").await;
        assert_eq!(got.from.as_deref(), Some("bob"));
        assert_eq!(&got.payload, p);
    }

    relay(
        &mut bob,
        &mut alice,
        "call_end",
        None,
        json!({"call_id": "call-1", "reason": "hangup"}),
    )
    .await;
    relay(
        &mut alice,
        &mut carol,
        "message",
        Some("m-1"),
        json!({"text": "hi carol", "nested": {"list": [1, 2.5, null, "x"]}}),
    )
    .await;

    // A broadcast reaches every member but the sender.
    let env = bob
        .msg("message")
        .room(ROOM)
        .id("all")
        .payload(json!({"text": "hello everyone"}));
    bob.send_ok(env).await;
    for c in [&mut alice, &mut carol] {
        let got = c.expect("message").await;
        assert_eq!(got.from.as_deref(), Some("bob"));
        assert_eq!(got.id.as_deref(), Some("all"));
        assert_eq!(got.payload, json!({"text": "hello everyone"}));
    }

    // `ack` has no answer.
    alice.ack().await;
    carol.ack().await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_quiet().await;
    }
    transcript(&[&alice, &bob, &carol])
}

/// Every error code a message can earn, answered on the stream (and in the POST answer).
pub async fn errors(a: Transport, b: Transport) -> Transcript {
    let server = server(|c| c.max_peers = 2).await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    // invalid_message: not JSON (consumes no seq), a missing `to`, a message to yourself.
    let e = alice.send_text_refused("{oops", "invalid_message").await;
    assert!(e.payload.get("client_seq").is_none(), "{e:?}");
    let env = alice.msg("offer").room(ROOM).payload(json!({"sdp": "v=0"}));
    let e = alice.send_refused(env, "invalid_message").await;
    assert_eq!(e.payload["client_seq"], alice.seq);
    assert_eq!(e.payload["type"], "offer");
    let env = chat(&mut alice, Some("alice"), 0);
    alice.send_refused(env, "invalid_message").await;

    // unknown_type.
    let env = alice.msg("teleport").room(ROOM).id("t-1");
    let e = alice.send_refused(env, "unknown_type").await;
    assert_eq!(e.id.as_deref(), Some("t-1"));

    // payload_too_large: a field over its limit, and a frame over max_frame_bytes.
    let env = alice
        .msg("candidate")
        .room(ROOM)
        .to("bob")
        .payload(json!({"candidate": "x".repeat(2000)}));
    alice.send_refused(env, "payload_too_large").await;
    let env = chat(&mut alice, Some("bob"), 0).payload(json!({"blob": "y".repeat(70_000)}));
    alice.send_refused(env, "payload_too_large").await;

    // forbidden: a room outside the grant, a `from` naming another peer.
    let env = alice.msg("join").room("lobby");
    alice.send_refused(env, "forbidden").await;
    let seq = alice.next_seq();
    let forged = json!({"type": "message", "room": ROOM, "seq": seq, "ts": unix_ms(), "from": "bob", "payload": {}});
    alice
        .send_text_refused(&forged.to_string(), "forbidden")
        .await;

    // not_in_room, unknown_peer (with the room set on the error).
    let env = alice
        .msg("offer")
        .room("room-2")
        .to("bob")
        .payload(json!({"sdp": "v=0"}));
    let e = alice.send_refused(env, "not_in_room").await;
    assert_eq!(e.room.as_deref(), Some("room-2"));
    let env = alice
        .msg("offer")
        .room(ROOM)
        .to("zed")
        .id("x")
        .payload(json!({"sdp": "v=0"}));
    let e = alice.send_refused(env, "unknown_peer").await;
    assert_eq!(e.room.as_deref(), Some(ROOM));
    assert_eq!(e.id.as_deref(), Some("x"));

    // duplicate_seq (not consumed), stale_ts (consumed).
    let env = ClientEnvelope::new("ping", alice.seq, unix_ms());
    let e = alice.send_refused(env, "duplicate_seq").await;
    assert_eq!(e.payload["client_seq"], alice.seq);
    let env = ClientEnvelope::new("ping", alice.next_seq(), unix_ms() - 120_000);
    alice.send_refused(env, "stale_ts").await;
    let env = ClientEnvelope::new("ping", alice.seq, unix_ms());
    alice.send_refused(env, "duplicate_seq").await;

    // forbidden for a guest in host_only mode, and for a guest's `mode`.
    let env = alice
        .msg("mode")
        .room(ROOM)
        .id("m")
        .payload(json!({"mode": "host_only"}));
    alice.send_ok(env).await;
    assert_eq!(
        alice.expect("mode_changed").await.payload["mode"],
        "host_only"
    );
    assert_eq!(bob.expect("mode_changed").await.payload["by"], "alice");
    let env = chat(&mut bob, None, 1);
    bob.send_refused(env, "forbidden").await;
    let env = bob
        .msg("mode")
        .room(ROOM)
        .payload(json!({"mode": "free_for_all"}));
    bob.send_refused(env, "forbidden").await;
    let env = bob.msg("kick").room(ROOM).payload(json!({"peer": "alice"}));
    bob.send_refused(env, "forbidden").await;
    let env = chat(&mut bob, Some("zed"), 2);
    bob.send_refused(env, "unknown_peer").await;

    // peer_taken and room_full (max_peers = 2).
    let mut carol = client(&server, a, "carol", Role::Guest).await;
    let env = carol
        .msg("join")
        .room(ROOM)
        .payload(json!({"peer": "alice"}));
    carol.send_refused(env, "peer_taken").await;
    let env = carol
        .msg("join")
        .room(ROOM)
        .payload(json!({"peer": "carol"}));
    let e = carol.send_refused(env, "room_full").await;
    assert_eq!(e.room.as_deref(), Some(ROOM));

    // A batch is handled in order, message by message.
    let batch = vec![
        chat(&mut alice, Some("bob"), 10),
        alice.msg("teleport"),
        chat(&mut alice, Some("bob"), 11),
    ];
    let answers = alice.send_batch(batch).await;
    let e = alice.expect_error("unknown_type").await;
    if a != Transport::Ws {
        accepted(&answers[0]);
        accepted(&answers[2]);
        let refused = answers[1].as_ref().unwrap();
        assert_eq!(refused["accepted"], false);
        assert_eq!(refused["error"], e.payload);
    }
    expect_chat(&mut bob, "alice", 10).await;
    expect_chat(&mut bob, "alice", 11).await;

    // None of it reached anyone else, and every connection is still healthy.
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_quiet().await;
    }
    transcript(&[&alice, &bob, &carol])
}

//! What the room and relay rules come to on a real socket where the server, not the hub, has the
//! last word: each message type relayed byte for byte as the recipient's socket sees it, `pong`
//! stamped with the server's clock, an idle room closed by the server's timer task, and the
//! token's `name` shown to the other members.
//!
//! The rules themselves (join and leave, relay, room isolation, modes, kick, replace, capacity,
//! peer ids) are tested once where they are owned, in `switchboard-core`'s
//! `hub/<module>/tests.rs`, and over every pair of transports in `conformance/`.
//!
//! Silence is always proven with the ping barrier (`expect_quiet`), never with a sleep.

use serde_json::{Value, json};
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, TestServer,
    tokens::{self, TTL},
    unix_ms,
};

/// Sends `payload` as raw JSON text, so the test controls every byte the server must relay.
async fn send_raw(c: &mut Client, kind: &str, to: &str, id: &str, payload: &str) {
    let seq = c.next_seq();
    let text = format!(
        r#"{{"type":"{kind}","room":"r1","seq":{seq},"ts":{},"to":"{to}","id":"{id}","payload":{payload}}}"#,
        unix_ms()
    );
    c.send_text(&text).await;
}

/// Receives a relayed message and checks the envelope the server built around the payload.
async fn expect_relayed(c: &mut Client, kind: &str, from: &str, id: &str, payload: &str) {
    let (text, env) = c.recv_text().await;
    assert_eq!(env.kind, kind, "{text}");
    assert_eq!(env.room.as_deref(), Some("r1"), "{text}");
    assert_eq!(
        env.from.as_deref(),
        Some(from),
        "`from` is set by the server: {text}"
    );
    assert_eq!(env.id.as_deref(), Some(id), "`id` is relayed: {text}");
    let raw: Value = serde_json::from_str(&text).unwrap();
    assert!(
        raw.get("to").is_none(),
        "server messages carry no `to`: {text}"
    );
    assert!(
        text.ends_with(&format!(r#""payload":{payload}}}"#)),
        "payload relayed byte for byte:\n sent {payload}\n got {text}"
    );
}

#[tokio::test]
async fn every_signal_type_is_relayed_verbatim_to_its_target_only() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let mut carol = server.joined("carol", "r1", Role::Guest, "carol").await;
    alice.expect("peer_joined").await;
    alice.expect("peer_joined").await;
    bob.expect("peer_joined").await;

    // Odd spacing, key order, extra fields, escapes and number spellings must all survive.
    let cases: [(&str, &str); 7] = [
        (
            "offer",
            r#"{ "sdp" : "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\n", "type":"offer", "x":[1, 2.50, null]}"#,
        ),
        (
            "answer",
            r#"{"type":"answer","sdp":"v=0\r\na=ice-ufrag:F7gI\r\na=fingerprint:sha-256 AB:CD\r\n"}"#,
        ),
        (
            "candidate",
            r#"{"candidate":"candidate:842163049 1 udp 1677729535 192.0.2.3 46154 typ srflx raddr 10.0.0.1 rport 46154","sdp_mid":"0","sdp_m_line_index":0,"username_fragment":"F7gI"}"#,
        ),
        (
            "candidate",
            r#"{"candidate":"","sdp_mid":"0","sdp_m_line_index":0}"#,
        ),
        ("call_start", r#"{"call_id":"call-1","video":true}"#),
        (
            "call_end",
            r#"{"call_id":"call-1","reason":"hangup","stats":{"ms":1e3}}"#,
        ),
        (
            "message",
            r#"{"text":"h\u00e9llo \"w\u00f6rld\" \ud83d\ude00 ✓","n":-0.0}"#,
        ),
    ];
    for (i, (kind, payload)) in cases.iter().enumerate() {
        let id = format!("a-{i}");
        send_raw(&mut alice, kind, "bob", &id, payload).await;
        expect_relayed(&mut bob, kind, "alice", &id, payload).await;
        // And the other way round.
        let id = format!("b-{i}");
        send_raw(&mut bob, kind, "alice", &id, payload).await;
        expect_relayed(&mut alice, kind, "bob", &id, payload).await;
    }
    // Nothing echoed to the senders, nothing to the bystander.
    alice.expect_quiet().await;
    bob.expect_quiet().await;
    carol.expect_quiet().await;

    // A relay without `id` carries none.
    let offer = alice
        .msg("offer")
        .room("r1")
        .to("carol")
        .payload(json!({"sdp": "v=0"}));
    alice.send(offer).await;
    let got = carol.expect("offer").await;
    assert_eq!(got.id, None);
    assert_eq!(got.from.as_deref(), Some("alice"));
    bob.expect_quiet().await;
}

#[tokio::test]
async fn ping_is_answered_with_pong_echoing_the_id() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice", "r1", Role::Host).await;
    let ping = alice.msg("ping").id("p-1");
    alice.send(ping).await;
    let pong = alice.expect("pong").await;
    assert_eq!(pong.id.as_deref(), Some("p-1"));
    assert_eq!(pong.payload, json!({}));
    assert_eq!(pong.room, None);
    assert!(pong.ts.abs_diff(unix_ms()) < 60_000);
    let ping = alice.msg("ping");
    alice.send(ping).await;
    let pong = alice.expect("pong").await;
    assert_eq!(pong.id, None);
    // In a room too, and it tells nobody else.
    alice.join("r1", "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    let ping = alice.msg("ping").id("p-2");
    alice.send(ping).await;
    assert_eq!(alice.expect("pong").await.id.as_deref(), Some("p-2"));
    bob.expect_quiet().await;
}

#[tokio::test]
async fn an_idle_room_is_closed_and_its_members_stay_connected() {
    let server = TestServer::start_with(|c| c.room_idle_ms = 300).await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    // Nobody says anything: the idle timer closes the room (recv waits for it, bounded).
    for c in [&mut alice, &mut bob] {
        let closed = c.expect("room_closed").await;
        assert_eq!(closed.room.as_deref(), Some("r1"));
        assert_eq!(closed.payload, json!({"reason": "idle"}));
    }
    // The sessions go on, out of the room; the room starts afresh on the next join.
    let offer = bob
        .msg("offer")
        .room("r1")
        .to("alice")
        .payload(json!({"sdp": "v=0"}));
    bob.send(offer).await;
    bob.expect_error("not_in_room").await;
    let joined = alice.join("r1", "alice").await;
    assert_eq!(joined.payload["peers"], json!([]));
    bob.expect_quiet().await;
}

#[tokio::test]
async fn the_token_name_is_shown_to_the_other_members() {
    let server = TestServer::start().await;
    let named = tokens::signer()
        .mint("alice", "r1", Role::Host, Some("Alice A.".into()), TTL)
        .unwrap();
    let mut alice = Client::connect(&format!("{}?token={named}", server.ws_url())).await;
    alice.join("r1", "alice").await;
    let mut bob = server.client("bob", "r1", Role::Guest).await;
    let joined = bob.join("r1", "bob").await;
    assert_eq!(joined.payload["peers"][0]["name"], "Alice A.");
    let announced = alice.expect("peer_joined").await;
    assert!(announced.payload.get("name").is_none(), "bob has no name");
    let leave = alice.msg("leave").room("r1");
    alice.send(leave).await;
    alice.expect("left").await;
    bob.expect("peer_left").await;
    alice.join("r1", "alice").await;
    let announced = bob.expect("peer_joined").await;
    assert_eq!(announced.payload["name"], "Alice A.");
    assert_eq!(announced.payload["role"], "host");
}

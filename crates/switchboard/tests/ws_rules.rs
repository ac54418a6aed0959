//! Every room and relay rule end to end, over real sockets against a real server: join and leave
//! (idempotent), relay of each message type (`from` set by the server, payload byte for byte, `id`
//! relayed), room isolation, modes, kick, replace, capacity, peer ids and ping.
//!
//! Silence is always proven with the ping barrier (`expect_quiet`), never with a sleep.

use serde_json::{Value, json};
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, TestServer,
    tokens::{self, TTL},
    unix_ms,
};

/// `meta` of a peer entry, `null` when absent.
fn meta(entry: &Value) -> Value {
    entry.get("meta").cloned().unwrap_or(Value::Null)
}

/// Sends `payload` as raw JSON text, so the test controls every byte the server must relay.
async fn send_raw(c: &mut Client, kind: &str, to: Option<&str>, id: &str, payload: &str) {
    let seq = c.next_seq();
    let to = to.map(|t| format!(r#","to":"{t}""#)).unwrap_or_default();
    let text = format!(
        r#"{{"type":"{kind}","room":"r1","seq":{seq},"ts":{}{to},"id":"{id}","payload":{payload}}}"#,
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
async fn join_answers_joined_and_announces_and_a_second_join_tells_nobody() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice", "r1", Role::Host).await;
    let join = alice
        .msg("join")
        .room("r1")
        .id("j-1")
        .payload(json!({"peer": "alice", "meta": {"cam": true, "mic": [1, 2]}}));
    alice.send(join).await;
    let joined = alice.expect("joined").await;
    assert_eq!(joined.room.as_deref(), Some("r1"));
    assert_eq!(joined.id.as_deref(), Some("j-1"));
    assert_eq!(joined.payload["peer"], "alice");
    assert_eq!(joined.payload["role"], "host");
    assert_eq!(joined.payload["mode"], "free_for_all");
    assert_eq!(joined.payload["peers"], json!([]));
    assert_eq!(joined.payload["ice_servers"], json!([]));

    let mut bob = server.client("bob", "r1", Role::Guest).await;
    let joined = bob.join("r1", "bob").await;
    assert_eq!(joined.payload["peer"], "bob");
    assert_eq!(joined.payload["role"], "guest");
    let peers = joined.payload["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["peer"], "alice");
    assert_eq!(peers[0]["role"], "host");
    assert_eq!(meta(&peers[0]), json!({"cam": true, "mic": [1, 2]}));

    let announced = alice.expect("peer_joined").await;
    assert_eq!(announced.room.as_deref(), Some("r1"));
    assert_eq!(announced.from, None);
    assert_eq!(announced.payload["peer"], "bob");
    assert_eq!(announced.payload["role"], "guest");
    assert_eq!(meta(&announced.payload), Value::Null);

    // The second join of the same room answers `joined` again (with the id) and tells nobody.
    let again = bob
        .msg("join")
        .room("r1")
        .id("j-again")
        .payload(json!({"peer": "bob"}));
    bob.send(again).await;
    let joined = bob.expect("joined").await;
    assert_eq!(joined.id.as_deref(), Some("j-again"));
    assert_eq!(joined.payload["peer"], "bob");
    assert_eq!(joined.payload["peers"][0]["peer"], "alice");
    assert_eq!(joined.payload["peers"].as_array().unwrap().len(), 1);
    // A join without a payload is idempotent too.
    let bare = bob.msg("join").room("r1");
    bob.send(bare).await;
    bob.expect("joined").await;
    alice.expect_quiet().await;
    bob.expect_quiet().await;

    // A join without a peer id gets a generated one, announced to everyone, in join order.
    let mut carol = server.client("carol", "r1", Role::Guest).await;
    let join = carol.msg("join").room("r1");
    carol.send(join).await;
    let joined = carol.expect("joined").await;
    let generated = joined.payload["peer"].as_str().unwrap().to_owned();
    assert_eq!(generated.len(), 12, "{generated}");
    assert!(generated.bytes().all(|b| b.is_ascii_alphanumeric()));
    let order: Vec<&str> = joined.payload["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["peer"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["alice", "bob"]);
    assert_eq!(
        joined.payload["peers"][1],
        json!({"peer": "bob", "role": "guest", "meta": null}),
        "a member without meta or name"
    );
    for c in [&mut alice, &mut bob] {
        let announced = c.expect("peer_joined").await;
        assert_eq!(announced.payload["peer"], generated.as_str());
        c.expect_quiet().await;
    }
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
        send_raw(&mut alice, kind, Some("bob"), &id, payload).await;
        expect_relayed(&mut bob, kind, "alice", &id, payload).await;
        // And the other way round.
        let id = format!("b-{i}");
        send_raw(&mut bob, kind, Some("alice"), &id, payload).await;
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
async fn a_message_without_to_is_broadcast_to_everyone_but_the_sender() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let mut carol = server.joined("carol", "r1", Role::Guest, "carol").await;
    alice.expect("peer_joined").await;
    alice.expect("peer_joined").await;
    bob.expect("peer_joined").await;

    let payload = r#"{"kind":"chat","text":"hi all","at":[1,2]}"#;
    send_raw(&mut bob, "message", None, "bc-1", payload).await;
    expect_relayed(&mut alice, "message", "bob", "bc-1", payload).await;
    expect_relayed(&mut carol, "message", "bob", "bc-1", payload).await;
    bob.expect_quiet().await;

    // A targeted message goes to its target only.
    let payload = r#"{"text":"just you"}"#;
    send_raw(&mut carol, "message", Some("alice"), "dm-1", payload).await;
    expect_relayed(&mut alice, "message", "carol", "dm-1", payload).await;
    bob.expect_quiet().await;
    carol.expect_quiet().await;
    alice.expect_quiet().await;
}

#[tokio::test]
async fn from_is_set_by_the_server_and_a_spoofed_from_is_forbidden() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let mut carol = server.joined("carol", "r1", Role::Guest, "carol").await;
    alice.expect("peer_joined").await;
    alice.expect("peer_joined").await;
    bob.expect("peer_joined").await;

    alice.seq += 1;
    let spoof = json!({"type": "offer", "room": "r1", "seq": alice.seq, "ts": unix_ms(),
        "to": "bob", "from": "carol", "id": "spoof", "payload": {"sdp": "v=0"}});
    alice.send_text(&spoof.to_string()).await;
    let error = alice.expect_error("forbidden").await;
    assert_eq!(error.id.as_deref(), Some("spoof"));
    assert_eq!(error.payload["type"], "offer");
    bob.expect_quiet().await;
    carol.expect_quiet().await;

    // Claiming one's own peer id is harmless; the relay carries the server's `from` either way.
    alice.seq += 1;
    let own = json!({"type": "offer", "room": "r1", "seq": alice.seq, "ts": unix_ms(),
        "to": "bob", "from": "alice", "id": "own", "payload": {"sdp": "v=0"}});
    alice.send_text(&own.to_string()).await;
    let got = bob.expect("offer").await;
    assert_eq!(got.from.as_deref(), Some("alice"));
    assert_eq!(got.id.as_deref(), Some("own"));
    alice.expect_quiet().await;
    carol.expect_quiet().await;
}

#[tokio::test]
async fn nothing_crosses_rooms() {
    let server = TestServer::start().await;
    // Alice's token grants every room starting with `r`, so she sits in both.
    let mut alice = server.client("alice", "r*", Role::Host).await;
    alice.join("r1", "alice").await;
    alice.join("r2", "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let announced = alice.expect("peer_joined").await;
    assert_eq!(announced.room.as_deref(), Some("r1"));
    let mut carol = server.client("carol", "r2", Role::Guest).await;
    let joined = carol.join("r2", "carol").await;
    let peers: Vec<&str> = joined.payload["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["peer"].as_str().unwrap())
        .collect();
    assert_eq!(peers, ["alice"], "r2 lists only its own members");
    let announced = alice.expect("peer_joined").await;
    assert_eq!(announced.room.as_deref(), Some("r2"));
    assert_eq!(announced.payload["peer"], "carol");
    bob.expect_quiet().await;

    // A broadcast stays in its room.
    let in_r1 = alice
        .msg("message")
        .room("r1")
        .payload(json!({"text": "r1 only"}));
    alice.send(in_r1).await;
    let got = bob.expect("message").await;
    assert_eq!(got.room.as_deref(), Some("r1"));
    carol.expect_quiet().await;
    let in_r2 = alice
        .msg("message")
        .room("r2")
        .payload(json!({"text": "r2 only"}));
    alice.send(in_r2).await;
    let got = carol.expect("message").await;
    assert_eq!(got.room.as_deref(), Some("r2"));
    assert_eq!(got.payload, json!({"text": "r2 only"}));
    bob.expect_quiet().await;

    // Targets in another room are unreachable: the target is unknown in the sender's room, and a
    // room the sender is not in is refused.
    let offer = carol
        .msg("offer")
        .room("r2")
        .to("bob")
        .payload(json!({"sdp": "v=0"}));
    carol.send(offer).await;
    carol.expect_error("unknown_peer").await;
    let offer = carol
        .msg("offer")
        .room("r1")
        .to("bob")
        .payload(json!({"sdp": "v=0"}));
    carol.send(offer).await;
    carol.expect_error("not_in_room").await;
    let offer = bob
        .msg("offer")
        .room("r1")
        .to("carol")
        .payload(json!({"sdp": "v=0"}));
    bob.send(offer).await;
    bob.expect_error("unknown_peer").await;

    // Alice signalling carol in r2 reaches carol, tagged with r2.
    let offer = alice
        .msg("offer")
        .room("r2")
        .to("carol")
        .payload(json!({"sdp": "v=0"}));
    alice.send(offer).await;
    let got = carol.expect("offer").await;
    assert_eq!(got.room.as_deref(), Some("r2"));

    // Membership events stay in their room too.
    let leave = bob.msg("leave").room("r1");
    bob.send(leave).await;
    bob.expect("left").await;
    let left = alice.expect("peer_left").await;
    assert_eq!(left.room.as_deref(), Some("r1"));
    carol.expect_quiet().await;
    alice.expect_quiet().await;
    bob.expect_quiet().await;
}

#[tokio::test]
async fn leave_answers_left_and_is_idempotent() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;

    let leave = bob.msg("leave").room("r1").id("l-1");
    bob.send(leave).await;
    let left = bob.expect("left").await;
    assert_eq!(left.room.as_deref(), Some("r1"));
    assert_eq!(left.id.as_deref(), Some("l-1"));
    assert_eq!(left.payload["reason"], "left");
    let gone = alice.expect("peer_left").await;
    assert_eq!(gone.room.as_deref(), Some("r1"));
    assert_eq!(gone.payload, json!({"peer": "bob", "reason": "left"}));

    // Leaving again, or leaving a room never joined, answers `left` and tells nobody.
    let leave = bob.msg("leave").room("r1").id("l-2");
    bob.send(leave).await;
    let left = bob.expect("left").await;
    assert_eq!(left.id.as_deref(), Some("l-2"));
    let leave = bob.msg("leave").room("elsewhere");
    bob.send(leave).await;
    let left = bob.expect("left").await;
    assert_eq!(left.room.as_deref(), Some("elsewhere"));
    alice.expect_quiet().await;

    // Once out, bob can no longer signal into the room, and alice can no longer reach him.
    let offer = bob
        .msg("offer")
        .room("r1")
        .to("alice")
        .payload(json!({"sdp": "v=0"}));
    bob.send(offer).await;
    bob.expect_error("not_in_room").await;
    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .payload(json!({"sdp": "v=0"}));
    alice.send(offer).await;
    alice.expect_error("unknown_peer").await;

    // Leaving is not a ban: bob joins again, under the same peer id.
    let joined = bob.join("r1", "bob").await;
    assert_eq!(joined.payload["peers"][0]["peer"], "alice");
    let back = alice.expect("peer_joined").await;
    assert_eq!(back.payload["peer"], "bob");
    bob.expect_quiet().await;
}

#[tokio::test]
async fn host_only_mode_limits_guests_and_free_for_all_does_not() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let mut carol = server.joined("carol", "r1", Role::Guest, "carol").await;
    alice.expect("peer_joined").await;
    alice.expect("peer_joined").await;
    bob.expect("peer_joined").await;
    let sdp = json!({"sdp": "v=0"});

    // Default free_for_all: a guest signals another guest, and broadcasts.
    let offer = bob.msg("offer").room("r1").to("carol").payload(sdp.clone());
    bob.send(offer).await;
    carol.expect("offer").await;
    let all = bob.msg("message").room("r1").payload(json!({"t": 1}));
    bob.send(all).await;
    alice.expect("message").await;
    carol.expect("message").await;

    // A guest may not change the mode.
    let mode = bob
        .msg("mode")
        .room("r1")
        .id("m-guest")
        .payload(json!({"mode": "host_only"}));
    bob.send(mode).await;
    let error = bob.expect_error("forbidden").await;
    assert_eq!(error.id.as_deref(), Some("m-guest"));
    alice.expect_quiet().await;
    carol.expect_quiet().await;

    // The host switches to host_only: everyone hears it, the host's copy carries its id.
    let mode = alice
        .msg("mode")
        .room("r1")
        .id("m-1")
        .payload(json!({"mode": "host_only"}));
    alice.send(mode).await;
    let changed = alice.expect("mode_changed").await;
    assert_eq!(changed.id.as_deref(), Some("m-1"));
    assert_eq!(changed.payload, json!({"mode": "host_only", "by": "alice"}));
    for c in [&mut bob, &mut carol] {
        let changed = c.expect("mode_changed").await;
        assert_eq!(changed.room.as_deref(), Some("r1"));
        assert_eq!(changed.id, None);
        assert_eq!(changed.payload, json!({"mode": "host_only", "by": "alice"}));
    }

    // Guest to guest, and guest broadcast, are forbidden; nothing reaches anyone.
    for kind in ["offer", "candidate", "call_start", "message"] {
        let payload = match kind {
            "offer" => sdp.clone(),
            "candidate" => json!({"candidate": ""}),
            "call_start" => json!({"call_id": "c1"}),
            _ => json!({"t": 2}),
        };
        let env = bob.msg(kind).room("r1").to("carol").payload(payload);
        bob.send(env).await;
        let error = bob.expect_error("forbidden").await;
        assert_eq!(error.room.as_deref(), Some("r1"));
    }
    let all = bob.msg("message").room("r1").payload(json!({"t": 3}));
    bob.send(all).await;
    bob.expect_error("forbidden").await;
    carol.expect_quiet().await;
    alice.expect_quiet().await;

    // Guest to host is fine; the host reaches anyone and may broadcast.
    let offer = bob.msg("offer").room("r1").to("alice").payload(sdp.clone());
    bob.send(offer).await;
    assert_eq!(alice.expect("offer").await.from.as_deref(), Some("bob"));
    let answer = alice
        .msg("answer")
        .room("r1")
        .to("carol")
        .payload(sdp.clone());
    alice.send(answer).await;
    carol.expect("answer").await;
    let all = alice.msg("message").room("r1").payload(json!({"t": 4}));
    alice.send(all).await;
    bob.expect("message").await;
    carol.expect("message").await;

    // Setting the mode it already has tells only the host.
    let same = alice
        .msg("mode")
        .room("r1")
        .id("m-same")
        .payload(json!({"mode": "host_only"}));
    alice.send(same).await;
    let changed = alice.expect("mode_changed").await;
    assert_eq!(changed.id.as_deref(), Some("m-same"));
    bob.expect_quiet().await;
    carol.expect_quiet().await;

    // Back to free_for_all: guest to guest works again.
    let mode = alice
        .msg("mode")
        .room("r1")
        .payload(json!({"mode": "free_for_all"}));
    alice.send(mode).await;
    for c in [&mut alice, &mut bob, &mut carol] {
        let changed = c.expect("mode_changed").await;
        assert_eq!(changed.payload["mode"], "free_for_all");
    }
    let offer = bob.msg("offer").room("r1").to("carol").payload(sdp.clone());
    bob.send(offer).await;
    carol.expect("offer").await;

    // The mode goes with the room: once everyone left, a new room starts free_for_all.
    let mode = alice
        .msg("mode")
        .room("r1")
        .payload(json!({"mode": "host_only"}));
    alice.send(mode).await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("mode_changed").await;
    }
    let leave = bob.msg("leave").room("r1");
    bob.send(leave).await;
    bob.expect("left").await;
    alice.expect("peer_left").await;
    carol.expect("peer_left").await;
    let leave = carol.msg("leave").room("r1");
    carol.send(leave).await;
    carol.expect("left").await;
    alice.expect("peer_left").await;
    let leave = alice.msg("leave").room("r1");
    alice.send(leave).await;
    alice.expect("left").await;
    let joined = bob.join("r1", "bob").await;
    assert_eq!(joined.payload["mode"], "free_for_all");
}

#[tokio::test]
async fn a_host_kicks_a_member_who_cannot_rejoin() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let mut carol = server.joined("carol", "r1", Role::Guest, "carol").await;
    alice.expect("peer_joined").await;
    alice.expect("peer_joined").await;
    bob.expect("peer_joined").await;

    // Only a host may kick.
    let kick = carol
        .msg("kick")
        .room("r1")
        .id("k-guest")
        .payload(json!({"peer": "bob"}));
    carol.send(kick).await;
    let error = carol.expect_error("forbidden").await;
    assert_eq!(error.id.as_deref(), Some("k-guest"));
    bob.expect_quiet().await;
    // Kicking someone not in the room is unknown_peer.
    let kick = alice
        .msg("kick")
        .room("r1")
        .payload(json!({"peer": "nobody"}));
    alice.send(kick).await;
    alice.expect_error("unknown_peer").await;

    let kick = alice
        .msg("kick")
        .room("r1")
        .id("k-1")
        .payload(json!({"peer": "bob"}));
    alice.send(kick).await;
    let left = bob.expect("left").await;
    assert_eq!(left.room.as_deref(), Some("r1"));
    assert_eq!(left.payload["reason"], "kicked");
    assert_eq!(left.payload["by"], "alice");
    let notice = alice.expect("peer_left").await;
    assert_eq!(notice.id.as_deref(), Some("k-1"));
    assert_eq!(notice.payload, json!({"peer": "bob", "reason": "kicked"}));
    let notice = carol.expect("peer_left").await;
    assert_eq!(notice.id, None);
    assert_eq!(notice.payload, json!({"peer": "bob", "reason": "kicked"}));

    // Bob's connection stays open, but he is out and may not come back, in any session.
    bob.expect_quiet().await;
    let offer = bob
        .msg("offer")
        .room("r1")
        .to("alice")
        .payload(json!({"sdp": "v=0"}));
    bob.send(offer).await;
    bob.expect_error("not_in_room").await;
    let join = bob
        .msg("join")
        .room("r1")
        .id("rejoin")
        .payload(json!({"peer": "bob"}));
    bob.send(join).await;
    let error = bob.expect_error("forbidden").await;
    assert_eq!(error.id.as_deref(), Some("rejoin"));
    let mut bob2 = server.client("bob", "r1", Role::Guest).await;
    let join = bob2.msg("join").room("r1").payload(json!({"peer": "bob2"}));
    bob2.send(join).await;
    bob2.expect_error("forbidden").await;
    alice.expect_quiet().await;
    carol.expect_quiet().await;
}

#[tokio::test]
async fn a_second_session_of_the_same_user_replaces_the_first() {
    let server = TestServer::start().await;
    let mut old = server.client("alice", "r*", Role::Host).await;
    old.join("r1", "alice").await;
    old.join("r2", "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let mut carol = server.joined("carol", "r2", Role::Guest, "carol").await;
    old.expect("peer_joined").await;
    old.expect("peer_joined").await;

    let mut new = server.client("alice", "r1", Role::Host).await;
    let joined = new.join("r1", "alice").await;
    let peers: Vec<&str> = joined.payload["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["peer"].as_str().unwrap())
        .collect();
    assert_eq!(peers, ["bob"], "the old session is gone from the room");

    let replaced = old.expect("replaced").await;
    assert_eq!(replaced.room.as_deref(), Some("r1"));
    let close = old.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4001);

    let left = bob.expect("peer_left").await;
    assert_eq!(left.payload, json!({"peer": "alice", "reason": "replaced"}));
    let back = bob.expect("peer_joined").await;
    assert_eq!(back.payload["peer"], "alice");
    assert_eq!(back.payload["role"], "host");
    // The old session left every room it was in.
    let left = carol.expect("peer_left").await;
    assert_eq!(left.room.as_deref(), Some("r2"));
    assert_eq!(left.payload, json!({"peer": "alice", "reason": "replaced"}));
    bob.expect_quiet().await;
    carol.expect_quiet().await;

    // Signalling now reaches the new session.
    let offer = bob
        .msg("offer")
        .room("r1")
        .to("alice")
        .payload(json!({"sdp": "v=0"}));
    bob.send(offer).await;
    new.expect("offer").await;
    new.expect_quiet().await;

    // The replaced session cannot be resumed.
    let mut again = Client::connect_raw(&old.resume_url(old.url())).await;
    let error = again.expect_error("session_expired").await;
    assert_eq!(error.seq, 0);
    let close = again.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4004);
}

#[tokio::test]
async fn a_full_room_refuses_the_next_join_but_not_a_replacing_session() {
    let server = TestServer::start_with(|c| c.max_peers = 2).await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;

    let mut carol = server.client("carol", "r1", Role::Guest).await;
    let join = carol
        .msg("join")
        .room("r1")
        .id("full")
        .payload(json!({"peer": "carol"}));
    carol.send(join).await;
    let error = carol.expect_error("room_full").await;
    assert_ne!(error.seq, 0, "in-session errors are numbered");
    assert_eq!(error.id.as_deref(), Some("full"));
    assert_eq!(error.room.as_deref(), Some("r1"));
    carol.expect_quiet().await;
    alice.expect_quiet().await;
    bob.expect_quiet().await;

    // A newer session of a member does not count twice.
    let mut bob2 = server.client("bob", "r1", Role::Guest).await;
    bob2.join("r1", "bob").await;
    bob.expect("replaced").await;
    alice.expect("peer_left").await;
    alice.expect("peer_joined").await;

    // Once a seat frees up, the join succeeds.
    let leave = bob2.msg("leave").room("r1");
    bob2.send(leave).await;
    bob2.expect("left").await;
    alice.expect("peer_left").await;
    carol.join("r1", "carol").await;
    assert_eq!(alice.expect("peer_joined").await.payload["peer"], "carol");
}

#[tokio::test]
async fn a_peer_id_used_by_another_user_is_taken() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut mallory = server.client("mallory", "r1", Role::Guest).await;
    let join = mallory
        .msg("join")
        .room("r1")
        .id("steal")
        .payload(json!({"peer": "alice"}));
    mallory.send(join).await;
    let error = mallory.expect_error("peer_taken").await;
    assert_ne!(error.seq, 0, "in-session errors are numbered");
    assert_eq!(error.id.as_deref(), Some("steal"));
    assert_eq!(error.room.as_deref(), Some("r1"));
    mallory.expect_quiet().await;
    alice.expect_quiet().await;
    // A free id works.
    mallory.join("r1", "mallory").await;
    assert_eq!(alice.expect("peer_joined").await.payload["peer"], "mallory");
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

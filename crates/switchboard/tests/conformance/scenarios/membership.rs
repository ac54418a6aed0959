//! Who is in the room: joining, leaving, a second session replacing the first, and the host's
//! controls (mode, kick and the ban behind it).

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{End, Transport};

use crate::harness::*;

/// `join`: `joined` with the members, `peer_joined` to the others, idempotent rejoin.
pub async fn join_room(a: Transport, b: Transport) -> Transcript {
    let server = server(|_| {}).await;
    let mut alice = client(&server, a, "alice", Role::Host).await;
    let joined = join(&mut alice, Some(json!({"device": "laptop"}))).await;
    assert_eq!(joined["role"], "host");
    assert_eq!(joined["mode"], "free_for_all");
    assert_eq!(joined["peers"], json!([]));
    assert_eq!(joined["ice_servers"], json!([]));

    let mut bob = client(&server, b, "bob", Role::Guest).await;
    let joined = join(&mut bob, None).await;
    assert_eq!(joined["role"], "guest");
    assert_eq!(joined["peers"][0]["peer"], "alice");
    assert_eq!(joined["peers"][0]["role"], "host");
    assert_eq!(joined["peers"][0]["meta"], json!({"device": "laptop"}));
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    // A second join answers `joined` again and tells nobody.
    let env = bob.msg("join").room(ROOM).id("again");
    bob.send_ok(env).await;
    let again = bob.expect("joined").await;
    assert_eq!(again.id.as_deref(), Some("again"));
    assert_eq!(again.payload["peers"][0]["peer"], "alice");
    alice.expect_quiet().await;
    bob.expect_quiet().await;
    transcript(&[&alice, &bob])
}

/// `leave`: `left` to the sender, `peer_left` to the others, idempotent; rejoin works.
pub async fn leave(a: Transport, b: Transport) -> Transcript {
    let server = server(|_| {}).await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    let env = bob.msg("leave").room(ROOM).id("l-1");
    bob.send_ok(env).await;
    let left = bob.expect("left").await;
    assert_eq!(left.id.as_deref(), Some("l-1"));
    assert_eq!(left.payload["reason"], "left");
    expect_peer(&mut alice, "peer_left", "bob", Some("left")).await;

    let env = bob.msg("leave").room(ROOM);
    bob.send_ok(env).await;
    bob.expect("left").await;
    alice.expect_quiet().await;

    let env = chat(&mut bob, Some("alice"), 1);
    bob.send_refused(env, "not_in_room").await;

    join(&mut bob, None).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;
    let env = alice.msg("leave").room(ROOM);
    alice.send_ok(env).await;
    alice.expect("left").await;
    expect_peer(&mut bob, "peer_left", "alice", Some("left")).await;
    alice.expect_quiet().await;
    bob.expect_quiet().await;
    transcript(&[&alice, &bob])
}

/// A second session of the same user joins: the first gets `replaced` and its stream ends.
pub async fn replace(a: Transport, b: Transport) -> Transcript {
    // A long-poll client stops polling after `replaced`; the server forgets the session once
    // it has been silent for the (short) heartbeat timeout.
    let server = server(|c| {
        c.heartbeat_ms = 100;
        c.heartbeat_timeout_ms = 500;
        c.poll_wait_ms = 300;
        c.sse_heartbeat_ms = 100;
    })
    .await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    let mut alice2 = client(&server, b, "alice", Role::Host).await;
    let joined = join(&mut alice2, None).await;
    assert_eq!(joined["peers"][0]["peer"], "bob");
    assert_eq!(joined["peers"].as_array().unwrap().len(), 1);

    let replaced = alice.expect("replaced").await;
    assert_eq!(replaced.room.as_deref(), Some(ROOM));
    let end = alice.expect_end().await;
    match a {
        Transport::Ws => assert_eq!(end, End::WsClose(Some(4001))),
        Transport::Sse | Transport::Poll => assert_eq!(
            end,
            End::Refused {
                status: 410,
                code: "session_expired".into()
            }
        ),
    }
    expect_peer(&mut bob, "peer_left", "alice", Some("replaced")).await;
    expect_peer(&mut bob, "peer_joined", "alice", None).await;

    let env = chat(&mut alice2, Some("bob"), 1);
    alice2.send_ok(env).await;
    expect_chat(&mut bob, "alice", 1).await;
    let env = chat(&mut bob, Some("alice"), 2);
    bob.send_ok(env).await;
    expect_chat(&mut alice2, "bob", 2).await;
    alice2.expect_quiet().await;
    bob.expect_quiet().await;
    // The replaced session is gone from the server, whatever carried it.
    server
        .wait_for("the replaced session is removed", |s| s.sessions == 2)
        .await;
    let mut t = transcript(&[&alice, &alice2, &bob]);
    t[1].0 = "alice2".into();
    t
}

/// Host-only actions: mode, kick, and the ban that follows.
pub async fn host_controls(a: Transport, b: Transport) -> Transcript {
    let server = server(|_| {}).await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    let env = alice
        .msg("mode")
        .room(ROOM)
        .id("m-1")
        .payload(json!({"mode": "host_only"}));
    alice.send_ok(env).await;
    let changed = alice.expect("mode_changed").await;
    assert_eq!(changed.id.as_deref(), Some("m-1"));
    let changed = bob.expect("mode_changed").await;
    assert_eq!(changed.payload, json!({"mode": "host_only", "by": "alice"}));

    // A guest may still signal the host.
    relay(
        &mut bob,
        &mut alice,
        "message",
        None,
        json!({"q": "may I?"}),
    )
    .await;

    let env = alice
        .msg("kick")
        .room(ROOM)
        .id("k-1")
        .payload(json!({"peer": "bob"}));
    alice.send_ok(env).await;
    let left = bob.expect("left").await;
    assert_eq!(left.payload, json!({"reason": "kicked", "by": "alice"}));
    let kicked = alice.expect("peer_left").await;
    assert_eq!(kicked.id.as_deref(), Some("k-1"));
    assert_eq!(kicked.payload, json!({"peer": "bob", "reason": "kicked"}));

    let env = bob.msg("join").room(ROOM);
    bob.send_refused(env, "forbidden").await;
    alice.expect_quiet().await;
    bob.expect_quiet().await;
    transcript(&[&alice, &bob])
}

//! A session outliving its transport: resuming on the same transport or another, a lost resume
//! answer, SSE streams that end on a timer, and a resume that comes too late.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::Transport;

use crate::harness::*;

/// A client loses its transport and comes back on the same one: what was sent meanwhile
/// arrives once, in order, and its peer never sees it leave.
pub async fn resume_after_drop(a: Transport, b: Transport) -> Transcript {
    let server = server(|_| {}).await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    for (me, other, t) in [(0, 1, a), (1, 0, b)] {
        let pair = [&mut alice, &mut bob];
        let other_name = pair[other].name.clone();
        let my_name = pair[me].name.clone();
        // One message is in flight as the transport dies.
        let env = chat(pair[other], Some(&my_name), 0);
        pair[other].send_ok(env).await;
        pair[me].drop_transport().await;
        for n in 1..=3 {
            let env = chat(pair[other], Some(&my_name), n);
            pair[other].send_ok(env).await;
        }
        let env = pair[other]
            .msg("offer")
            .room(ROOM)
            .to(&my_name)
            .payload(json!({"sdp": "v=0 resumed"}));
        pair[other].send_ok(env).await;
        let env = chat(pair[other], None, 4);
        pair[other].send_ok(env).await;
        // No peer_left, nothing at all, for the peer.
        pair[other].expect_quiet().await;

        resume(pair[me], t).await;
        for n in 0..=3 {
            expect_chat(pair[me], &other_name, n).await;
        }
        assert_eq!(pair[me].expect("offer").await.payload["sdp"], "v=0 resumed");
        expect_chat(pair[me], &other_name, 4).await;
        pair[me].expect_quiet().await;

        // And the resumed session sends as before.
        let env = chat(pair[me], Some(&other_name), 5);
        pair[me].send_ok(env).await;
        expect_chat(pair[other], &my_name, 5).await;
    }
    alice.expect_quiet().await;
    bob.expect_quiet().await;
    transcript(&[&alice, &bob])
}

/// Resume on another transport, for each client in turn, and back again. Messages the client
/// sent just before losing a WebSocket are sent again after the `hello` if the server missed
/// them; either way they arrive exactly once.
pub async fn resume_switch(a: Transport, b: Transport) -> Transcript {
    let server = server(|_| {}).await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    let hops = [(0, switched(a, b)), (1, switched(b, a)), (0, a)];
    for (round, (me, to)) in hops.into_iter().enumerate() {
        let other = 1 - me;
        let pair = [&mut alice, &mut bob];
        let other_name = pair[other].name.clone();
        let my_name = pair[me].name.clone();
        let base = 10 * round as u64;
        for n in base..base + 2 {
            let env = chat(pair[me], Some(&other_name), n);
            pair[me].send_ok(env).await;
        }
        pair[me].drop_transport().await;
        for n in base..base + 3 {
            let env = chat(pair[other], Some(&my_name), n);
            pair[other].send_ok(env).await;
        }
        resume(pair[me], to).await;
        assert_eq!(pair[me].transport, to);
        for n in base..base + 2 {
            expect_chat(pair[other], &my_name, n).await;
        }
        pair[other].expect_quiet().await;
        for n in base..base + 3 {
            expect_chat(pair[me], &other_name, n).await;
        }
        pair[me].expect_quiet().await;
    }
    transcript(&[&alice, &bob])
}

/// A resume (a switch) whose answer is lost in flight is tried again from the same seq: the
/// client gets one `hello` and then what it missed, once; the lost `hello` is not replayed
/// among the missed messages.
pub async fn resume_hello_lost(a: Transport, b: Transport) -> Transcript {
    let server = server(|_| {}).await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    let to = switched(a, b);
    alice.drop_transport().await;
    let env = chat(&mut bob, Some("alice"), 1);
    bob.send_ok(env).await;
    alice.resume_lost(to).await;
    let env = chat(&mut bob, Some("alice"), 2);
    bob.send_ok(env).await;
    bob.expect_quiet().await;
    resume(&mut alice, to).await;
    expect_chat(&mut alice, "bob", 1).await;
    expect_chat(&mut alice, "bob", 2).await;
    alice.expect_quiet().await;
    let env = chat(&mut alice, Some("bob"), 3);
    alice.send_ok(env).await;
    expect_chat(&mut bob, "alice", 3).await;
    transcript(&[&alice, &bob])
}

/// SSE streams end every 250 ms (no jitter) during a steady conversation; the client
/// reconnects with `Last-Event-ID` and nothing is lost or repeated.
pub async fn sse_lifetime(a: Transport, b: Transport) -> Transcript {
    let server = server(|c| {
        c.sse_lifetime_ms = 250;
        c.sse_jitter_ms = 0;
    })
    .await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    // 40 rounds of at least 25 ms: four lifetimes or more pass mid-conversation.
    for n in 0..40 {
        let env = chat(&mut alice, Some("bob"), n);
        alice.send_ok(env).await;
        let env = chat(&mut bob, Some("alice"), n);
        bob.send_ok(env).await;
        expect_chat(&mut bob, "alice", n).await;
        expect_chat(&mut alice, "bob", n).await;
        // Lets the stream lifetime pass between messages.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for c in [&alice, &bob] {
        if c.transport == Transport::Sse {
            assert!(
                c.reconnects() >= 3,
                "{}: {} reconnects",
                c.name,
                c.reconnects()
            );
        }
    }
    alice.expect_quiet().await;
    bob.expect_quiet().await;
    transcript(&[&alice, &bob])
}

/// A client that does not come back within resume_ms has left (`timeout`), and a late
/// resume, on any transport, is `session_expired`.
pub async fn expiry(a: Transport, b: Transport) -> Transcript {
    let server = server(|c| {
        c.heartbeat_ms = 100;
        c.heartbeat_timeout_ms = 500;
        c.poll_wait_ms = 300;
        c.sse_heartbeat_ms = 100;
        c.resume_ms = 300;
    })
    .await;
    let mut alice = joined(&server, a, "alice", Role::Host).await;
    let mut bob = joined(&server, b, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;

    alice.drop_transport().await;
    // Waits for the (short) heartbeat and resume timers.
    expect_peer(&mut bob, "peer_left", "alice", Some("timeout")).await;
    alice.resume(a).await;
    alice.expect_refused("session_expired").await;
    alice.resume(a.next()).await;
    alice.expect_refused("session_expired").await;

    // Bob is alone and well.
    let env = chat(&mut bob, Some("alice"), 1);
    bob.send_refused(env, "unknown_peer").await;
    bob.expect_quiet().await;
    transcript(&[&alice, &bob])
}

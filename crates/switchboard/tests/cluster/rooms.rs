//! Members on two nodes sharing a room: joins and relays both ways, messages pipelined behind a
//! join, the room's join lock, one session per user and kicks across nodes, and SSE and
//! long-poll sessions among WebSocket ones.

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{
    AnyClient, Transport, eventually,
    metrics::scrape,
    process,
    redis::{keys, unique_prefix, url as redis_url},
};

use crate::{client, node, redis_up, two_nodes};

#[tokio::test]
async fn peers_on_two_nodes_join_and_relay_both_ways() {
    let Some((prefix, a, b)) = two_nodes("relay").await else {
        return;
    };

    let mut alice = client(&a, "alice", Role::Host).await;
    let mut bob = client(&b, "bob", Role::Guest).await;
    let joined = alice.join("r1", "alice").await;
    assert_eq!(joined.payload["peers"], json!([]));
    let joined = bob.join("r1", "bob").await;
    assert_eq!(joined.payload["peers"][0]["peer"], "alice", "{joined:?}");
    let announced = alice.expect("peer_joined").await;
    assert_eq!(announced.payload["peer"], "bob");

    // Targeted, both ways.
    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .id("o1")
        .payload(json!({"sdp": "v=0 offer"}));
    alice.send(offer).await;
    let got = bob.expect("offer").await;
    assert_eq!(got.from.as_deref(), Some("alice"));
    assert_eq!(got.id.as_deref(), Some("o1"));
    assert_eq!(got.payload, json!({"sdp": "v=0 offer"}));
    let answer = bob
        .msg("answer")
        .room("r1")
        .to("alice")
        .payload(json!({"sdp": "v=0 answer"}));
    bob.send(answer).await;
    let got = alice.expect("answer").await;
    assert_eq!(got.from.as_deref(), Some("bob"));

    // In order: a burst of candidates arrives as sent.
    for i in 0..20 {
        let c = alice
            .msg("candidate")
            .room("r1")
            .to("bob")
            .payload(json!({"candidate": format!("c{i}")}));
        alice.send(c).await;
    }
    for i in 0..20 {
        let got = bob.expect("candidate").await;
        assert_eq!(got.payload["candidate"], format!("c{i}"));
    }

    // A third member on node a: a broadcast from bob reaches both, a leave is announced across.
    let mut carol = client(&a, "carol", Role::Guest).await;
    let joined = carol.join("r1", "carol").await;
    assert_eq!(joined.payload["peers"].as_array().unwrap().len(), 2);
    alice.expect("peer_joined").await;
    bob.expect("peer_joined").await;
    let all = bob.msg("message").room("r1").payload(json!({"hi": "all"}));
    bob.send(all).await;
    for c in [&mut alice, &mut carol] {
        let got = c.expect("message").await;
        assert_eq!(got.from.as_deref(), Some("bob"));
        assert_eq!(got.payload, json!({"hi": "all"}));
    }
    let leave = carol.msg("leave").room("r1");
    carol.send(leave).await;
    carol.expect("left").await;
    let left = bob.expect("peer_left").await;
    assert_eq!(left.payload["peer"], "carol");
    alice.expect("peer_left").await;

    // A client closing its socket is a peer_left on the other node.
    alice.close().await;
    let left = bob.expect("peer_left").await;
    assert_eq!(left.payload["peer"], "alice");
    assert_eq!(left.payload["reason"], "disconnected");
    bob.expect_quiet().await;

    // Node b counted its cross-node deliveries and names itself in its metrics.
    let metrics = format!("http://{}/metrics", b.addr);
    eventually("node b counts deliveries from node a", || async {
        let m = scrape(&metrics).await;
        let forwarded = m.get("cluster_forwarded_total");
        if forwarded >= 23.0 {
            Ok(())
        } else {
            Err(forwarded)
        }
    })
    .await;
    let m = scrape(&metrics).await;
    assert_eq!(m.get(r#"node_info{node_id="node-b"}"#), 1.0);

    let lines = b.stop().await;
    assert_eq!(process::events(&lines, "cluster.joined").len(), 1);
    a.stop().await;
    // Stopped nodes leave nothing behind: their sessions left their rooms and ended.
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn messages_sent_right_behind_a_join_wait_for_it() {
    let Some((prefix, a, b)) = two_nodes("pipelined").await else {
        return;
    };
    let mut alice = client(&a, "alice", Role::Host).await;
    alice.join("r1", "alice").await;
    // Bob does not wait for `joined`: his join waits for the room's lock on node b, and what he
    // sends behind it is handled after it, in order, not refused as `not_in_room`.
    let mut bob = client(&b, "bob", Role::Guest).await;
    let join = bob.msg("join").room("r1").payload(json!({"peer": "bob"}));
    bob.send(join).await;
    for i in 0..5 {
        let m = bob
            .msg("message")
            .room("r1")
            .to("alice")
            .payload(json!({"n": i}));
        bob.send(m).await;
    }
    let ping = bob.msg("ping").id("after");
    bob.send(ping).await;
    bob.expect("joined").await;
    let pong = bob.expect("pong").await;
    assert_eq!(pong.id.as_deref(), Some("after"));
    alice.expect("peer_joined").await;
    for i in 0..5 {
        let got = alice.expect("message").await;
        assert_eq!(got.payload["n"], i);
    }
    a.stop().await;
    b.stop().await;
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_join_waits_for_the_rooms_lock_and_bounds_what_queues_behind_it() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("lock");
    let a = node(&prefix, "node-a").await;
    // Another holder (as a node that died holding it would) keeps r1's join lock.
    let client_redis = redis::Client::open(redis_url()).unwrap();
    let mut c = client_redis
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let lock = format!("{prefix}:r:{{r1}}:lock");
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("someone-else")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut c)
        .await
        .unwrap();

    // The join waits up to the lock's 5 s, then is answered `unavailable`; the client may retry.
    let mut alice = client(&a, "alice", Role::Host).await;
    let join = alice
        .msg("join")
        .room("r1")
        .id("j1")
        .payload(json!({"peer": "alice"}));
    alice.send(join).await;
    let e = alice.expect_error("unavailable").await;
    assert_eq!(e.id.as_deref(), Some("j1"));
    assert_eq!(e.payload["type"], "join");
    let _: () = redis::cmd("DEL")
        .arg(&lock)
        .query_async(&mut c)
        .await
        .unwrap();
    alice.join("r1", "alice").await;

    // Behind a join that waits, at most 256 messages queue; a client sending more is closed
    // (4005) and may resume.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:r:{{r2}}:lock"))
        .arg("someone-else")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut c)
        .await
        .unwrap();
    let mut bob = client(&a, "bob", Role::Guest).await;
    let join = bob.msg("join").room("r2").payload(json!({"peer": "bob"}));
    bob.send(join).await;
    for _ in 0..300 {
        let ping = bob.msg("ping");
        bob.send(ping).await;
    }
    let close = bob.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4005);
    a.stop().await;
}

#[tokio::test]
async fn one_session_per_user_and_kicks_hold_across_nodes() {
    let Some((prefix, a, b)) = two_nodes("rules").await else {
        return;
    };

    let mut alice = client(&a, "alice", Role::Host).await;
    alice.join("r1", "alice").await;
    let mut bob = client(&a, "bob", Role::Guest).await;
    bob.join("r1", "bob").await;
    alice.expect("peer_joined").await;

    // Bob again, on the other node: the old session is replaced and closed.
    let mut bob2 = client(&b, "bob", Role::Guest).await;
    let joined = bob2.join("r1", "bob").await;
    assert_eq!(joined.payload["peers"][0]["peer"], "alice");
    assert_eq!(joined.payload["peers"].as_array().unwrap().len(), 1);
    bob.expect("replaced").await;
    let close = bob.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4001);
    let left = alice.expect("peer_left").await;
    assert_eq!(left.payload["reason"], "replaced");
    alice.expect("peer_joined").await;

    // A host on node a kicks bob on node b; bob's next join, from either node, is refused.
    let kick = alice.msg("kick").room("r1").payload(json!({"peer": "bob"}));
    alice.send(kick).await;
    let left = bob2.expect("left").await;
    assert_eq!(left.payload["reason"], "kicked");
    alice.expect("peer_left").await;
    let rejoin = bob2.msg("join").room("r1").payload(json!({"peer": "bob"}));
    bob2.send(rejoin).await;
    bob2.expect_error("forbidden").await;
    a.stop().await;
    b.stop().await;
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn sse_and_long_poll_sessions_share_rooms_with_websocket_ones_on_another_node() {
    let Some((prefix, a, b)) = two_nodes("http").await else {
        return;
    };
    let poll_wait = std::time::Duration::from_millis(25_000);
    for (n, transport) in [Transport::Sse, Transport::Poll].into_iter().enumerate() {
        let room = format!("r{n}");
        let mut alice = client(&a, "alice", Role::Host).await;
        alice.join(&room, "alice").await;
        let mut bob =
            AnyClient::connect_to(&b.addr, poll_wait, transport, "bob", "*", Role::Guest).await;
        // A join posted over HTTP is decided under the room's lock like a WebSocket one.
        let join = bob.msg("join").room(&room).payload(json!({"peer": "bob"}));
        bob.send_ok(join).await;
        let joined = bob.expect("joined").await;
        assert_eq!(joined.payload["peers"][0]["peer"], "alice", "{transport:?}");
        alice.expect("peer_joined").await;
        let offer = alice
            .msg("offer")
            .room(&room)
            .to("bob")
            .payload(json!({"sdp": "o"}));
        alice.send(offer).await;
        let got = bob.expect("offer").await;
        assert_eq!(got.from.as_deref(), Some("alice"));
        let answer = bob
            .msg("answer")
            .room(&room)
            .to("alice")
            .payload(json!({"sdp": "a"}));
        bob.send_ok(answer).await;
        let got = alice.expect("answer").await;
        assert_eq!(got.from.as_deref(), Some("bob"));
        alice.close().await;
        bob.expect("peer_left").await;
    }
    a.stop().await;
    b.stop().await;
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

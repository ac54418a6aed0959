//! Cluster mode with real parts: two `switchboard serve` processes on loopback sharing rooms
//! through the real Redis (127.0.0.1:6379, or `SWITCHBOARD_TEST_REDIS`). Each test uses a prefix of
//! its own, so tests and runs never see each other's keys.
//!
//! Without a Redis these tests fail when `CI` is set (CI must provide one: `scripts/test` starts
//! it) and are skipped with a note otherwise.

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{
    AnyClient, Client, Process, Transport,
    cluster::{self, by_sender, messages, send_to},
    eventually,
    http::http_get,
    metrics::scrape,
    process,
    raw::RawClient,
    tokens,
};

use switchboard_testkit::redis::{
    OwnRedis, available as redis_up, keys, unique_prefix, url as redis_url,
};

/// A node of the cluster `prefix` on the shared Redis, named `name`.
async fn node(prefix: &str, name: &str) -> Process {
    node_on(&redis_url(), prefix, name).await
}

/// A node of the cluster `prefix` on the Redis at `url`, named `name`.
async fn node_on(url: &str, prefix: &str, name: &str) -> Process {
    node_with(url, prefix, name, &[]).await
}

/// [`node_on`] with more settings.
async fn node_with(url: &str, prefix: &str, name: &str, more: &[(&str, &str)]) -> Process {
    cluster::node(env!("CARGO_BIN_EXE_switchboard"), url, prefix, name, more).await
}

/// Two nodes, `node-a` and `node-b`, of a cluster of their own on the shared Redis, with its key
/// prefix; `None` when there is no Redis (see [`redis_up`]).
async fn two_nodes(test: &str) -> Option<(String, Process, Process)> {
    if !redis_up().await {
        return None;
    }
    let prefix = unique_prefix(test);
    let a = node(&prefix, "node-a").await;
    let b = node(&prefix, "node-b").await;
    Some((prefix, a, b))
}

async fn client(node: &Process, user: &str, role: Role) -> Client {
    let token = tokens::mint(user, "*", role);
    Client::connect(&format!("ws://{}/v1/ws?token={token}", node.addr)).await
}

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

#[tokio::test]
async fn messages_published_while_the_inbox_was_down_are_read_from_the_log() {
    let Some(own) = OwnRedis::start().await else {
        return;
    };
    let prefix = unique_prefix("inbox");
    let a = node_on(&own.url, &prefix, "node-a").await;
    let b = node_on(&own.url, &prefix, "node-b").await;
    let mut alice = client(&a, "alice", Role::Host).await;
    let mut bob = client(&b, "bob", Role::Guest).await;
    alice.join("r1", "alice").await;
    bob.join("r1", "bob").await;
    alice.expect("peer_joined").await;

    // Every subscriber connection is dropped mid-stream (both nodes' inboxes), and subscribing is
    // refused for a while: what is published meanwhile reaches no one, and must come from the
    // logs, once, in order.
    let send = |alice: &mut Client, i: usize| {
        alice
            .msg("message")
            .room("r1")
            .to("bob")
            .payload(json!({"n": i}))
    };
    for i in 0..10 {
        let m = send(&mut alice, i);
        alice.send(m).await;
    }
    bob.expect("message").await;
    own.command(&["ACL", "SETUSER", "default", "-subscribe"])
        .await;
    own.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    for i in 10..40 {
        let m = send(&mut alice, i);
        alice.send(m).await;
    }
    // Subscribing is allowed again once all 40 are in bob's log (and alice's one peer_joined in
    // hers), so none of the last 30 can have come by pub/sub.
    eventually("the messages are in the logs", || async {
        let logs = own.command(&["KEYS", &format!("{prefix}:s:*:log")]).await;
        let logs: Vec<String> = redis::FromRedisValue::from_redis_value(logs).unwrap();
        let mut kept = 0;
        for log in logs {
            let n = own.command(&["LLEN", &log]).await;
            kept += <i64 as redis::FromRedisValue>::from_redis_value(n).unwrap();
        }
        if kept == 41 { Ok(()) } else { Err(kept) }
    })
    .await;
    own.command(&["ACL", "SETUSER", "default", "+subscribe"])
        .await;
    for i in 1..40 {
        let got = bob.expect("message").await;
        assert_eq!(got.payload["n"], i, "in order, none lost or repeated");
    }
    bob.expect_quiet().await;
    let m = scrape(&format!("http://{}/metrics", b.addr)).await;
    assert!(m.get("cluster_inbox_reconnects_total") >= 1.0);
    assert!(m.get("cluster_gaps_filled_total") >= 30.0, "{}", m.text);
    let lines = b.stop().await;
    assert!(!process::events(&lines, "cluster.inbox_resubscribed").is_empty());
    a.stop().await;
}

#[tokio::test]
async fn readyz_fails_while_redis_does_not_answer_and_recovers_with_it() {
    let Some(mut own) = OwnRedis::start().await else {
        return;
    };
    let prefix = unique_prefix("ready");
    let a = node_on(&own.url, &prefix, "node-a").await;
    let ready = format!("http://{}/readyz", a.addr);
    let status = |want: u16| {
        let ready = ready.clone();
        move || {
            let ready = ready.clone();
            async move {
                let (status, body) = http_get(&ready, &[]).await;
                if status == want {
                    Ok(body)
                } else {
                    Err((status, body))
                }
            }
        }
    };
    eventually("ready with Redis up", status(200)).await;
    own.kill().await;
    let body = eventually("not ready without Redis", status(503)).await;
    assert_eq!(body["status"], "store_unreachable");
    own.restart().await;
    eventually("ready again", status(200)).await;
    // The node serves again: a session opens, joins (a Redis round trip) and is answered.
    let mut alice = client(&a, "alice", Role::Host).await;
    alice.join("r1", "alice").await;
    let lines = a.stop().await;
    assert_eq!(
        process::events(&lines, "cluster.store_unreachable").len(),
        1
    );
    assert_eq!(process::events(&lines, "cluster.store_reachable").len(), 1);
}

#[tokio::test]
async fn a_session_resumes_on_the_other_node_over_each_transport_with_nothing_lost() {
    let Some((prefix, a, b)) = two_nodes("adopt").await else {
        return;
    };
    let poll_wait = std::time::Duration::from_millis(25_000);
    let cases = [
        (Transport::Sse, Transport::Ws),
        (Transport::Ws, Transport::Sse),
        (Transport::Ws, Transport::Poll),
    ];
    for (i, (from, to)) in cases.into_iter().enumerate() {
        let room = format!("r{i}");
        let mut alice = client(&a, &format!("alice{i}"), Role::Host).await;
        alice.join(&room, "alice").await;
        let mut carol = client(&b, &format!("carol{i}"), Role::Guest).await;
        carol.join(&room, "carol").await;
        alice.expect("peer_joined").await;
        let mut bob =
            AnyClient::connect_to(&a.addr, poll_wait, from, "bob", "*", Role::Guest).await;
        let join = bob.msg("join").room(&room).payload(json!({"peer": "bob"}));
        bob.send_ok(join).await;
        bob.expect("joined").await;
        alice.expect("peer_joined").await;
        carol.expect("peer_joined").await;

        // Bob on node a gets messages from alice (same node) and carol (node b).
        send_to(&mut alice, &room, "bob", 0..3).await;
        send_to(&mut carol, &room, "bob", 0..3).await;
        let mut got = messages(&mut bob, 6).await;
        // His transport is lost; meanwhile both send more.
        bob.drop_transport().await;
        send_to(&mut alice, &room, "bob", 3..8).await;
        send_to(&mut carol, &room, "bob", 3..8).await;

        // He comes back on node b: a new hello, then every missed message once, in order.
        bob.move_to(&b.addr);
        let Some(hello) = bob.resume(to).await else {
            let lines = b.stop().await;
            panic!(
                "{from:?} -> {to:?}: refused: {:?}\n{}",
                bob.try_recv(),
                lines.join("\n")
            );
        };
        assert_eq!(hello.payload["resumed"], true, "{from:?} -> {to:?}");
        assert_eq!(hello.payload["peer"], "bob");
        got.extend(messages(&mut bob, 10).await);
        assert_eq!(
            by_sender(&got, "alice"),
            (0..8).collect::<Vec<_>>(),
            "{from:?} -> {to:?}"
        );
        assert_eq!(
            by_sender(&got, "carol"),
            (0..8).collect::<Vec<_>>(),
            "{from:?} -> {to:?}"
        );

        // Nothing else came, and his peers noticed nothing: the next thing each sees is him.
        send_to(&mut alice, &room, "bob", 8..9).await;
        assert_eq!(messages(&mut bob, 1).await, [("alice".to_owned(), 8)]);
        let hi = bob.msg("message").room(&room).payload(json!({"n": 100}));
        bob.send_ok(hi).await;
        for c in [&mut alice, &mut carol] {
            let m = c.expect("message").await;
            assert_eq!(m.from.as_deref(), Some("bob"), "{from:?} -> {to:?}");
        }
        // Bob's own messages are numbered on after what the server had accepted from him.
        let leave = bob.msg("leave").room(&room);
        bob.send_ok(leave).await;
        bob.expect("left").await;
        for c in [&mut alice, &mut carol] {
            let left = c.expect("peer_left").await;
            assert_eq!(left.payload["peer"], "bob");
        }
    }
    let lines = a.stop().await;
    assert_eq!(process::events(&lines, "cluster.session_moved").len(), 3);
    let lines = b.stop().await;
    assert_eq!(process::events(&lines, "cluster.session_adopted").len(), 3);
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn two_nodes_racing_to_resume_one_session_let_exactly_one_win() {
    let Some((prefix, a, b)) = two_nodes("race").await else {
        return;
    };
    let c = node(&prefix, "node-c").await;
    let mut alice = client(&a, "alice", Role::Host).await;
    alice.join("r1", "alice").await;
    let mut bob = client(&a, "bob", Role::Guest).await;
    bob.join("r1", "bob").await;
    alice.expect("peer_joined").await;
    send_to(&mut alice, "r1", "bob", 0..2).await;
    bob.expect("message").await;
    bob.expect("message").await;
    let token = tokens::mint("bob", "*", Role::Guest);
    let resume = bob.resume_url(&format!("/v1/ws?token={token}"));
    bob.drop_connection();
    let (mut one, mut two) = tokio::join!(
        RawClient::connect(b.addr.parse().unwrap(), &resume),
        RawClient::connect(c.addr.parse().unwrap(), &resume)
    );
    let (first, second) = tokio::join!(one.recv(), two.recv());
    let mut kinds = [first.kind.clone(), second.kind.clone()];
    kinds.sort();
    assert_eq!(kinds, ["error", "hello"], "{first:?} {second:?}");
    let (winner, loser) = if first.kind == "hello" {
        (&mut one, &second)
    } else {
        (&mut two, &first)
    };
    assert_eq!(loser.payload["code"], "session_expired", "{loser:?}");
    // The winner has the session, in its room, and alice noticed nothing.
    send_to(&mut alice, "r1", "bob", 2..3).await;
    let m = winner.recv().await;
    assert_eq!((m.kind.as_str(), &m.payload["n"]), ("message", &json!(2)));
    let ping = alice.msg("ping").id("p");
    alice.send(ping).await;
    let pong = alice.expect("pong").await;
    assert_eq!(pong.id.as_deref(), Some("p"));
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn a_node_killed_mid_stream_loses_nothing_and_who_never_returns_times_out() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("kill");
    let fast = [("SWITCHBOARD_RESUME_MS", "1000")];
    let a = node_with(&redis_url(), &prefix, "node-a", &fast).await;
    let b = node_with(&redis_url(), &prefix, "node-b", &fast).await;
    let poll_wait = std::time::Duration::from_millis(25_000);
    // Alice and carol on node a, bob on node b.
    let mut alice =
        AnyClient::connect_to(&a.addr, poll_wait, Transport::Ws, "alice", "*", Role::Host).await;
    let join = alice
        .msg("join")
        .room("r1")
        .payload(json!({"peer": "alice"}));
    alice.send(join).await;
    alice.expect("joined").await;
    let mut bob = client(&b, "bob", Role::Guest).await;
    bob.join("r1", "bob").await;
    let mut carol = client(&a, "carol", Role::Guest).await;
    carol.join("r1", "carol").await;
    alice.expect("peer_joined").await;
    alice.expect("peer_joined").await;
    bob.expect("peer_joined").await;

    // A randomized stream among the three; node a dies right after the last send, with
    // messages in flight, written or not.
    let seed = rand::rng().random::<u64>();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sent = std::collections::HashMap::<(&str, &str), u64>::new();
    for _ in 0..rng.random_range(20..60) {
        let (from, to) = [
            ("alice", "bob"),
            ("alice", "carol"),
            ("bob", "alice"),
            ("bob", "carol"),
            ("carol", "alice"),
            ("carol", "bob"),
        ][rng.random_range(0..6)];
        let n = sent.entry((from, to)).or_default();
        let m = json!({"n": *n});
        *n += 1;
        match from {
            "alice" => {
                let env = alice.msg("message").room("r1").to(to).payload(m);
                alice.send(env).await;
            }
            "bob" => {
                let env = bob.msg("message").room("r1").to(to).payload(m);
                bob.send(env).await;
            }
            _ => {
                let env = carol.msg("message").room("r1").to(to).payload(m);
                carol.send(env).await;
            }
        }
    }
    a.kill().await;
    // Bob goes on sending to alice while she is away.
    let after = sent.get(&("bob", "alice")).copied().unwrap_or(0);
    send_to(&mut bob, "r1", "alice", after..after + 5).await;
    sent.insert(("bob", "alice"), after + 5);

    // What reached alice before her node died counts as received.
    let (before, _) = alice.until_end().await;
    // Alice resumes on node b and sends again what node a had not made durable.
    alice.move_to(&b.addr);
    let hello = alice.resume(Transport::Ws).await;
    assert!(hello.is_some(), "seed {seed}: {:?}", alice.try_recv());

    // Each reads until carol, who never comes back, is announced gone (timeout).
    let read = |got: &mut Vec<(String, u64)>, m: switchboard_protocol::ServerEnvelope| {
        if m.kind == "message" {
            got.push((m.from.unwrap_or_default(), m.payload["n"].as_u64().unwrap()));
            false
        } else {
            assert_eq!(m.kind, "peer_left", "seed {seed}: {m:?}");
            assert_eq!(m.payload["peer"], "carol", "seed {seed}: {m:?}");
            assert_eq!(m.payload["reason"], "timeout", "seed {seed}: {m:?}");
            true
        }
    };
    let mut to_alice = Vec::new();
    for m in before {
        assert!(!read(&mut to_alice, m), "seed {seed}");
    }
    while !read(&mut to_alice, alice.recv().await) {}
    let mut to_bob = Vec::new();
    while !read(&mut to_bob, bob.recv().await) {}

    let all = |from, to| (0..sent.get(&(from, to)).copied().unwrap_or(0)).collect::<Vec<_>>();
    // From senders that are still there: everything, once, in order.
    assert_eq!(
        by_sender(&to_alice, "bob"),
        all("bob", "alice"),
        "seed {seed}"
    );
    assert_eq!(
        by_sender(&to_bob, "alice"),
        all("alice", "bob"),
        "seed {seed}"
    );
    // From carol, lost with her node: what node a had written, once, in order.
    for got in [by_sender(&to_alice, "carol"), by_sender(&to_bob, "carol")] {
        assert_eq!(
            got,
            (0..got.len() as u64).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
    let lines = b.stop().await;
    assert_eq!(process::events(&lines, "cluster.session_adopted").len(), 1);
    assert_eq!(process::events(&lines, "cluster.session_expired").len(), 1);
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_killed_node_restarted_under_its_id_lets_its_old_sessions_time_out() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("restart");
    let fast = [("SWITCHBOARD_RESUME_MS", "500")];
    let a = node_with(&redis_url(), &prefix, "node-a", &fast).await;
    let b = node_with(&redis_url(), &prefix, "node-b", &fast).await;
    let mut bob = client(&b, "bob", Role::Guest).await;
    bob.join("r1", "bob").await;
    let mut carol = client(&a, "carol", Role::Guest).await;
    carol.join("r1", "carol").await;
    bob.expect("peer_joined").await;
    a.kill().await;
    // Back at once, before its lease ran out: what Redis lists as its sessions is of the run
    // that died, and carol is announced gone when her window passes.
    let a = node_with(&redis_url(), &prefix, "node-a", &fast).await;
    let left = bob.expect("peer_left").await;
    assert_eq!(left.payload["peer"], "carol");
    assert_eq!(left.payload["reason"], "timeout");
    a.stop().await;
    b.stop().await;
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_node_that_missed_a_move_lets_the_session_go_once_its_inbox_is_back() {
    let Some(own) = OwnRedis::start().await else {
        return;
    };
    let prefix = unique_prefix("missed");
    let a = node_on(&own.url, &prefix, "node-a").await;
    let b = node_on(&own.url, &prefix, "node-b").await;
    let mut alice = client(&a, "alice", Role::Host).await;
    alice.join("r1", "alice").await;
    let poll_wait = std::time::Duration::from_millis(25_000);
    let mut bob =
        AnyClient::connect_to(&a.addr, poll_wait, Transport::Ws, "bob", "*", Role::Guest).await;
    let join = bob.msg("join").room("r1").payload(json!({"peer": "bob"}));
    bob.send(join).await;
    bob.expect("joined").await;
    alice.expect("peer_joined").await;

    // The inboxes go down: node a does not hear that bob moves to node b, which takes him after
    // waiting for node a to let go.
    own.command(&["ACL", "SETUSER", "default", "-subscribe"])
        .await;
    own.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    bob.drop_transport().await;
    bob.move_to(&b.addr);
    assert!(bob.resume(Transport::Ws).await.is_some());
    own.command(&["ACL", "SETUSER", "default", "+subscribe"])
        .await;
    // Back, node a reads its sessions' logs, finds bob held by node b and lets him go quietly.
    eventually("node a lets bob go", || async {
        match a.events("cluster.session_moved").len() {
            1 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    send_to(&mut alice, "r1", "bob", 0..1).await;
    assert_eq!(messages(&mut bob, 1).await, [("alice".to_owned(), 0)]);
    let hi = bob
        .msg("message")
        .room("r1")
        .to("alice")
        .payload(json!({"n": 1}));
    bob.send(hi).await;
    let m = alice.expect("message").await;
    assert_eq!(m.from.as_deref(), Some("bob"));
    a.stop().await;
    b.stop().await;
}

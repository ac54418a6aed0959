//! Sessions moving between nodes: a resume on the other node over each transport, two nodes
//! racing for one session, a node killed mid-stream, and a killed node restarted under its id.

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{
    AnyClient, Transport,
    cluster::{by_sender, messages, send_to},
    process,
    raw::RawClient,
    redis::{keys, unique_prefix, url as redis_url},
    tokens,
};

use crate::{client, node, node_with, redis_up, two_nodes};

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

//! Redis going away under a running cluster: messages published while a node's inbox was down,
//! `/readyz` following Redis, and a move a node missed while its inbox was down.

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{
    AnyClient, Client, Transport,
    cluster::{messages, send_to},
    eventually,
    http::http_get,
    metrics::scrape,
    process,
    redis::{OwnRedis, unique_prefix},
};

use crate::{client, node_on};

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

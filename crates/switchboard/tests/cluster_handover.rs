//! Cluster mode when a node stops being one, with real parts (`switchboard serve` processes on
//! loopback, the real Redis): a node frozen past its lease is fenced and rejoins, a node stopped
//! with SIGTERM hands its sessions over, and a Redis that lost its data fails every resume with
//! `session_expired`. Each test uses a key prefix (or a Redis) of its own.
//!
//! Without a Redis these tests fail when `CI` is set and are skipped with a note otherwise.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{
    AnyClient, End, Process, Transport,
    cluster::{self, by_sender, messages},
    eventually,
    http::http_get,
    redis::{OwnRedis, available as redis_up, keys, unique_prefix, url as redis_url},
};

const POLL_WAIT: Duration = Duration::from_millis(25_000);

async fn node(url: &str, prefix: &str, name: &str) -> Process {
    cluster::node(env!("CARGO_BIN_EXE_switchboard"), url, prefix, name, &[]).await
}

/// A WebSocket client of `user` on `node`, in `room` as `user`, its `joined` read.
async fn member(node: &Process, user: &str, room: &str) -> AnyClient {
    let mut c =
        AnyClient::connect_to(&node.addr, POLL_WAIT, Transport::Ws, user, "*", Role::Host).await;
    let join = c.msg("join").room(room).payload(json!({"peer": user}));
    c.send_ok(join).await;
    c.expect("joined").await;
    c
}

/// Sends messages `range` from `c` to `to` in `room`.
async fn send(c: &mut AnyClient, room: &str, to: &str, range: std::ops::Range<u64>) {
    for n in range {
        let m = c.msg("message").room(room).to(to).payload(json!({"n": n}));
        c.send_ok(m).await;
    }
}

/// The node Redis lists as holding `session` of the cluster `prefix` (`""` for none).
async fn holder(prefix: &str, session: &str) -> String {
    let client = redis::Client::open(redis_url()).expect("a Redis URL");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let node: Option<String> = redis::cmd("HGET")
        .arg(format!("{prefix}:s:{{{session}}}"))
        .arg("node")
        .query_async(&mut c)
        .await
        .expect("HGET answers");
    node.unwrap_or_else(|| "<none>".into())
}

/// Sends a signal to `process` (`STOP`, `CONT`).
fn signal(process: &Process, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &process.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

/// Waits until `node` answers `/readyz` with `want`.
async fn ready(node: &Process, want: u16) -> serde_json::Value {
    let url = format!("http://{}/readyz", node.addr);
    eventually(&format!("/readyz answers {want}"), || async {
        let (status, body) = http_get(&url, &[]).await;
        if status == want {
            Ok(body)
        } else {
            Err((status, body))
        }
    })
    .await
}

#[tokio::test]
async fn a_node_frozen_past_its_lease_is_fenced_and_its_clients_resume_elsewhere() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("fence");
    let a = node(&redis_url(), &prefix, "node-a").await;
    let b = node(&redis_url(), &prefix, "node-b").await;
    let mut alice = member(&a, "alice", "r1").await;
    let mut carol = member(&a, "carol", "r1").await;
    alice.expect("peer_joined").await;
    let mut bob = member(&b, "bob", "r1").await;
    alice.expect("peer_joined").await;
    carol.expect("peer_joined").await;
    send(&mut bob, "r1", "alice", 0..3).await;
    let mut to_alice = messages(&mut alice, 3).await;

    // Node a freezes past its lease: node b sweeps it, and its sessions wait for a resume.
    signal(&a, "STOP");
    eventually("node b sweeps node a", || async {
        match holder(&prefix, &alice.session).await.as_str() {
            "" => Ok(()),
            other => Err(other.to_owned()),
        }
    })
    .await;
    // Bob goes on meanwhile; carol gives up on the frozen node and resumes on node b.
    send(&mut bob, "r1", "alice", 3..8).await;
    send(&mut bob, "r1", "carol", 0..5).await;
    carol.move_to(&b.addr);
    let hello = carol
        .resume(Transport::Ws)
        .await
        .expect("carol resumes on b");
    assert_eq!(hello.payload["resumed"], true);
    let to_carol = messages(&mut carol, 5).await;
    assert_eq!(by_sender(&to_carol, "bob"), (0..5).collect::<Vec<_>>());

    // Thawed, node a learns its lease is gone before it acts on anything: alice's socket, still
    // open, gets nothing stale (bob's messages reached it while it was frozen), only 4006.
    signal(&a, "CONT");
    let (stale, end) = alice.until_end().await;
    assert!(stale.is_empty(), "the fenced node delivered {stale:?}");
    assert_eq!(end, End::WsClose(Some(4006)));
    alice.move_to(&b.addr);
    let hello = alice
        .resume(Transport::Ws)
        .await
        .expect("alice resumes on b");
    assert_eq!(hello.payload["resumed"], true);
    to_alice.extend(messages(&mut alice, 5).await);
    assert_eq!(by_sender(&to_alice, "bob"), (0..8).collect::<Vec<_>>());
    // Nothing else: no peer_left, no room_closed, for anyone; the room goes on.
    for c in [&mut alice, &mut carol, &mut bob] {
        c.expect_quiet().await;
    }
    send(&mut alice, "r1", "bob", 0..1).await;
    assert_eq!(messages(&mut bob, 1).await, [("alice".to_owned(), 0)]);

    // Node a rejoined as a new incarnation, without taking back what node b swept, and serves.
    ready(&a, 200).await;
    assert_eq!(holder(&prefix, &alice.session).await, "node-b");
    let mut dave = member(&a, "dave", "r1").await;
    for c in [&mut alice, &mut carol, &mut bob] {
        let joined = c.expect("peer_joined").await;
        assert_eq!(joined.payload["peer"], "dave");
    }
    send(&mut dave, "r1", "alice", 0..1).await;
    assert_eq!(messages(&mut alice, 1).await, [("dave".to_owned(), 0)]);
    let fenced = a.events("cluster.fenced");
    assert_eq!(fenced.len(), 1, "{fenced:?}");
    assert_eq!(fenced[0]["sessions"], 2);
    assert_eq!(a.events("cluster.rejoined").len(), 1);
    // Stopped, the last node ends what is left (dave, handed over by node a's drain).
    a.stop().await;
    b.stop().await;
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

/// The `(from, n)` of the `message`s among `got`; any other kind fails the test (a `peer_left`
/// or `room_closed` there is what a drain must not cause).
fn only_messages(got: &[switchboard_protocol::ServerEnvelope]) -> Vec<(String, u64)> {
    got.iter()
        .map(|m| {
            assert_eq!(m.kind, "message", "{m:?}");
            let from = m.from.clone().unwrap_or_default();
            (from, m.payload["n"].as_u64().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn sigterm_hands_every_session_over_with_nothing_lost_or_doubled() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("drain");
    let a = node(&redis_url(), &prefix, "node-a").await;
    let b = node(&redis_url(), &prefix, "node-b").await;
    let mut alice = member(&a, "alice", "r1").await;
    let mut bob = member(&b, "bob", "r1").await;
    alice.expect("peer_joined").await;

    // A stream both ways, node a stopping in the middle of it.
    send(&mut bob, "r1", "alice", 0..10).await;
    send(&mut alice, "r1", "bob", 0..10).await;
    let stopping = tokio::spawn(a.stop());
    send(&mut bob, "r1", "alice", 10..30).await;
    // Alice is told to resume elsewhere: 4006, after messages only.
    let (before, end) = alice.until_end().await;
    assert_eq!(end, End::WsClose(Some(4006)));
    let mut to_alice = only_messages(&before);
    alice.move_to(&b.addr);
    let hello = alice
        .resume(Transport::Ws)
        .await
        .expect("alice resumes on b");
    assert_eq!(hello.payload["resumed"], true);
    send(&mut alice, "r1", "bob", 10..15).await;
    to_alice.extend(messages(&mut alice, 30 - to_alice.len()).await);
    assert_eq!(by_sender(&to_alice, "bob"), (0..30).collect::<Vec<_>>());
    // Bob saw alice's messages once and in order, and nothing of the drain.
    let to_bob = messages(&mut bob, 15).await;
    assert_eq!(by_sender(&to_bob, "alice"), (0..15).collect::<Vec<_>>());
    for c in [&mut alice, &mut bob] {
        c.expect_quiet().await;
    }

    let lines = stopping.await.expect("node a stops");
    let drained = switchboard_testkit::process::events(&lines, "cluster.draining");
    assert_eq!(drained.len(), 1, "{drained:?}");
    assert_eq!(drained[0]["sessions"], 1);
    assert_eq!(b.events("cluster.session_adopted").len(), 1);
    // The last node ends what is left when it stops, as a single node would.
    let lines = b.stop().await;
    assert_eq!(
        switchboard_testkit::process::events(&lines, "cluster.last_node_stopping").len(),
        1
    );
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_redis_that_lost_its_data_fails_every_resume_with_session_expired() {
    let Some(own) = OwnRedis::start().await else {
        return;
    };
    let prefix = unique_prefix("flushed");
    let a = node(&own.url, &prefix, "node-a").await;
    let b = node(&own.url, &prefix, "node-b").await;
    let mut alice = member(&a, "alice", "r1").await;
    let mut bob = member(&b, "bob", "r1").await;
    alice.expect("peer_joined").await;
    send(&mut bob, "r1", "alice", 0..2).await;
    messages(&mut alice, 2).await;

    // Redis loses everything (as a restart without persistence does): each node finds its lease
    // gone, and tells its clients, whose sessions' state vanished, to resume.
    own.command(&["FLUSHALL"]).await;
    for c in [&mut alice, &mut bob] {
        let (_, end) = c.until_end().await;
        assert_eq!(end, End::WsClose(Some(4006)), "{}", c.name);
    }
    // The nodes rejoin; every resume, on either node, fails loudly: session_expired.
    ready(&a, 200).await;
    ready(&b, 200).await;
    assert!(alice.resume(Transport::Ws).await.is_none());
    alice.expect_refused("session_expired").await;
    bob.move_to(&a.addr);
    assert!(bob.resume(Transport::Ws).await.is_none());
    bob.expect_refused("session_expired").await;

    // New sessions work, across the nodes.
    let mut carol = member(&a, "carol", "r1").await;
    let mut dave = member(&b, "dave", "r1").await;
    carol.expect("peer_joined").await;
    send(&mut dave, "r1", "carol", 0..1).await;
    assert_eq!(messages(&mut carol, 1).await, [("dave".to_owned(), 0)]);
    for n in [&a, &b] {
        let fenced = n.events("cluster.fenced");
        assert_eq!(fenced.len(), 1, "{fenced:?}");
        assert_eq!(fenced[0]["why"], "lease_refused");
    }
    a.stop().await;
    b.stop().await;
}

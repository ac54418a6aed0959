//! A room's own limits across the nodes of a cluster, with real parts (`switchboard serve`
//! processes on loopback, the real Redis, a key prefix of the test's own): its message budget
//! (`room_messages_per_sec`), its idle close (`room_idle_ms`) and its lobby's 32 waiting guests
//! hold for the room as a whole, whichever nodes its members and guests are on.
//!
//! Without a Redis these tests fail when `CI` is set and are skipped with a note otherwise.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, DEADLINE, Process, cluster,
    metrics::scrape,
    redis::{available as redis_up, keys, unique_prefix, url as redis_url},
    tokens,
};

/// Two nodes, `node-a` and `node-b`, of a cluster of their own with `more` settings, and its key
/// prefix; `None` when there is no Redis.
async fn two_nodes(test: &str, more: &[(&str, &str)]) -> Option<(String, Process, Process)> {
    if !redis_up().await {
        return None;
    }
    let prefix = unique_prefix(test);
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let a = cluster::node(bin, &redis_url(), &prefix, "node-a", more).await;
    let b = cluster::node(bin, &redis_url(), &prefix, "node-b", more).await;
    Some((prefix, a, b))
}

async fn client(node: &Process, user: &str, role: Role) -> Client {
    let token = tokens::mint(user, "*", role);
    Client::connect(&format!("ws://{}/v1/ws?token={token}", node.addr)).await
}

/// Messages `node` dropped by the budget of a room.
async fn room_drops(node: &Process) -> u64 {
    let m = scrape(&format!("http://{}/metrics", node.addr)).await;
    let drops = m.samples.get("rate_limited_total{scope=\"room\"}");
    drops.copied().unwrap_or(0.0) as u64
}

/// Reads what `c` gets until `count` more relays came, or (`None`) until the answer to its ping
/// `last`: the relays read and the warnings among them.
async fn relays_and_warnings(c: &mut Client, count: Option<u64>) -> (u64, Vec<serde_json::Value>) {
    let mut warnings = Vec::new();
    let mut relays = 0;
    while count.is_none_or(|count| relays < count) {
        let m = c.recv().await;
        match m.kind.as_str() {
            "message" => relays += 1,
            "warning" => warnings.push(m.payload),
            "pong" if count.is_none() && m.id.as_deref() == Some("last") => break,
            other => panic!("unexpected {other}: {m:?}"),
        }
    }
    (relays, warnings)
}

const RATE: u64 = 50;
const BURST: u64 = 5;

#[tokio::test]
async fn a_rooms_message_budget_holds_for_its_members_on_every_node() {
    let rate = RATE.to_string();
    let burst = BURST.to_string();
    let more = [
        (
            "SWITCHBOARD_RATE_LIMITS__ROOM_MESSAGES_PER_SEC",
            rate.as_str(),
        ),
        (
            "SWITCHBOARD_RATE_LIMITS__ROOM_MESSAGE_BURST",
            burst.as_str(),
        ),
    ];
    let Some((prefix, a, b)) = two_nodes("rooms-rate", &more).await else {
        return;
    };
    let mut ann = client(&a, "ann", Role::Guest).await;
    let mut bob = client(&b, "bob", Role::Guest).await;
    ann.join("busy", "ann").await;
    bob.join("busy", "bob").await;
    ann.expect("peer_joined").await;
    // Each sends at 60% of the room's rate for 4 s: under it on each node, 120% of it together.
    let per_sec = RATE * 6 / 10;
    let seconds = 4;
    let sent = per_sec * seconds;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_sec as u32);
    let began = Instant::now();
    for n in 0..sent {
        tick.tick().await;
        for (c, to) in [(&mut ann, "bob"), (&mut bob, "ann")] {
            let m = c
                .msg("message")
                .room("busy")
                .to(to)
                .payload(json!({"n": n}));
            c.send(m).await;
        }
    }
    let took = began.elapsed().as_secs_f64();
    // Each member's own messages are all handled once a ping after them is answered.
    let mut got = Vec::new();
    for c in [&mut ann, &mut bob] {
        let ping = c.msg("ping").id("last");
        c.send(ping).await;
        got.push(relays_and_warnings(c, None).await);
    }
    let (dropped_a, dropped_b) = (room_drops(&a).await, room_drops(&b).await);
    let accepted = 2 * sent - dropped_a - dropped_b;
    // The room's rate across the cluster, its burst, and a little for the time the sends
    // took to be handled and synced; counted per node, nothing would have been dropped.
    let most = (RATE as f64 * (took + 0.5)) as u64 + BURST;
    let least = (RATE as f64 * (took - 0.5)) as u64;
    assert!(
        (least..=most).contains(&accepted),
        "{accepted} of {} accepted in {took:.2} s ({dropped_a} + {dropped_b} dropped); \
         the room takes {RATE} a second",
        2 * sent
    );
    // Who of the two is dropped depends on when each sends as the budget runs out, as on one
    // node; together they are.
    assert!(dropped_a + dropped_b > 0);
    // Each member gets every message the other's node accepted, and a member that went over the
    // room's budget gets the warning it gets on one node.
    let expected = [sent - dropped_b, sent - dropped_a];
    let dropped = [dropped_a, dropped_b];
    let each = [&mut ann, &mut bob]
        .into_iter()
        .zip(got)
        .zip(expected)
        .zip(dropped);
    for (((c, (relays, mut warnings)), expected), dropped) in each {
        let (more, later) = relays_and_warnings(c, Some(expected - relays)).await;
        assert_eq!(relays + more, expected);
        warnings.extend(later);
        assert_eq!(warnings.is_empty(), dropped == 0, "{warnings:?}");
        for w in warnings {
            assert_eq!(w["code"], "rate_limited", "{w}");
            assert_eq!(
                w["message"],
                "messages over the room budget are being dropped; slow down"
            );
        }
        c.expect_quiet().await;
    }
    let throttled = |node: &Process| {
        let url = format!("http://{}/metrics", node.addr);
        async move { scrape(&url).await.get("cluster_room_throttled_total") }
    };
    assert!(throttled(&a).await + throttled(&b).await > 0.0);
    for node in [a, b] {
        let lines = node.stop().await;
        let logged = switchboard_testkit::process::events(&lines, "cluster.room_throttled");
        assert!(logged.iter().all(|e| e["room"] == "busy"), "{logged:?}");
        let failed = switchboard_testkit::process::events(&lines, "cluster.budget_sync_failed");
        assert!(failed.is_empty(), "{failed:?}");
    }
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_room_on_two_nodes_closes_for_idleness_only_once_idle_on_both() {
    let more = [("SWITCHBOARD_ROOM_IDLE_MS", "1500")];
    let Some((prefix, a, b)) = two_nodes("rooms-idle", &more).await else {
        return;
    };
    let mut ann = client(&a, "ann", Role::Host).await;
    let mut bob = client(&b, "bob", Role::Guest).await;
    ann.join("quiet", "ann").await;
    bob.join("quiet", "bob").await;
    ann.expect("peer_joined").await;
    // Bob keeps busy for three idle timeouts on node b while ann says nothing on node a: the
    // room stays open on both.
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ping = bob.msg("ping");
        bob.send(ping).await;
        bob.expect("pong").await;
    }
    // Whatever node a decided meanwhile, it is queued before the answer to a ping now.
    ann.expect_quiet().await;
    bob.expect_quiet().await;
    // Then nobody does anything: the room closes for both, as on one node.
    let began = Instant::now();
    for c in [&mut ann, &mut bob] {
        let closed = c.expect("room_closed").await;
        assert_eq!(closed.room.as_deref(), Some("quiet"));
        assert_eq!(closed.payload, json!({"reason": "idle"}));
    }
    assert!(began.elapsed() < DEADLINE);
    // The room is gone from the store; its members may open it again.
    let room_keys: Vec<String> = (keys(&prefix).await.into_iter())
        .filter(|k| k.contains(":r:{quiet}"))
        .collect();
    assert_eq!(room_keys, Vec::<String>::new());
    let joined = bob.join("quiet", "bob").await;
    assert_eq!(joined.payload["peers"], json!([]));
    // Closed once: nothing more came for ann either.
    ann.expect_quiet().await;
    for node in [a, b] {
        let lines = node.stop().await;
        let failed = switchboard_testkit::process::events(&lines, "cluster.idle_check_failed");
        assert!(failed.is_empty(), "{failed:?}");
    }
}

/// A lobby session on `node` for `room`, as a share code gives one.
async fn guest(node: &Process, user: &str, room: &str) -> Client {
    let ttl = tokens::TTL;
    let name = Some(format!("Guest {user}"));
    let token = (tokens::signer().mint_as(user, room, Role::Guest, name, ttl, true)).unwrap();
    Client::connect(&format!("ws://{}/v1/ws?token={token}", node.addr)).await
}

#[tokio::test]
async fn a_rooms_lobby_holds_32_guests_knocking_through_any_node() {
    let Some((_, a, b)) = two_nodes("rooms-lobby", &[]).await else {
        return;
    };
    let mut host = client(&a, "host", Role::Host).await;
    host.join("door", "host").await;
    let mut waiting = Vec::new();
    for i in 0..32 {
        let node = if i % 2 == 0 { &a } else { &b };
        let mut g = guest(node, &format!("g{i}"), "door").await;
        let knock = g.msg("knock").room("door");
        g.send(knock).await;
        g.expect("knocking").await;
        host.expect("knock").await;
        waiting.push(g);
    }
    // 16 through each node: the 33rd is refused on either, as on one node.
    for (node, user) in [(&a, "late-a"), (&b, "late-b")] {
        let mut late = guest(node, user, "door").await;
        let knock = late.msg("knock").room("door").id("k");
        late.send(knock).await;
        let refused = late.expect_error("rate_limited").await;
        assert_eq!(refused.id.as_deref(), Some("k"));
        let message = refused.payload["message"].as_str().unwrap();
        assert!(message.starts_with("32 guests are waiting"), "{message}");
    }
    host.expect_quiet().await;
    // A guest who stops waiting, on node b, makes room for one on node a.
    let mut gone = waiting.pop().unwrap();
    let leave = gone.msg("leave").room("door");
    gone.send(leave).await;
    gone.expect("left").await;
    host.expect("knock_ended").await;
    let mut next = guest(&a, "next", "door").await;
    let knock = next.msg("knock").room("door");
    next.send(knock).await;
    next.expect("knocking").await;
    drop(waiting);
    a.stop().await;
    b.stop().await;
}

//! The SFU in cluster mode, with real parts: two `switchboard serve` processes on loopback, each
//! with its SFU, sharing rooms through the real Redis, and `webrtc` peers in this process
//! (`sfu_peer`) on either node. A room's media lives on one node, its media node; members on the
//! other node reach it through their own node. Media flows between every pair of members
//! whichever node holds their signaling, and a media node killed with SIGKILL is survived: the
//! members left start their media over on the other node, and frames flow again.
//!
//! Without a Redis these tests fail when `CI` is set and are skipped with a note otherwise (see
//! `tests/cluster/`).

mod sfu_peer;

use std::time::Instant;

use serde_json::json;
use sfu_peer::{
    CALL_DEADLINE, FRAMES, Member, ROOM, auto_room_moves_to_the_sfu_and_back, finish, got_from,
    member, metric, start_call, until_kind, until_metric, wait_until,
};
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, Process, cluster, redis::available as redis_up, redis::unique_prefix,
    redis::url as redis_url, tokens,
};
use tokio_util::sync::CancellationToken;

/// The SFU on loopback, with two media workers: the commands other nodes send a media node
/// reach its rooms' workers through the same placement as its own.
const SFU: [(&str, &str); 3] = [
    ("SWITCHBOARD_SFU__UDP_PORT", "0"),
    ("SWITCHBOARD_SFU__BIND", "127.0.0.1"),
    ("SWITCHBOARD_SFU__WORKERS", "2"),
];

/// Two nodes with an SFU each, `node-a` and `node-b`, of a cluster of their own, rooms of
/// `media_mode`; `None` without a Redis.
async fn two_nodes(test: &str, media_mode: &str) -> Option<(Process, Process)> {
    if !redis_up().await {
        return None;
    }
    let prefix = unique_prefix(test);
    let binary = env!("CARGO_BIN_EXE_switchboard");
    let mut env = SFU.to_vec();
    env.push(("SWITCHBOARD_MEDIA_MODE", media_mode));
    let a = cluster::node(binary, &redis_url(), &prefix, "node-a", &env).await;
    let b = cluster::node(binary, &redis_url(), &prefix, "node-b", &env).await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_between_members_on_two_nodes_through_the_rooms_media_node() {
    let Some((a, b)) = two_nodes("sfu-media", "sfu").await else {
        return;
    };
    let started = Instant::now();
    let stop = CancellationToken::new();
    // Alice's join makes node-a the room's media node; bob and carol are on node-b.
    let alice = member(&a.addr, "alice", true, "sfu").await;
    let bob = member(&b.addr, "bob", true, "sfu").await;
    let carol = member(&b.addr, "carol", false, "sfu").await;
    let watch = [
        ("alice", alice.received.clone(), "bob"),
        ("bob", bob.received.clone(), "alice"),
        ("carol", carol.received.clone(), "alice"),
        ("carol", carol.received.clone(), "bob"),
    ];
    let (tasks, writers) = start_call(vec![alice, bob, carol], &stop, started).await;
    for (name, received, from) in &watch {
        wait_until(&format!("{name} receives {from}'s frames"), started, || {
            got_from(received, from)
        })
        .await;
    }
    // Node-b's members' commands went to node-a's SFU; node-a hosts the room's media.
    assert!(metric(&b.addr, "cluster_media_commands_sent_total").await > 0.0);
    assert!(metric(&a.addr, "cluster_media_commands_received_total").await > 0.0);
    assert_eq!(
        metric(&a.addr, "cluster_media_commands_sent_total").await,
        0.0
    );
    until_metric(&a.addr, "sfu_participants_gauge", 3.0, started).await;
    assert_eq!(metric(&b.addr, "sfu_participants_gauge").await, 0.0);
    stop.cancel();
    finish(writers).await;
    for t in tasks {
        let m = t
            .await
            .expect("member task")
            .expect("member ran without error");
        assert_eq!(m.over, None, "{}'s media session ran through", m.name);
        m.close().await;
    }
    eprintln!(
        "every member got {FRAMES}+ frames of every other within {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_node_killed_is_survived_by_the_members_on_the_other_node() {
    let Some((a, b)) = two_nodes("sfu-failover", "sfu").await else {
        return;
    };
    let started = Instant::now();
    let stop = CancellationToken::new();
    let alice = member(&a.addr, "alice", false, "sfu").await;
    let bob = member(&b.addr, "bob", false, "sfu").await;
    let carol = member(&b.addr, "carol", true, "sfu").await;
    let received = bob.received.clone();
    let (tasks, writers) = start_call(vec![alice, bob, carol], &stop, started).await;
    wait_until(
        "bob receives carol's frames on node-a's SFU",
        started,
        || got_from(&received, "carol"),
    )
    .await;

    // The media node dies. Node-b finds its lease gone, takes the room, and tells its members
    // to start their media over; they offer again, now to node-b's SFU.
    a.kill().await;
    let killed = Instant::now();
    let mut over = Vec::new();
    // Alice's signaling went with node-a.
    for t in tasks.into_iter().skip(1) {
        let m = tokio::time::timeout(CALL_DEADLINE, t).await;
        let mut m = (m.expect("told within the deadline").expect("member task"))
            .expect("member ran without error");
        if m.over != Some("media_unavailable") {
            let error = until_kind(&mut m.client, "error").await;
            assert_eq!(error.payload["code"], "media_unavailable", "{error:?}");
        }
        m.pc.close().await.expect("closes");
        over.push(m);
    }
    let told = killed.elapsed();
    stop.cancel();
    for w in writers {
        // Carol's writer stops with the call; what it wrote before is counted already.
        let _ = w.await.expect("writer task");
    }
    let restarted = Instant::now();
    let stop = CancellationToken::new();
    let mut again = Vec::new();
    for m in over {
        let publish = m.video.is_some();
        again.push(Member::over(m.client, m.room, m.name, publish).await);
    }
    let received = again[0].received.clone();
    let (tasks, writers) = start_call(again, &stop, restarted).await;
    wait_until(
        "bob receives carol's frames on node-b's SFU",
        restarted,
        || got_from(&received, "carol"),
    )
    .await;
    assert_eq!(metric(&b.addr, "cluster_media_moved_total").await, 1.0);
    until_metric(&b.addr, "sfu_participants_gauge", 2.0, restarted).await;
    stop.cancel();
    finish(writers).await;
    for t in tasks {
        let m = t
            .await
            .expect("member task")
            .expect("member ran without error");
        m.close().await;
    }
    assert!(told < CALL_DEADLINE);
    eprintln!(
        "media node killed: members told in {told:?}, frames again {:?} after they offered",
        restarted.elapsed()
    );
}

/// An `auto` room spread over the nodes: two members on node-a call directly; a third joining on
/// node-b moves everyone to the SFU (each node hands its own members to the room's media node),
/// where video flows across the nodes; when the third leaves, the node of the first member moves
/// the room back to mesh and the SFU lets go of everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_room_on_two_nodes_moves_to_the_sfu_at_three_and_back_at_two() {
    let Some((a, b)) = two_nodes("sfu-auto", "auto").await else {
        return;
    };
    auto_room_moves_to_the_sfu_and_back(&[a.addr.clone(), b.addr.clone()]).await;
}

/// A host's `set_media` holds for a member joining later through a node none of whose members
/// was in the room then: the setting is in Redis.
#[tokio::test]
async fn a_hosts_media_setting_holds_for_members_joining_on_another_node() {
    let Some((a, b)) = two_nodes("sfu-set-media", "auto").await else {
        return;
    };
    let token = tokens::mint("alice", "*", Role::Host);
    let mut alice = Client::connect(&format!("ws://{}/v1/ws?token={token}", a.addr)).await;
    alice.join(ROOM, "alice").await;
    let set = alice
        .msg("set_media")
        .room(ROOM)
        .payload(json!({"media": "sfu"}));
    alice.send(set).await;
    let changed = alice.expect("media_changed").await;
    assert_eq!(changed.payload["media"], "sfu");
    let token = tokens::mint("bob", "*", Role::Guest);
    let mut bob = Client::connect(&format!("ws://{}/v1/ws?token={token}", b.addr)).await;
    let joined = bob.join(ROOM, "bob").await;
    assert_eq!(joined.payload["media"], "sfu", "{joined:?}");
    assert_eq!(joined.payload["media_mode"], "sfu");
    alice.close().await;
    bob.close().await;
}

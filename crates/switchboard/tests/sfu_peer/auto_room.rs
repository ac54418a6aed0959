//! The `auto` media-mode scenario, written once for the one-node test (`sfu_media.rs`) and the
//! two-node one (`sfu_cluster.rs`): a room going from two participants to three and back, from a
//! mesh to the SFU and back to a mesh. Only where the members connect differs, so the nodes are
//! the parameter.

use std::time::Instant;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{
    Member, ROOM, finish, got_from, member, start_call, until_kind, until_metric, wait_until,
};

/// An `auto` room through `nodes` (each `host:port`; one node, or several of a cluster): alice and
/// bob join through the first and call directly; carol, joining through the last, moves everyone
/// to the SFU (each node hands its own members to the room's media node), where alice's video
/// reaches the other two; when carol leaves, the room goes back to a mesh and the SFU of every
/// node lets go of everyone.
pub async fn auto_room_moves_to_the_sfu_and_back(nodes: &[String]) {
    let (first, last) = (&nodes[0], &nodes[nodes.len() - 1]);
    let started = Instant::now();
    let stop = CancellationToken::new();
    let mut alice = member(first, "alice", true, "mesh").await;
    let mut bob = member(first, "bob", false, "mesh").await;
    let carol = member(last, "carol", false, "sfu").await;
    for m in [&mut alice, &mut bob] {
        let moved = until_kind(&mut m.client, "media_changed").await;
        assert_eq!(moved.payload, json!({"media": "sfu", "media_mode": "auto"}));
    }
    let watch: Vec<_> = [&bob, &carol]
        .iter()
        .map(|m| (m.name, m.received.clone()))
        .collect();
    let (tasks, writers) = start_call(vec![alice, bob, carol], &stop, started).await;
    for (name, received) in &watch {
        wait_until(&format!("{name} receives alice's frames"), started, || {
            got_from(received, "alice")
        })
        .await;
    }
    stop.cancel();
    finish(writers).await;
    let mut members: Vec<Member> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.expect("member task").expect("member ran without error"))
        .collect();

    let mut carol = members.pop().expect("carol");
    let leave = carol.client.msg("leave").room(ROOM);
    carol.client.send(leave).await;
    for m in &mut members {
        let back = until_kind(&mut m.client, "media_changed").await;
        assert_eq!(back.payload, json!({"media": "mesh", "media_mode": "auto"}));
    }
    for node in nodes {
        until_metric(node, "sfu_participants_gauge", 0.0, started).await;
    }
    for m in members.into_iter().chain([carol]) {
        m.close().await;
    }
}

//! A room's own limits across the nodes of a cluster, with real parts (`switchboard serve`
//! processes on loopback, the real Redis, a key prefix of the test's own): its lobby's 32
//! waiting guests hold for the room as a whole, whichever nodes its guests are on.
//!
//! Without a Redis these tests fail when `CI` is set and are skipped with a note otherwise.

use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, Process, cluster,
    redis::{available as redis_up, unique_prefix, url as redis_url},
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

//! Caps that hold across the nodes of a cluster, with real parts (`switchboard serve` processes
//! on loopback, the real Redis, a key prefix of the test's own): `max_sessions_per_user` counts a
//! user's sessions on every node.
//!
//! Without a Redis these tests fail when `CI` is set and are skipped with a note otherwise.

use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, DEADLINE, Process, cluster, eventually, process,
    redis::{available as redis_up, keys, unique_prefix, url as redis_url},
    tokens, ws_refusal,
};

async fn node(prefix: &str, name: &str) -> Process {
    let more = [("SWITCHBOARD_MAX_SESSIONS_PER_USER", "2")];
    let bin = env!("CARGO_BIN_EXE_switchboard");
    cluster::node(bin, &redis_url(), prefix, name, &more).await
}

fn url(node: &Process, user: &str) -> String {
    let token = tokens::mint(user, "*", Role::Guest);
    format!("ws://{}/v1/ws?token={token}", node.addr)
}

#[tokio::test]
async fn max_sessions_per_user_counts_the_sessions_on_every_node() {
    if !redis_up().await {
        return;
    }
    let prefix = unique_prefix("caps");
    let a = node(&prefix, "node-a").await;
    let b = node(&prefix, "node-b").await;
    // One session on each node: the cap of 2 is reached, though each node holds only one.
    let first = Client::connect(&url(&a, "alice")).await;
    let _second = Client::connect(&url(&b, "alice")).await;
    for n in [&a, &b] {
        let (status, body) = ws_refusal(&url(n, "alice"), &[]).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    // Another user is not affected; one of alice's sessions ending frees a place, on any node.
    let _bob = Client::connect(&url(&a, "bob")).await;
    first.close().await;
    // Its end is committed just after its socket closed.
    let third = url(&b, "alice");
    let _third = eventually("a place is free for alice", || async {
        match Client::try_connect(&third, DEADLINE).await {
            Some(Ok(c)) => Ok(c),
            other => Err(format!("{:?}", other.map(|r| r.err()))),
        }
    })
    .await;
    let (status, _) = ws_refusal(&url(&a, "alice"), &[]).await;
    assert_eq!(status, 429);

    let lines = a.stop().await;
    assert!(process::events(&lines, "cluster.admit_failed").is_empty());
    b.stop().await;
    assert_eq!(keys(&prefix).await, Vec::<String>::new());
}

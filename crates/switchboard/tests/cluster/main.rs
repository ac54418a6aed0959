//! Cluster mode with real parts: two `switchboard serve` processes on loopback sharing rooms
//! through the real Redis (127.0.0.1:6379, or `SWITCHBOARD_TEST_REDIS`). Each test uses a prefix of
//! its own, so tests and runs never see each other's keys.
//!
//! Without a Redis these tests fail when `CI` is set (CI must provide one: `scripts/test` starts
//! it) and are skipped with a note otherwise.
//!
//! The nodes and clients every test starts are made here; the tests are in `rooms` (members on
//! two nodes sharing a room), `failover` (sessions moving between nodes, nodes dying) and `outage`
//! (Redis going away under a running cluster).

mod failover;
mod outage;
mod rooms;

use switchboard_protocol::Role;
use switchboard_testkit::{Client, Process, cluster, tokens};

use switchboard_testkit::redis::{available as redis_up, unique_prefix, url as redis_url};

/// A node of the cluster `prefix` on the shared Redis, named `name`.
pub(crate) async fn node(prefix: &str, name: &str) -> Process {
    node_on(&redis_url(), prefix, name).await
}

/// A node of the cluster `prefix` on the Redis at `url`, named `name`.
pub(crate) async fn node_on(url: &str, prefix: &str, name: &str) -> Process {
    node_with(url, prefix, name, &[]).await
}

/// [`node_on`] with more settings.
pub(crate) async fn node_with(
    url: &str,
    prefix: &str,
    name: &str,
    more: &[(&str, &str)],
) -> Process {
    cluster::node(env!("CARGO_BIN_EXE_switchboard"), url, prefix, name, more).await
}

/// Two nodes, `node-a` and `node-b`, of a cluster of their own on the shared Redis, with its key
/// prefix; `None` when there is no Redis (see [`redis_up`]).
pub(crate) async fn two_nodes(test: &str) -> Option<(String, Process, Process)> {
    if !redis_up().await {
        return None;
    }
    let prefix = unique_prefix(test);
    let a = node(&prefix, "node-a").await;
    let b = node(&prefix, "node-b").await;
    Some((prefix, a, b))
}

pub(crate) async fn client(node: &Process, user: &str, role: Role) -> Client {
    let token = tokens::mint(user, "*", role);
    Client::connect(&format!("ws://{}/v1/ws?token={token}", node.addr)).await
}

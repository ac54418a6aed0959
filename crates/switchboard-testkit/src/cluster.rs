//! Nodes of a cluster as real processes, and what cluster tests check of the message streams
//! their clients see.

use serde_json::json;

use crate::{AnyClient, Client, Process, process};

/// A `switchboard serve` (`binary`) of the cluster `prefix` on the Redis at `url`, named `name`,
/// on one worker thread and with no per-address budgets, with `more` settings.
pub async fn node(
    binary: &str,
    url: &str,
    prefix: &str,
    name: &str,
    more: &[(&str, &str)],
) -> Process {
    let mut env = vec![
        ("SWITCHBOARD_REDIS_URL", url),
        ("SWITCHBOARD_REDIS_PREFIX", prefix),
        ("SWITCHBOARD_NODE_ID", name),
        ("SWITCHBOARD_WORKER_THREADS", "1"),
    ];
    env.extend(process::NO_ADDRESS_BUDGETS);
    env.extend(more);
    Process::start(binary, &env, None).await
}

/// Receives `count` messages of type `message` and gives their `(from, n)`.
pub async fn messages(c: &mut AnyClient, count: usize) -> Vec<(String, u64)> {
    let mut got = Vec::new();
    for _ in 0..count {
        let m = c.expect("message").await;
        let from = m.from.clone().unwrap_or_default();
        got.push((from, m.payload["n"].as_u64().unwrap()));
    }
    got
}

/// Sends messages `range` from `c` to `to` in `room`.
pub async fn send_to(c: &mut Client, room: &str, to: &str, range: std::ops::Range<u64>) {
    for n in range {
        let m = c.msg("message").room(room).to(to).payload(json!({"n": n}));
        c.send(m).await;
    }
}

/// Each sender's messages, in order: what a recipient must have got exactly once.
pub fn by_sender(got: &[(String, u64)], from: &str) -> Vec<u64> {
    got.iter()
        .filter(|(f, _)| f == from)
        .map(|(_, n)| *n)
        .collect()
}

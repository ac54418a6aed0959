//! The WebSocket transport writes a relayed message into the recipient's socket from the task
//! that handled it. With many senders on many threads writing to one recipient at once, every
//! message must still arrive exactly once, numbered without a gap, and in each sender's order.
//!
//! Each sender sends its whole message burst (the default budget's 100) at once: a flood beyond
//! what the reader takes would end its session with `overflow`, by design, which is not what
//! this test is about.

use std::collections::HashMap;

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{TestServer, server::no_address_budgets};

const SENDERS: usize = 6;
const MESSAGES: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_reach_one_recipient_once_each_and_in_order() {
    let server = TestServer::start_with(no_address_budgets).await;
    let mut sink = server.joined("sink", "r1", Role::Host, "sink").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let name = format!("s{i}");
        senders.push(server.joined(&name, "r1", Role::Guest, &name).await);
    }
    let floods: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            tokio::spawn(async move {
                for n in 0..MESSAGES {
                    let m = sender
                        .msg("message")
                        .room("r1")
                        .to("sink")
                        .payload(json!({"n": n}));
                    sender.send(m).await;
                }
                sender
            })
        })
        .collect();
    // `recv` itself fails the test if a `seq` is skipped or repeated.
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut received = 0;
    while received < SENDERS as u64 * MESSAGES {
        let m = sink.recv().await;
        if m.kind != "message" {
            continue;
        }
        let from = m.from.clone().expect("a relayed message names its sender");
        let expected = next.entry(from.clone()).or_insert(0);
        assert_eq!(
            m.payload["n"],
            json!(*expected),
            "order of {from}'s messages"
        );
        *expected += 1;
        received += 1;
    }
    for flood in floods {
        flood.await.expect("sender finished");
    }
    assert_eq!(next.len(), SENDERS);
    assert!(next.values().all(|n| *n == MESSAGES));
}

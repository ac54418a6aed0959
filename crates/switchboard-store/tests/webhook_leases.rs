//! The webhook outbox's delivery leases (`JournalStore::claim_webhooks`), on both databases like
//! `tests/contract/`, with two store handles on one database standing in for two nodes: a
//! stream's head leased to one node is not handed to the other until it is delivered, released,
//! or its lease runs out (the node died); and nodes claiming at once deliver every entry once, in
//! its stream's order.

use std::sync::{Arc, Mutex};
use switchboard_store::{NewOutboxEntry, Store, testing::TestDb};

const NOW: i64 = 1_800_000_000_000;
const LEASE: i64 = 1_000;

fn delivery(stream: &str, n: u32) -> NewOutboxEntry {
    NewOutboxEntry {
        endpoint: "http://hook".into(),
        stream: stream.into(),
        event_id: format!("msg_{stream}_{n}"),
        kind: "participant_joined".into(),
        body: format!("{{\"n\":{n}}}"),
        now: NOW,
    }
}

/// Two handles ("nodes") on a fresh database of `db`.
async fn two_nodes(db: &TestDb) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let a = switchboard_store::open(&db.location).await.expect("open a");
    let b = switchboard_store::open(&db.location).await.expect("open b");
    (a, b)
}

async fn claimed(store: &Arc<dyn Store>, holder: &str, now: i64) -> Vec<String> {
    store
        .claim_webhooks(holder, now, now + LEASE, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect()
}

async fn a_leased_stream_waits_for_its_node(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let (a, b) = two_nodes(&db).await;
    a.enqueue_webhooks(&[delivery("r1", 1), delivery("r1", 2), delivery("r2", 1)])
        .await
        .unwrap();
    let heads = a.claim_webhooks("a", NOW, NOW + LEASE, 10).await.unwrap();
    let ids: Vec<_> = heads.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["msg_r1_1", "msg_r2_1"]);
    assert_eq!(
        claimed(&b, "b", NOW).await,
        Vec::<String>::new(),
        "both heads are a's"
    );
    // A node asking again gets its own leases back (a round cut short by a store error).
    assert_eq!(claimed(&a, "a", NOW + 1).await, ["msg_r1_1", "msg_r2_1"]);

    // Delivered: the stream's next entry is anyone's.
    assert!(a.remove_webhook(heads[0].id).await.unwrap());
    assert_eq!(claimed(&b, "b", NOW + 2).await, ["msg_r1_2"]);

    // a dies holding r2's head: b takes it once the lease has run out, not before.
    assert_eq!(claimed(&b, "b", NOW + LEASE).await, ["msg_r1_2"]);
    assert_eq!(
        claimed(&b, "b", NOW + LEASE + 1).await,
        ["msg_r1_2", "msg_r2_1"]
    );

    // A node that stops gives its leases back at once.
    assert_eq!(b.release_webhooks("b").await.unwrap(), 2);
    assert_eq!(
        claimed(&a, "a", NOW + LEASE + 2).await,
        ["msg_r1_2", "msg_r2_1"]
    );

    // A failed attempt gives its lease back too: the retry is anyone's when it is due.
    let r2 = &a
        .claim_webhooks("a", NOW + LEASE + 3, NOW + 2 * LEASE, 10)
        .await
        .unwrap()[1];
    assert!(a.retry_webhook("a", r2.id, NOW + LEASE + 10).await.unwrap());
    assert_eq!(
        claimed(&b, "b", NOW + LEASE + 9).await,
        Vec::<String>::new()
    );
    assert_eq!(claimed(&b, "b", NOW + LEASE + 10).await, ["msg_r2_1"]);

    // b's lease runs out mid-attempt and a claims the entry: b's late failure changes nothing
    // (the attempt is a's now), and a's lease stands.
    let late = NOW + LEASE + 10 + LEASE + 1;
    assert_eq!(claimed(&a, "a", late).await, ["msg_r1_2", "msg_r2_1"]);
    assert!(!b.retry_webhook("b", r2.id, late + 1_000).await.unwrap());
    assert_eq!(
        claimed(&b, "b", late + 1).await,
        Vec::<String>::new(),
        "still a's"
    );
    assert_eq!(claimed(&a, "a", late + 1).await, ["msg_r1_2", "msg_r2_1"]);
    db.remove().await;
}

async fn nodes_claiming_at_once_deliver_each_entry_once_in_order(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let (a, b) = two_nodes(&db).await;
    const STREAMS: u32 = 3;
    const PER_STREAM: u32 = 20;
    let mut entries = Vec::new();
    for n in 0..PER_STREAM {
        for s in 0..STREAMS {
            entries.push(delivery(&format!("r{s}"), n));
        }
    }
    a.enqueue_webhooks(&entries).await.unwrap();
    // Every delivery in the order it was made, by event id.
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut nodes = Vec::new();
    for (name, store) in [("a", a.clone()), ("b", b.clone()), ("c", a), ("d", b)] {
        let log = log.clone();
        nodes.push(tokio::spawn(async move {
            // Bounded: 3 × 20 entries need at most 60 productive rounds between four nodes.
            for round in 0..2_000 {
                let now = NOW + round;
                let due = store
                    .claim_webhooks(name, now, now + 60_000, 4)
                    .await
                    .unwrap();
                if due.is_empty() && store.webhook_depth().await.unwrap() == 0 {
                    return;
                }
                for entry in due {
                    log.lock().unwrap().push(entry.event_id.clone());
                    assert!(
                        store.remove_webhook(entry.id).await.unwrap(),
                        "removed once"
                    );
                }
                tokio::task::yield_now().await;
            }
            panic!("{name}: the outbox did not empty");
        }));
    }
    for node in nodes {
        node.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.len(),
        (STREAMS * PER_STREAM) as usize,
        "each delivered once: {log:?}"
    );
    for s in 0..STREAMS {
        let order: Vec<_> = log
            .iter()
            .filter(|id| id.starts_with(&format!("msg_r{s}_")))
            .cloned()
            .collect();
        let expected: Vec<_> = (0..PER_STREAM).map(|n| format!("msg_r{s}_{n}")).collect();
        assert_eq!(order, expected, "stream r{s} in order");
    }
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_stream_waits_for_its_node_sqlite() {
    a_leased_stream_waits_for_its_node(Some(TestDb::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_stream_waits_for_its_node_postgres() {
    a_leased_stream_waits_for_its_node(TestDb::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_claiming_at_once_deliver_each_entry_once_in_order_sqlite() {
    nodes_claiming_at_once_deliver_each_entry_once_in_order(Some(TestDb::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_claiming_at_once_deliver_each_entry_once_in_order_postgres() {
    nodes_claiming_at_once_deliver_each_entry_once_in_order(TestDb::postgres().await).await;
}

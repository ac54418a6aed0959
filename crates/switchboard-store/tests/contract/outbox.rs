//! The webhook outbox: deliveries handed out stream by stream in order, a failed head holding
//! its stream back until it is gone.

use std::sync::Arc;

use switchboard_store::{NewOutboxEntry, Store};

use crate::NOW;

fn delivery(endpoint: &str, stream: &str, n: u32) -> NewOutboxEntry {
    NewOutboxEntry {
        endpoint: endpoint.into(),
        stream: stream.into(),
        event_id: format!("msg_{stream}_{n}"),
        kind: "participant_joined".into(),
        body: format!("{{\"n\":{n}}}"),
        now: NOW,
    }
}

pub async fn webhook_outbox_hands_out_each_stream_in_order(store: Arc<dyn Store>) {
    assert_eq!(store.next_webhook_at().await.unwrap(), None);
    store
        .enqueue_webhooks(&[
            delivery("http://a", "r1", 1),
            delivery("http://a", "r1", 2),
            delivery("http://a", "r2", 1),
            delivery("http://b", "r1", 1),
        ])
        .await
        .unwrap();
    assert_eq!(store.webhook_depth().await.unwrap(), 4);
    assert_eq!(store.next_webhook_at().await.unwrap(), Some(NOW));
    let due = store
        .claim_webhooks("n1", NOW, NOW + 60_000, 10)
        .await
        .unwrap();
    let ids: Vec<_> = due.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        ids,
        ["msg_r1_1", "msg_r2_1", "msg_r1_1"],
        "one head per stream"
    );
    assert_eq!(due[0].endpoint, "http://a");
    assert_eq!(due[2].endpoint, "http://b");
    assert_eq!(due[0].body, "{\"n\":1}");
    assert_eq!(
        store
            .claim_webhooks("n1", NOW - 1, NOW - 1 + 60_000, 10)
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        store
            .claim_webhooks("n1", NOW, NOW + 60_000, 1)
            .await
            .unwrap()
            .len(),
        1
    );

    // A failed head holds its stream back, and the stream's next due time is the head's.
    assert!(
        store
            .retry_webhook("n1", due[0].id, NOW + 500)
            .await
            .unwrap()
    );
    let due = store
        .claim_webhooks("n1", NOW + 1, NOW + 1 + 60_000, 10)
        .await
        .unwrap();
    let ids: Vec<_> = due
        .iter()
        .map(|e| (e.endpoint.as_str(), e.event_id.as_str()))
        .collect();
    assert_eq!(ids, [("http://a", "msg_r2_1"), ("http://b", "msg_r1_1")]);
    assert!(store.remove_webhook(due[0].id).await.unwrap());
    assert!(store.remove_webhook(due[1].id).await.unwrap());
    assert!(!store.remove_webhook(due[1].id).await.unwrap());
    assert_eq!(store.next_webhook_at().await.unwrap(), Some(NOW + 500));
    let due = store
        .claim_webhooks("n1", NOW + 500, NOW + 500 + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].event_id.as_str(), due[0].attempts), ("msg_r1_1", 1));

    // Once the head is gone, the stream's next one is handed out.
    assert!(store.remove_webhook(due[0].id).await.unwrap());
    let due = store
        .claim_webhooks("n1", NOW + 500, NOW + 500 + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_id, "msg_r1_2");
    assert_eq!(store.webhook_depth().await.unwrap(), 1);
}

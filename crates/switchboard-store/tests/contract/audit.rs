//! The audit log: entries filtered by room, kind and time, paged newest first, and swept by age.

use std::sync::Arc;

use switchboard_store::{AuditQuery, NewAuditEntry, Store};

use crate::NOW;

fn line(at: i64, kind: &str, room: Option<&str>) -> NewAuditEntry {
    NewAuditEntry {
        at,
        kind: kind.into(),
        room_id: room.map(Into::into),
        actor: Some("a1b2c3".into()),
        subject: None,
        detail: "{}".into(),
    }
}

pub async fn audit_is_filtered_paged_and_swept(store: Arc<dyn Store>) {
    store
        .append_audit(&[
            line(NOW, "join", Some("r1")),
            line(NOW + 1, "leave", Some("r1")),
            line(NOW + 2, "join", Some("r2")),
            line(NOW + 3, "login", None),
        ])
        .await
        .unwrap();
    let all = store
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["login", "join", "leave", "join"], "newest first");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(all[0].room_id, None);
    assert_eq!(all[0].actor.as_deref(), Some("a1b2c3"));

    let r1 = AuditQuery {
        room_id: Some("r1".into()),
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&r1).await.unwrap().len(), 2);
    let joins = AuditQuery {
        kind: Some("join".into()),
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&joins).await.unwrap().len(), 2);
    let window = AuditQuery {
        since: Some(NOW + 1),
        until: Some(NOW + 3),
        limit: 10,
        ..AuditQuery::default()
    };
    let window = store.audit(&window).await.unwrap();
    assert_eq!(
        window.iter().map(|e| e.at).collect::<Vec<_>>(),
        [NOW + 2, NOW + 1]
    );

    let first = AuditQuery {
        limit: 3,
        ..AuditQuery::default()
    };
    let first = store.audit(&first).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = AuditQuery {
        before: Some(first[2].id),
        limit: 3,
        ..AuditQuery::default()
    };
    let rest = store.audit(&rest).await.unwrap();
    assert_eq!(
        rest,
        all[3..],
        "the next page starts after the last line shown"
    );

    assert_eq!(store.sweep_audit(NOW + 2).await.unwrap(), 2);
    let left = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    let left: Vec<_> = store.audit(&left).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.at).collect::<Vec<_>>(),
        [NOW + 3, NOW + 2]
    );
}

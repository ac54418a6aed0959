//! The store's contract, run against both databases: every case is written once and stamped into
//! a `sqlite` and a `postgres` test by `contract!`. With `CI` set, a PostgreSQL that cannot be
//! reached fails the `postgres` tests (see `switchboard_store::testing`).

use std::sync::Arc;

use switchboard_store::{
    AuditQuery, NewAuditEntry, NewInvite, NewOutboxEntry, NewRefresh, NewRoom, NewUser, RoomPatch,
    Rotation, Store, StoreError, UserPatch, testing::TestDb,
};

/// Runs `case` on a fresh, migrated store of `db`, then deletes the database.
async fn run<F, Fut>(db: Option<TestDb>, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = db else { return };
    let store = switchboard_store::open(&db.location).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    case(store).await;
    db.remove().await;
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run(Some(switchboard_store::testing::TestDb::sqlite()), super::cases::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run(switchboard_store::testing::TestDb::postgres().await, super::cases::$name).await;
            }
        }
    )*};
}

contract!(
    migrations_run_twice,
    users_are_unique_and_patchable,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    rooms_are_owned_paged_patched_and_deleted,
    invites_are_redeemed_within_their_uses_and_expiry,
    concurrent_redemptions_never_exceed_the_uses,
    invites_are_revoked_and_go_with_their_room,
    audit_is_filtered_paged_and_swept,
    webhook_outbox_hands_out_each_stream_in_order,
);

const NOW: i64 = 1_800_000_000_000;

fn new_user(id: &str, username: &str) -> NewUser {
    NewUser {
        id: id.into(),
        username: username.into(),
        display_name: format!("{username} display"),
        password_hash: "$argon2id$fake".into(),
        now: NOW,
    }
}

fn new_room(id: &str, owner: &str) -> NewRoom {
    NewRoom {
        id: id.into(),
        owner_id: owner.into(),
        name: format!("room {id}"),
        max_peers: None,
        mode: "free_for_all".into(),
        media: "mesh".into(),
        lobby: false,
        expires_at: None,
        now: NOW,
    }
}

fn new_invite(id: &str, room: &str, code: &[u8], max_uses: Option<i64>) -> NewInvite {
    NewInvite {
        id: id.into(),
        room_id: room.into(),
        code_hash: code.to_vec(),
        role: "guest".into(),
        max_uses,
        expires_at: NOW + 1000,
        created_by: "u1".into(),
        now: NOW,
    }
}

mod cases {
    use super::*;

    pub async fn migrations_run_twice(store: Arc<dyn Store>) {
        store
            .migrate()
            .await
            .expect("a second run applies nothing and fails nothing");
        store.create_user(&new_user("u1", "ann")).await.unwrap();
        store.migrate().await.unwrap();
        assert!(store.user("u1").await.unwrap().is_some(), "data kept");
    }

    pub async fn users_are_unique_and_patchable(store: Arc<dyn Store>) {
        let ann = store.create_user(&new_user("u1", "ann")).await.unwrap();
        assert_eq!(ann.username, "ann");
        assert!(!ann.admin);
        assert!(matches!(
            store.create_user(&new_user("u2", "ann")).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(
            store.user_by_username("ann").await.unwrap(),
            Some(ann.clone())
        );
        assert_eq!(store.user_by_username("bob").await.unwrap(), None);
        let patch = UserPatch {
            display_name: Some("Ann B.".into()),
            password_hash: None,
        };
        let changed = store
            .update_user("u1", &patch, NOW + 5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.display_name, "Ann B.");
        assert_eq!(changed.password_hash, ann.password_hash);
        assert_eq!(changed.updated_at, NOW + 5);
        assert_eq!(
            store.update_user("nobody", &patch, NOW).await.unwrap(),
            None
        );
        assert!(store.set_admin("ann", true, NOW + 6).await.unwrap());
        assert!(store.user("u1").await.unwrap().unwrap().admin);
        assert!(store.set_admin("ann", false, NOW + 7).await.unwrap());
        assert!(!store.user("u1").await.unwrap().unwrap().admin);
        assert!(!store.set_admin("nobody", true, NOW).await.unwrap());
    }

    pub async fn refresh_tokens_rotate_and_reuse_revokes_the_family(store: Arc<dyn Store>) {
        store.create_user(&new_user("u1", "ann")).await.unwrap();
        let first = NewRefresh {
            token_hash: b"t1".to_vec(),
            user_id: "u1".into(),
            family: "f1".into(),
            now: NOW,
            expires_at: NOW + 1000,
        };
        store.create_refresh(&first).await.unwrap();
        let rotated = store
            .rotate_refresh(b"t1", b"t2", NOW + 2000, NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            rotated,
            Rotation::Rotated {
                user_id: "u1".into()
            }
        );
        // t1 again: a replay. The family goes, t2 with it.
        assert_eq!(
            store
                .rotate_refresh(b"t1", b"t3", NOW + 2000, NOW + 2)
                .await
                .unwrap(),
            Rotation::Reused
        );
        assert_eq!(
            store
                .rotate_refresh(b"t2", b"t4", NOW + 2000, NOW + 3)
                .await
                .unwrap(),
            Rotation::Invalid
        );
        assert_eq!(
            store
                .rotate_refresh(b"nope", b"t5", NOW + 2000, NOW)
                .await
                .unwrap(),
            Rotation::Invalid
        );
        // Expiry and logout.
        let second = NewRefresh {
            token_hash: b"s1".to_vec(),
            family: "f2".into(),
            ..first
        };
        store.create_refresh(&second).await.unwrap();
        assert_eq!(
            store
                .rotate_refresh(b"s1", b"s2", NOW + 2000, NOW + 1000)
                .await
                .unwrap(),
            Rotation::Invalid,
            "expired at expires_at"
        );
        let third = NewRefresh {
            token_hash: b"r1".to_vec(),
            family: "f3".into(),
            ..second
        };
        store.create_refresh(&third).await.unwrap();
        let fourth = NewRefresh {
            token_hash: b"p1".to_vec(),
            family: "f4".into(),
            expires_at: NOW + 5000,
            ..third.clone()
        };
        store.create_refresh(&fourth).await.unwrap();
        assert!(store.revoke_refresh(b"r1", NOW + 1).await.unwrap());
        // s1 has expired, the others are revoked: p1 is the only live one.
        assert_eq!(
            store.revoke_user_refresh("u1", NOW + 1000).await.unwrap(),
            1
        );
        assert_eq!(
            store
                .rotate_refresh(b"p1", b"p2", NOW + 2000, NOW + 1001)
                .await
                .unwrap(),
            Rotation::Invalid
        );
        assert!(!store.revoke_refresh(b"r1", NOW + 2).await.unwrap());
        assert_eq!(
            store
                .rotate_refresh(b"r1", b"r2", NOW + 2000, NOW + 3)
                .await
                .unwrap(),
            Rotation::Invalid
        );
    }

    pub async fn rooms_are_owned_paged_patched_and_deleted(store: Arc<dyn Store>) {
        store.create_user(&new_user("u1", "ann")).await.unwrap();
        store.create_user(&new_user("u2", "bob")).await.unwrap();
        for id in ["r3", "r1", "r2"] {
            store.create_room(&new_room(id, "u1")).await.unwrap();
        }
        store.create_room(&new_room("b1", "u2")).await.unwrap();
        assert!(matches!(
            store.create_room(&new_room("r1", "u2")).await,
            Err(StoreError::Conflict)
        ));
        let ids = |rooms: Vec<switchboard_store::Room>| -> Vec<String> {
            rooms.into_iter().map(|r| r.id).collect()
        };
        assert_eq!(
            ids(store.rooms(Some("u1"), None, 2, NOW).await.unwrap()),
            ["r1", "r2"]
        );
        assert_eq!(
            ids(store.rooms(Some("u1"), Some("r2"), 2, NOW).await.unwrap()),
            ["r3"]
        );
        assert_eq!(
            ids(store.rooms(Some("u2"), None, 10, NOW).await.unwrap()),
            ["b1"]
        );
        assert_eq!(
            ids(store.rooms(None, None, 10, NOW).await.unwrap()),
            ["b1", "r1", "r2", "r3"]
        );

        let patch = RoomPatch {
            name: Some("Standup".into()),
            max_peers: Some(Some(4)),
            lobby: Some(true),
            expires_at: Some(Some(NOW + 50)),
            ..RoomPatch::default()
        };
        let room = store
            .update_room("r1", &patch, NOW + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                room.name.as_str(),
                room.max_peers,
                room.lobby,
                room.expires_at
            ),
            ("Standup", Some(4), true, Some(NOW + 50))
        );
        assert_eq!(room.mode, "free_for_all", "unset fields stay");
        let listed = |now| {
            let store = store.clone();
            async move { ids(store.rooms(Some("u1"), None, 10, now).await.unwrap()) }
        };
        assert_eq!(listed(NOW + 49).await, ["r1", "r2", "r3"]);
        assert_eq!(
            listed(NOW + 50).await,
            ["r2", "r3"],
            "expired at expires_at"
        );
        let clear = RoomPatch {
            max_peers: Some(None),
            expires_at: Some(None),
            ..RoomPatch::default()
        };
        let room = store
            .update_room("r1", &clear, NOW + 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (room.max_peers, room.expires_at, room.lobby),
            (None, None, true)
        );
        assert_eq!(store.room("r1").await.unwrap(), Some(room));
        assert_eq!(store.update_room("zz", &clear, NOW).await.unwrap(), None);

        assert!(store.delete_room("r1").await.unwrap());
        assert!(!store.delete_room("r1").await.unwrap());
        assert_eq!(store.room("r1").await.unwrap(), None);
    }

    pub async fn invites_are_redeemed_within_their_uses_and_expiry(store: Arc<dyn Store>) {
        store.create_user(&new_user("u1", "ann")).await.unwrap();
        store.create_room(&new_room("r1", "u1")).await.unwrap();
        let two = store
            .create_invite(&new_invite("i1", "r1", b"c1", Some(2)))
            .await
            .unwrap();
        assert_eq!((two.uses, two.max_uses), (0, Some(2)));
        assert!(matches!(
            store
                .create_invite(&new_invite("i2", "r1", b"c1", None))
                .await,
            Err(StoreError::Conflict)
        ));
        for uses in 1..=2 {
            let redeemed = store.redeem_invite(b"c1", NOW + 1).await.unwrap().unwrap();
            assert_eq!(redeemed.uses, uses);
        }
        assert_eq!(
            store.redeem_invite(b"c1", NOW + 1).await.unwrap(),
            None,
            "used up"
        );
        assert_eq!(store.invite_by_code(b"c1").await.unwrap().unwrap().uses, 2);

        store
            .create_invite(&new_invite("i3", "r1", b"c3", None))
            .await
            .unwrap();
        for _ in 0..5 {
            assert!(
                store
                    .redeem_invite(b"c3", NOW + 999)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        assert_eq!(
            store.redeem_invite(b"c3", NOW + 1000).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(store.redeem_invite(b"none", NOW).await.unwrap(), None);
        let listed: Vec<String> = store
            .invites("r1")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(listed.len(), 2);
    }

    pub async fn concurrent_redemptions_never_exceed_the_uses(store: Arc<dyn Store>) {
        store.create_user(&new_user("u1", "ann")).await.unwrap();
        store.create_room(&new_room("r1", "u1")).await.unwrap();
        store
            .create_invite(&new_invite("i1", "r1", b"c5", Some(5)))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.redeem_invite(b"c5", NOW + 1).await })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            if task
                .await
                .unwrap()
                .expect("no database error under contention")
                .is_some()
            {
                granted += 1;
            }
        }
        assert_eq!(granted, 5);
        assert_eq!(store.invite_by_code(b"c5").await.unwrap().unwrap().uses, 5);
    }

    pub async fn invites_are_revoked_and_go_with_their_room(store: Arc<dyn Store>) {
        store.create_user(&new_user("u1", "ann")).await.unwrap();
        store.create_room(&new_room("r1", "u1")).await.unwrap();
        store.create_room(&new_room("r2", "u1")).await.unwrap();
        store
            .create_invite(&new_invite("i1", "r1", b"c1", None))
            .await
            .unwrap();
        assert!(
            !store.revoke_invite("r2", "i1", NOW).await.unwrap(),
            "another room's"
        );
        assert!(store.revoke_invite("r1", "i1", NOW + 1).await.unwrap());
        assert!(!store.revoke_invite("r1", "i1", NOW + 2).await.unwrap());
        assert_eq!(store.redeem_invite(b"c1", NOW + 3).await.unwrap(), None);
        let invite = store.invite_by_code(b"c1").await.unwrap().unwrap();
        assert_eq!(invite.revoked_at, Some(NOW + 1));

        store
            .create_invite(&new_invite("i2", "r2", b"c2", None))
            .await
            .unwrap();
        assert!(store.delete_room("r2").await.unwrap());
        assert_eq!(store.invite_by_code(b"c2").await.unwrap(), None);
    }

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
}

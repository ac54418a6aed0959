//! The expiry sweep's contract ([`Store::sweep_expired`]), on both databases like
//! `tests/contract/`: what has ended before the cut-off goes, in batches of at most the limit,
//! and nothing live goes with it.

use std::sync::Arc;

use switchboard_store::{
    NewInvite, NewRefresh, NewRoom, NewUser, Rotation, Store, Swept, testing::TestDb,
};

const NOW: i64 = 1_800_000_000_000;

async fn run(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let store = switchboard_store::open(&db.location).await.expect("open");
    sweeps_what_ended_in_batches(store).await;
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    run(Some(TestDb::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    run(TestDb::postgres().await).await;
}

fn room(id: &str, expires_at: Option<i64>) -> NewRoom {
    NewRoom {
        id: id.into(),
        owner_id: "u1".into(),
        name: id.into(),
        max_peers: None,
        mode: "free_for_all".into(),
        media: "mesh".into(),
        lobby: false,
        expires_at,
        now: NOW,
    }
}

fn invite(id: &str, room: &str, expires_at: i64) -> NewInvite {
    NewInvite {
        id: id.into(),
        room_id: room.into(),
        code_hash: id.as_bytes().to_vec(),
        role: "guest".into(),
        max_uses: None,
        expires_at,
        created_by: "u1".into(),
        now: NOW,
    }
}

fn refresh(hash: &str, family: &str, expires_at: i64) -> NewRefresh {
    NewRefresh {
        token_hash: hash.as_bytes().to_vec(),
        user_id: "u1".into(),
        family: family.into(),
        now: NOW,
        expires_at,
    }
}

async fn sweeps_what_ended_in_batches(store: Arc<dyn Store>) {
    let user = NewUser {
        id: "u1".into(),
        username: "ann".into(),
        display_name: "Ann".into(),
        password_hash: "$argon2id$fake".into(),
        now: NOW,
    };
    store.create_user(&user).await.unwrap();
    let cut = NOW + 10_000;

    // Rooms: three expired before the cut (one holding a live code), one after, one never.
    for id in ["old1", "old2", "old3"] {
        store.create_room(&room(id, Some(NOW + 1))).await.unwrap();
    }
    store.create_room(&room("later", Some(cut))).await.unwrap();
    store.create_room(&room("forever", None)).await.unwrap();
    store
        .create_invite(&invite("in-old-room", "old1", cut + 1))
        .await
        .unwrap();
    // Codes of a lasting room: three expired, one expiring exactly at the cut (kept).
    for id in ["c1", "c2", "c3"] {
        store
            .create_invite(&invite(id, "forever", NOW + 5))
            .await
            .unwrap();
    }
    store
        .create_invite(&invite("c-live", "forever", cut))
        .await
        .unwrap();
    // Refresh tokens: an expired one, a revoked family, a spent but unexpired one and its live
    // successor (both kept: the spent one still catches a replay).
    store
        .create_refresh(&refresh("t-expired", "f1", NOW + 2))
        .await
        .unwrap();
    store
        .create_refresh(&refresh("t-revoked", "f2", cut * 2))
        .await
        .unwrap();
    assert!(store.revoke_refresh(b"t-revoked", NOW + 3).await.unwrap());
    store
        .create_refresh(&refresh("t-spent", "f3", cut * 2))
        .await
        .unwrap();
    let rotated = store
        .rotate_refresh(b"t-spent", b"t-next", cut * 2, NOW + 4)
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated { .. }));

    // Batches of two: the first is full, so more may wait; the second finishes.
    let first = store.sweep_expired(cut, 2).await.unwrap();
    assert_eq!(
        first,
        Swept {
            rooms: 2,
            invites: 2,
            refresh_tokens: 2,
        }
    );
    assert!(first.full(2));
    let second = store.sweep_expired(cut, 2).await.unwrap();
    assert_eq!(
        second,
        Swept {
            rooms: 1,
            invites: 1,
            refresh_tokens: 0,
        }
    );
    assert!(!second.full(2));
    assert_eq!(store.sweep_expired(cut, 2).await.unwrap(), Swept::default());

    // What ended is gone, a room's codes with it; what lasts is untouched.
    for id in ["old1", "old2", "old3"] {
        assert_eq!(store.room(id).await.unwrap(), None, "{id}");
    }
    assert!(store.room("later").await.unwrap().is_some());
    assert!(store.room("forever").await.unwrap().is_some());
    assert_eq!(store.invite_by_code(b"in-old-room").await.unwrap(), None);
    let left: Vec<_> = store
        .invites("forever")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left, ["c-live"]);
    assert_eq!(
        store
            .rotate_refresh(b"t-expired", b"x1", cut * 2, NOW + 5)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    // The spent token was kept: presenting it again is still caught as a replay, which revokes
    // its family (so the successor stops working too).
    assert_eq!(
        store
            .rotate_refresh(b"t-spent", b"x2", cut * 2, NOW + 6)
            .await
            .unwrap(),
        Rotation::Reused
    );
    assert_eq!(
        store
            .rotate_refresh(b"t-next", b"x3", cut * 2, NOW + 7)
            .await
            .unwrap(),
        Rotation::Invalid
    );
}

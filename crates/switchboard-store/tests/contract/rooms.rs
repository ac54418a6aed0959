//! Rooms and their invites: owned, paged, patched and deleted rooms; invites redeemed within
//! their uses and expiry (also concurrently), revoked, and gone with their room.

use std::sync::Arc;

use switchboard_store::{RoomPatch, Store, StoreError};

use crate::{NOW, new_invite, new_room, new_user};

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

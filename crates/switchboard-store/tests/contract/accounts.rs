//! Accounts: migrations that run twice, unique and patchable users, and refresh tokens that
//! rotate, with a reused one revoking its whole family.

use std::sync::Arc;

use switchboard_store::{NewRefresh, Rotation, Store, StoreError, UserPatch};

use crate::{NOW, new_user};

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

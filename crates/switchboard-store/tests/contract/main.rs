//! The store's contract, run against both databases: every case is written once and stamped into
//! a `sqlite` and a `postgres` test by `contract!`. With `CI` set, a PostgreSQL that cannot be
//! reached fails the `postgres` tests (see `switchboard_store::testing`).
//!
//! This file runs the cases and holds the records they start from; the cases are in `accounts`
//! (migrations, users, refresh tokens), `rooms` (rooms and their invites), `audit` and `outbox`
//! (the webhook outbox).

mod accounts;
mod audit;
mod outbox;
mod rooms;

use std::sync::Arc;

use switchboard_store::{NewInvite, NewRoom, NewUser, Store, testing::TestDb};

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

/// Every case, by the name `contract!` stamps.
mod cases {
    pub use crate::{accounts::*, audit::*, outbox::*, rooms::*};
}

pub(crate) const NOW: i64 = 1_800_000_000_000;

pub(crate) fn new_user(id: &str, username: &str) -> NewUser {
    NewUser {
        id: id.into(),
        username: username.into(),
        display_name: format!("{username} display"),
        password_hash: "$argon2id$fake".into(),
        now: NOW,
    }
}

pub(crate) fn new_room(id: &str, owner: &str) -> NewRoom {
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

pub(crate) fn new_invite(id: &str, room: &str, code: &[u8], max_uses: Option<i64>) -> NewInvite {
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

//! The expiry sweep: deletes the rows whose time is over (stored rooms and share codes past their
//! expiry, refresh tokens expired or revoked) once `api.expired_grace_ms` has passed since, every
//! `api.expiry_sweep_every_ms`, so the database does not grow with every code and login ever made.
//!
//! Nothing reads those rows as live: the store's queries already skip what has expired, and the
//! hub forgets an expired room's policy by itself. The grace period keeps them visible a while
//! (an owner's list shows a code as `expired`), and a spent refresh token is kept until it
//! expires so a replayed copy is still caught. A pass deletes in batches of [`BATCH`] rows per
//! kind, each its own statement, so no transaction holds many rows locked while requests wait;
//! after [`MAX_BATCHES`] batches it leaves the rest to the next pass, so one pass is bounded in
//! time however far behind it is.

use std::time::Duration;

use switchboard_store::{Store, StoreError, Swept};
use tokio_util::sync::CancellationToken;

use super::{Control, now_ms};

/// Rows of each kind one statement deletes at most.
const BATCH: u32 = 1000;

/// Batches one pass runs at most.
const MAX_BATCHES: u32 = 100;

/// Runs a pass now and every `api.expiry_sweep_every_ms` until `shutdown` is cancelled; logs and
/// counts (`expired_swept_total`) what each pass deleted.
pub(crate) async fn sweep(control: Control, shutdown: CancellationToken) {
    let settings = control.node().config().api.clone();
    let every = Duration::from_millis(settings.expiry_sweep_every_ms);
    let grace = i64::try_from(settings.expired_grace_ms).unwrap_or(i64::MAX);
    loop {
        let before = now_ms().saturating_sub(grace);
        let passed = tokio::select! {
            _ = shutdown.cancelled() => return,
            passed = pass(control.store().as_ref(), before, BATCH, MAX_BATCHES) => passed,
        };
        match passed {
            Ok(swept) => {
                let metrics = control.node().metrics().journal();
                metrics.expired_swept("room", swept.rooms);
                metrics.expired_swept("invite", swept.invites);
                metrics.expired_swept("refresh_token", swept.refresh_tokens);
                tracing::info!(
                    event = "expired.swept",
                    rooms = swept.rooms,
                    invites = swept.invites,
                    refresh_tokens = swept.refresh_tokens,
                    "expired rows deleted"
                );
            }
            Err(e) => {
                tracing::error!(event = "expired.sweep_failed", error = %e, "expiry sweep failed")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Deletes what ended before `before`, `batch` rows of each kind at a time, until no kind fills a
/// batch or `max_batches` have run; what it deleted. A failed batch ends the pass with what the
/// earlier ones did lost to the count, not to the database.
async fn pass(
    store: &dyn Store,
    before: i64,
    batch: u32,
    max_batches: u32,
) -> Result<Swept, StoreError> {
    let mut total = Swept::default();
    for _ in 0..max_batches {
        let swept = store.sweep_expired(before, batch).await?;
        total.add(swept);
        if !swept.full(batch) {
            break;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use switchboard_store::{NewInvite, NewRoom, NewUser, testing::TestDb};

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    async fn with_codes(expired: usize) -> (TestDb, std::sync::Arc<dyn Store>) {
        let db = TestDb::sqlite();
        let store = switchboard_store::open(&db.location).await.unwrap();
        let user = NewUser {
            id: "u1".into(),
            username: "ann".into(),
            display_name: "Ann".into(),
            password_hash: "x".into(),
            now: NOW,
        };
        store.create_user(&user).await.unwrap();
        let room = NewRoom {
            id: "r1".into(),
            owner_id: "u1".into(),
            name: "r1".into(),
            max_peers: None,
            mode: "free_for_all".into(),
            media: "mesh".into(),
            lobby: false,
            expires_at: None,
            now: NOW,
        };
        store.create_room(&room).await.unwrap();
        for i in 0..expired {
            let invite = NewInvite {
                id: format!("i{i}"),
                room_id: "r1".into(),
                code_hash: format!("h{i}").into_bytes(),
                role: "guest".into(),
                max_uses: Some(1),
                expires_at: NOW + 1,
                created_by: "u1".into(),
                now: NOW,
            };
            store.create_invite(&invite).await.unwrap();
        }
        (db, store)
    }

    #[tokio::test]
    async fn a_pass_repeats_full_batches_until_one_is_short() {
        let (db, store) = with_codes(7).await;
        let swept = pass(store.as_ref(), NOW + 10, 3, 100).await.unwrap();
        assert_eq!(swept.invites, 7, "3 + 3 + 1");
        assert!(store.invites("r1").await.unwrap().is_empty());
        db.remove().await;
    }

    #[tokio::test]
    async fn a_pass_stops_after_its_batches_and_leaves_the_rest() {
        let (db, store) = with_codes(7).await;
        let swept = pass(store.as_ref(), NOW + 10, 2, 2).await.unwrap();
        assert_eq!(swept.invites, 4);
        assert_eq!(
            store.invites("r1").await.unwrap().len(),
            3,
            "for the next pass"
        );
        let rest = pass(store.as_ref(), NOW + 10, 2, 2).await.unwrap();
        assert_eq!(rest.invites, 3);
        db.remove().await;
    }
}

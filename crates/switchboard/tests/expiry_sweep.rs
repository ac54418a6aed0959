//! The expiry sweep over a real server: rows whose time ended more than `api.expired_grace_ms`
//! ago (a stored room with its share codes, a share code, a refresh token) are gone after the
//! sweep the server runs at start, counted in `expired_swept_total`; rows within the grace period
//! and live rows stay. Runs on SQLite and on PostgreSQL.

use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_store::{NewInvite, NewRefresh, NewRoom, NewUser, testing::TestDb};
use switchboard_testkit::{
    api::Api,
    eventually,
    metrics::{Scrape, scrape},
    server::no_address_budgets,
};

const HOUR: i64 = 3600 * 1000;

fn sample(scrape: &Scrape, key: &str) -> f64 {
    scrape.samples.get(key).copied().unwrap_or(0.0)
}

async fn what_ended_past_the_grace_period_is_swept(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let store = switchboard_store::open(&db.location).await.expect("open");
    let user = NewUser {
        id: "u-ann".into(),
        username: "ann".into(),
        display_name: "Ann".into(),
        password_hash: "$argon2id$not-a-real-hash".into(),
        now: now - 72 * HOUR,
    };
    store.create_user(&user).await.unwrap();
    let room = |id: &str, expires_at: Option<i64>| NewRoom {
        id: id.into(),
        owner_id: "u-ann".into(),
        name: id.into(),
        max_peers: None,
        mode: "free_for_all".into(),
        media: "mesh".into(),
        lobby: false,
        expires_at,
        now: now - 72 * HOUR,
    };
    // The default grace period is a day.
    store
        .create_room(&room("ended-two-days-ago", Some(now - 48 * HOUR)))
        .await
        .unwrap();
    store
        .create_room(&room("ended-an-hour-ago", Some(now - HOUR)))
        .await
        .unwrap();
    store.create_room(&room("lasting", None)).await.unwrap();
    let invite = |id: &str, expires_at: i64| NewInvite {
        id: id.into(),
        room_id: "lasting".into(),
        code_hash: id.as_bytes().to_vec(),
        role: "guest".into(),
        max_uses: None,
        expires_at,
        created_by: "u-ann".into(),
        now: now - 72 * HOUR,
    };
    store
        .create_invite(&invite("inv-old", now - 48 * HOUR))
        .await
        .unwrap();
    store
        .create_invite(&invite("inv-live", now + HOUR))
        .await
        .unwrap();
    let refresh = NewRefresh {
        token_hash: b"expired-token".to_vec(),
        user_id: "u-ann".into(),
        family: "f1".into(),
        now: now - 72 * HOUR,
        expires_at: now - 48 * HOUR,
    };
    store.create_refresh(&refresh).await.unwrap();
    drop(store);

    let api = Api::start(Some(&db), no_address_budgets).await;
    let metrics = api.server.http("/metrics");
    eventually("the sweep at start", || async {
        let m = scrape(&metrics).await;
        let swept = [
            sample(&m, "expired_swept_total{kind=\"room\"}"),
            sample(&m, "expired_swept_total{kind=\"invite\"}"),
            sample(&m, "expired_swept_total{kind=\"refresh_token\"}"),
        ];
        match swept {
            [1.0, 1.0, 1.0] => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let store = api.server.running().control().store().clone();
    assert_eq!(store.room("ended-two-days-ago").await.unwrap(), None);
    assert!(
        store.room("ended-an-hour-ago").await.unwrap().is_some(),
        "within the grace period"
    );
    assert!(store.room("lasting").await.unwrap().is_some());
    let codes: Vec<_> = store
        .invites("lasting")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(codes, ["inv-live"]);
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn what_ended_past_the_grace_period_is_swept_sqlite() {
    what_ended_past_the_grace_period_is_swept(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn what_ended_past_the_grace_period_is_swept_postgres() {
    what_ended_past_the_grace_period_is_swept(TestDb::postgres().await).await;
}

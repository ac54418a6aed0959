//! The audit log over real sockets: what the API and the signaling hub did (logins and failed
//! logins, rooms made and changed, joins, a kick, share codes made, redeemed and revoked) reaches
//! `GET /v1/audit` with user ids hashed, filtered and paged, for admins only; and lines older than
//! `audit_retention_days` are swept. Every case runs on SQLite and on PostgreSQL.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use switchboard::observe::UserHasher;
use switchboard_protocol::Role;
use switchboard_store::{NewAuditEntry, testing::TestDb};
use switchboard_testkit::{
    SECRET,
    api::{Api, refused},
    eventually,
    server::no_address_budgets,
};

fn kinds(page: &Value) -> Vec<String> {
    page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_audit_log_keeps_who_did_what(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let api = Api::start(Some(&db), no_address_budgets).await;
    let ann = api.user("ann").await;
    let carl = api.user("carl").await;
    let store = api.server.running().control().store().clone();
    assert!(store.set_admin("ann", true, 0).await.unwrap());
    refused(
        &api.login("carl", "not the password").await,
        401,
        "unauthorized",
    );
    let carl_id = api.get("/v1/users/me", Some(&carl)).await.json()["id"].clone();

    api.room(&ann, "standup").await;
    let patch = Some(json!({"mode": "host_only"}));
    let changed = api
        .call(Method::PATCH, "/v1/rooms/standup", Some(&ann), patch)
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let mut host = api.server.client("user-ann", "standup", Role::Host).await;
    host.join("standup", "ann").await;
    let mut bob = api.server.client("user-bob", "standup", Role::Guest).await;
    bob.join("standup", "bob").await;
    host.expect("peer_joined").await;
    let path = "/v1/rooms/standup/participants/bob";
    assert_eq!(
        api.call(Method::DELETE, path, Some(&ann), None)
            .await
            .status,
        204
    );
    bob.expect("left").await;

    let code = api.code(&ann, "standup", json!({})).await;
    let redeemed = api
        .post(
            &format!("/v1/invites/{code}/redeem"),
            None,
            json!({"name": "Dee"}),
        )
        .await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.body);
    let invites = api
        .get("/v1/rooms/standup/invites", Some(&ann))
        .await
        .json();
    let invite = invites["invites"][0]["id"].as_str().unwrap().to_owned();
    let revoke = format!("/v1/rooms/standup/invites/{invite}");
    assert_eq!(
        api.call(Method::DELETE, &revoke, Some(&ann), None)
            .await
            .status,
        204
    );

    refused(&api.get("/v1/audit", Some(&carl)).await, 403, "forbidden");
    refused(&api.get("/v1/audit", None).await, 401, "unauthorized");
    refused(
        &api.get("/v1/audit?limit=0", Some(&ann)).await,
        400,
        "invalid_message",
    );
    let long_kind = format!("/v1/audit?kind={}", "k".repeat(33));
    refused(
        &api.get(&long_kind, Some(&ann)).await,
        400,
        "invalid_message",
    );

    let expected = [
        "login",
        "login_failed",
        "room_created",
        "room_updated",
        "join",
        "kick",
        "invite_created",
        "invite_redeemed",
        "invite_revoked",
    ];
    let page = eventually("every action in the audit log", || async {
        let page = api.get("/v1/audit?limit=500", Some(&ann)).await.json();
        let seen = kinds(&page);
        match expected.iter().all(|k| seen.iter().any(|s| s == k)) {
            true => Ok(page),
            false => Err(seen),
        }
    })
    .await;
    let text = page.to_string();
    for raw in ["user-ann", "user-bob", carl_id.as_str().unwrap()] {
        assert!(
            !text.contains(raw),
            "a raw user id ({raw}) in the audit log: {text}"
        );
    }
    let ids: Vec<i64> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let hasher = UserHasher::new(SECRET.as_bytes());
    let kick = api.get("/v1/audit?kind=kick", Some(&ann)).await.json();
    let kick = &kick["lines"].as_array().unwrap()[..];
    assert_eq!(kick.len(), 1, "{kick:?}");
    assert_eq!(kick[0]["room"], "standup");
    assert_eq!(kick[0]["subject"], "bob");
    assert_eq!(kick[0]["actor"], hasher.hash("user-bob").as_str());
    assert_eq!(kick[0]["detail"]["reason"], "kicked");
    let failed = api
        .get("/v1/audit?kind=login_failed", Some(&ann))
        .await
        .json();
    assert_eq!(
        failed["lines"][0]["actor"],
        hasher.hash(carl_id.as_str().unwrap()).as_str()
    );
    let redeemed = api
        .get("/v1/audit?kind=invite_redeemed", Some(&ann))
        .await
        .json();
    assert_eq!(redeemed["lines"][0]["subject"], invite.as_str());

    let in_room = api
        .get("/v1/audit?room=standup&limit=500", Some(&ann))
        .await
        .json();
    let rooms = in_room["lines"].as_array().unwrap();
    assert!(
        rooms.len() >= 6 && rooms.iter().all(|l| l["room"] == "standup"),
        "{in_room}"
    );
    let later = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let none = api
        .get(&format!("/v1/audit?since={later}"), Some(&ann))
        .await
        .json();
    assert_eq!(none["lines"], json!([]));
    assert_eq!(none["next"], Value::Null);

    let first = api.get("/v1/audit?limit=2", Some(&ann)).await.json();
    assert_eq!(kinds(&first).len(), 2);
    let next = first["next"].as_i64().expect("more than two lines");
    let second = api
        .get(&format!("/v1/audit?limit=2&before={next}"), Some(&ann))
        .await
        .json();
    let second_ids: Vec<i64> = second["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        second_ids,
        ids[2..4],
        "the next page goes on where the first stopped"
    );

    let metrics = switchboard_testkit::metrics::scrape(&api.server.http("/metrics")).await;
    assert!(
        metrics.get("audit_written_total") >= expected.len() as f64,
        "{}",
        metrics.text
    );
    assert_eq!(metrics.get("journal_dropped_total"), 0.0);
    host.close().await;
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn the_audit_log_keeps_who_did_what_sqlite() {
    the_audit_log_keeps_who_did_what(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn the_audit_log_keeps_who_did_what_postgres() {
    the_audit_log_keeps_who_did_what(TestDb::postgres().await).await;
}

async fn lines_past_the_retention_are_swept(db: Option<TestDb>) {
    let Some(db) = db else { return };
    const DAY: i64 = 24 * 3600 * 1000;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let line = |kind: &str, at: i64| NewAuditEntry {
        at,
        kind: kind.into(),
        room_id: None,
        actor: None,
        subject: None,
        detail: String::new(),
    };
    let store = switchboard_store::open(&db.location).await.expect("open");
    let lines = [
        line("past_retention", now - 31 * DAY),
        line("within_retention", now - 29 * DAY),
    ];
    store.append_audit(&lines).await.unwrap();
    drop(store);

    let api = Api::start(Some(&db), |c| {
        no_address_budgets(c);
        c.audit_retention_days = 30;
    })
    .await;
    let ann = api.user("ann").await;
    let store = api.server.running().control().store().clone();
    assert!(store.set_admin("ann", true, 0).await.unwrap());
    eventually("the sweep at start", || async {
        let page = api.get("/v1/audit?limit=500", Some(&ann)).await.json();
        let seen = kinds(&page);
        match seen.iter().any(|k| k == "past_retention") {
            false => Ok(seen),
            true => Err(seen),
        }
    })
    .await;
    let kept = api
        .get("/v1/audit?kind=within_retention", Some(&ann))
        .await
        .json();
    assert_eq!(kinds(&kept), ["within_retention"]);
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn lines_past_the_retention_are_swept_sqlite() {
    lines_past_the_retention_are_swept(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn lines_past_the_retention_are_swept_postgres() {
    lines_past_the_retention_are_swept(TestDb::postgres().await).await;
}

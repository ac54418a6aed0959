//! Share codes: preview, redeem and revoke, their per-address budget, and concurrent
//! redemptions of a limited code on both backends.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_store::testing::TestDb;
use switchboard_testkit::{
    Client,
    api::{Api, refused},
    server::no_address_budgets,
};

#[tokio::test]
async fn share_codes_preview_redeem_and_revoke() {
    let api = Api::start(None, no_address_budgets).await;
    let ann = api.user("ann").await;
    api.room(&ann, "standup").await;
    let code = api.code(&ann, "standup", json!({})).await;
    assert_eq!(code.len(), 11);
    assert_eq!(&code[5..6], "-");

    // Previews use nothing up, however often a link-preview bot looks.
    for _ in 0..3 {
        let preview = api.get(&format!("/v1/invites/{code}"), None).await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        let preview = preview.json();
        assert_eq!(
            (preview["room"].as_str(), preview["status"].as_str()),
            (Some("standup"), Some("active"))
        );
        assert_eq!(
            (preview["uses_left"].as_i64(), preview["role"].as_str()),
            (Some(1), Some("guest"))
        );
    }
    // Typed sloppily: lower case, no hyphen.
    let typed = code.replace('-', "").to_lowercase();
    let redeemed = api
        .post(
            &format!("/v1/invites/{typed}/redeem"),
            None,
            json!({"name": "Guest"}),
        )
        .await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.body);
    let token = redeemed.json();
    assert_eq!(
        (token["room"].as_str(), token["role"].as_str()),
        (Some("standup"), Some("guest"))
    );
    let mut guest = Client::connect(&format!(
        "{}?token={}",
        api.server.ws_url(),
        token["token"].as_str().unwrap()
    ))
    .await;
    guest.join("standup", "guest").await;
    // One use only.
    refused(
        &api.post(&format!("/v1/invites/{code}/redeem"), None, json!({}))
            .await,
        404,
        "not_found",
    );
    assert_eq!(
        api.get(&format!("/v1/invites/{code}"), None).await.json()["status"],
        "used_up"
    );
    for bad in ["nope", "UUUUU-UUUUU", "00000-00000"] {
        refused(
            &api.get(&format!("/v1/invites/{bad}"), None).await,
            404,
            "not_found",
        );
    }

    // Listing and revoking.
    let many = api
        .code(
            &ann,
            "standup",
            json!({"max_uses": null, "role": "host", "expires_in": 3600}),
        )
        .await;
    let list = api
        .get("/v1/rooms/standup/invites", Some(&ann))
        .await
        .json();
    let invites = list["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 2);
    assert!(
        invites.iter().all(|i| i.get("code").is_none()),
        "codes are shown once"
    );
    let id = invites[0]["id"].as_str().unwrap();
    assert_eq!(invites[0]["max_uses"], Value::Null);
    let path = format!("/v1/rooms/standup/invites/{id}");
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&ann), None)
            .await
            .status,
        204
    );
    refused(
        &api.call(Method::DELETE, &path, Some(&ann), None).await,
        404,
        "not_found",
    );
    refused(
        &api.post(&format!("/v1/invites/{many}/redeem"), None, json!({}))
            .await,
        404,
        "not_found",
    );
    assert_eq!(
        api.get(&format!("/v1/invites/{many}"), None).await.json()["status"],
        "revoked"
    );

    // A room with its lobby on gives a lobby token, which only knocks (live_rooms.rs).
    let lobby = api.code(&ann, "standup", json!({})).await;
    api.call(
        Method::PATCH,
        "/v1/rooms/standup",
        Some(&ann),
        Some(json!({"lobby": true})),
    )
    .await;
    let ticket = api
        .post(&format!("/v1/invites/{lobby}/redeem"), None, json!({}))
        .await;
    assert_eq!(ticket.status, 200, "{}", ticket.body);
    assert_eq!(ticket.json()["lobby"], true);
    assert_eq!(
        api.get(&format!("/v1/invites/{lobby}"), None).await.json()["uses_left"],
        0
    );

    // Deleting the room ends its codes.
    api.call(Method::DELETE, "/v1/rooms/standup", Some(&ann), None)
        .await;
    refused(
        &api.get(&format!("/v1/invites/{lobby}"), None).await,
        404,
        "not_found",
    );
    for bad in [
        json!({"max_uses": 0}),
        json!({"expires_in": 10}),
        json!({"role": "x"}),
    ] {
        api.room(&ann, "other").await;
        refused(
            &api.post("/v1/rooms/other/invites", Some(&ann), bad).await,
            400,
            "invalid_message",
        );
        api.call(Method::DELETE, "/v1/rooms/other", Some(&ann), None)
            .await;
    }
}

#[tokio::test]
async fn share_code_requests_are_budgeted_per_address() {
    let api = Api::start(None, |c| {
        c.api.invite_requests_per_sec_per_address = 0.001;
        c.api.invite_burst_per_address = 3.0;
    })
    .await;
    for _ in 0..3 {
        refused(
            &api.get("/v1/invites/00000-00000", None).await,
            404,
            "not_found",
        );
    }
    let limited = api
        .post("/v1/invites/00000-00000/redeem", None, json!({}))
        .await;
    refused(&limited, 429, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
}

/// Twenty guests redeem a five-use code at once: exactly five get in.
async fn concurrent_redemptions(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let api = Api::start(Some(&db), no_address_budgets).await;
    let ann = api.user("ann").await;
    api.room(&ann, "standup").await;
    let code = api.code(&ann, "standup", json!({"max_uses": 5})).await;
    let path = format!("/v1/invites/{code}/redeem");
    let answers =
        futures_util::future::join_all((0..20).map(|_| api.post(&path, None, json!({})))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        15,
        "{statuses:?}"
    );
    let users: HashSet<String> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.json()["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users.len(), 5, "each redemption is its own guest");
    drop(api);
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_of_a_five_use_code_give_five_tokens_sqlite() {
    concurrent_redemptions(Some(TestDb::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_of_a_five_use_code_give_five_tokens_postgres() {
    concurrent_redemptions(TestDb::postgres().await).await;
}

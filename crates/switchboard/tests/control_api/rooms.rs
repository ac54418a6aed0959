//! Stored rooms: owned, paged, patched, deleted and expired; the room tokens an owner mints and
//! the guest tokens refused for them; what an admin may do; and the store outliving a restart.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_store::testing::TestDb;
use switchboard_testkit::{
    Client,
    api::{Api, refused},
    server::no_address_budgets,
};

#[tokio::test]
async fn rooms_are_their_owners_alone() {
    let api = Api::start(None, no_address_budgets).await;
    let ann = api.user("ann").await;
    let bob = api.user("bob").await;
    let room = api.room(&ann, "standup").await;
    assert_eq!(room["mode"], "free_for_all");
    assert_eq!(room["media"], "auto");
    assert_eq!(room["lobby"], false);
    assert_eq!(room["max_peers"], Value::Null);
    refused(
        &api.post("/v1/rooms", Some(&bob), json!({"id": "standup"}))
            .await,
        409,
        "conflict",
    );
    refused(
        &api.post("/v1/rooms", Some(&ann), json!({"id": "bad id!"}))
            .await,
        400,
        "invalid_message",
    );
    refused(
        &api.post("/v1/rooms", Some(&ann), json!({"max_peers": 0}))
            .await,
        400,
        "invalid_message",
    );
    refused(
        &api.post("/v1/rooms", Some(&ann), json!({"expires_in": 1}))
            .await,
        400,
        "invalid_message",
    );
    refused(
        &api.post("/v1/rooms", None, json!({})).await,
        401,
        "unauthorized",
    );

    // Bob can neither see nor touch it, nor mint for it, nor give out codes for it.
    for (method, path, body) in [
        (Method::GET, "/v1/rooms/standup", None),
        (
            Method::PATCH,
            "/v1/rooms/standup",
            Some(json!({"name": "mine"})),
        ),
        (Method::DELETE, "/v1/rooms/standup", None),
        (Method::POST, "/v1/rooms/standup/tokens", Some(json!({}))),
        (Method::POST, "/v1/rooms/standup/invites", Some(json!({}))),
        (Method::GET, "/v1/rooms/standup/invites", None),
        (Method::DELETE, "/v1/rooms/standup/invites/inv_x", None),
    ] {
        // Exactly what a room that does not exist gets.
        let answer = api
            .call(method.clone(), path, Some(&bob), body.clone())
            .await;
        refused(&answer, 404, "not_found");
        let nothing = path.replace("standup", "nothing");
        refused(
            &api.call(method, &nothing, Some(&bob), body).await,
            404,
            "not_found",
        );
    }
    let bobs = api.get("/v1/rooms", Some(&bob)).await.json();
    assert_eq!(bobs, json!({"rooms": [], "next": null}));

    // Ann's rooms, in pages.
    for id in ["a1", "a2", "a3", "a4"] {
        api.room(&ann, id).await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/rooms?limit=2&after={a}"),
            None => "/v1/rooms?limit=2".into(),
        };
        let page = api.get(&path, Some(&ann)).await.json();
        seen.extend(
            page["rooms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["a1", "a2", "a3", "a4", "standup"]);
    refused(
        &api.get("/v1/rooms?limit=0", Some(&ann)).await,
        400,
        "invalid_message",
    );
    refused(
        &api.get("/v1/rooms?limit=x", Some(&ann)).await,
        400,
        "invalid_message",
    );

    let patch = json!({"name": "Daily", "max_peers": 4, "mode": "host_only", "lobby": true});
    let changed = api
        .call(Method::PATCH, "/v1/rooms/standup", Some(&ann), Some(patch))
        .await
        .json();
    assert_eq!(
        (changed["name"].as_str(), changed["max_peers"].as_i64()),
        (Some("Daily"), Some(4))
    );
    assert_eq!(
        (changed["mode"].as_str(), changed["lobby"].as_bool()),
        (Some("host_only"), Some(true))
    );
    let cleared = api
        .call(
            Method::PATCH,
            "/v1/rooms/standup",
            Some(&ann),
            Some(json!({"max_peers": null})),
        )
        .await
        .json();
    assert_eq!(
        (cleared["max_peers"].clone(), cleared["name"].as_str()),
        (Value::Null, Some("Daily"))
    );
    assert_eq!(
        api.get("/v1/rooms/standup", Some(&ann)).await.json(),
        cleared
    );

    let deleted = api
        .call(Method::DELETE, "/v1/rooms/a1", Some(&ann), None)
        .await;
    assert_eq!(deleted.status, 204);
    refused(&api.get("/v1/rooms/a1", Some(&ann)).await, 404, "not_found");
}

#[tokio::test]
async fn an_owner_mints_room_tokens_the_hub_accepts() {
    let api = Api::start(None, no_address_budgets).await;
    let ann = api.user("ann").await;
    api.room(&ann, "standup").await;
    let minted = api
        .post(
            "/v1/rooms/standup/tokens",
            Some(&ann),
            json!({"role": "host", "name": "Ann", "ttl_secs": 600}),
        )
        .await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    let minted = minted.json();
    assert_eq!(
        (minted["room"].as_str(), minted["role"].as_str()),
        (Some("standup"), Some("host"))
    );
    let token = minted["token"].as_str().unwrap();
    let mut client = Client::connect(&format!("{}?token={token}", api.server.ws_url())).await;
    let joined = client.join("standup", "ann").await;
    assert_eq!(joined.payload["role"], "host");
    for bad in [
        json!({"ttl_secs": 5}),
        json!({"role": "owner"}),
        json!({"user": ""}),
        json!({"extra": 1}),
    ] {
        refused(
            &api.post("/v1/rooms/standup/tokens", Some(&ann), bad).await,
            400,
            "invalid_message",
        );
    }
}

#[tokio::test]
async fn the_store_survives_a_restart() {
    let db = TestDb::sqlite();
    let api = Api::start(Some(&db), no_address_budgets).await;
    let ann = api.user("ann").await;
    api.room(&ann, "standup").await;
    let code = api.code(&ann, "standup", json!({"max_uses": 2})).await;
    let mut api = api;
    api.server.shutdown().await;
    let api = Api::start(Some(&db), no_address_budgets).await;
    let login = api.login("ann", "correct horse battery").await;
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/v1/rooms/standup", Some(&token)).await.status, 200);
    assert_eq!(
        api.post(&format!("/v1/invites/{code}/redeem"), None, json!({}))
            .await
            .status,
        200
    );
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn an_admin_sees_and_manages_every_room() {
    let api = Api::start(None, no_address_budgets).await;
    let ann = api.user("ann").await;
    let bob = api.user("bob").await;
    api.room(&ann, "anns").await;
    api.room(&bob, "bobs").await;
    let store = api.server.running().control().store().clone();
    assert!(store.set_admin("bob", true, 0).await.unwrap());
    let ids = |page: Value| -> Vec<String> {
        let rooms = page["rooms"].as_array().unwrap().iter();
        rooms
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(api.get("/v1/rooms", Some(&bob)).await.json()),
        ["anns", "bobs"]
    );
    assert_eq!(ids(api.get("/v1/rooms", Some(&ann)).await.json()), ["anns"]);
    assert_eq!(api.get("/v1/rooms/anns", Some(&bob)).await.status, 200);
    assert_eq!(
        api.get("/v1/users/me", Some(&bob)).await.json()["admin"],
        true
    );
    let deleted = api
        .call(Method::DELETE, "/v1/rooms/anns", Some(&bob), None)
        .await;
    assert_eq!(deleted.status, 204);
    // The grant is read at each request: taking it away works at once.
    assert!(store.set_admin("bob", false, 0).await.unwrap());
    refused(&api.get("/v1/rooms/x", Some(&bob)).await, 404, "not_found");
    api.room(&ann, "again").await;
    refused(
        &api.get("/v1/rooms/again", Some(&bob)).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn guest_tokens_are_refused_for_stored_rooms() {
    let api = Api::start(None, no_address_budgets).await;
    let ask = |room: &str| api.post("/v1/token", None, json!({"room": room}));
    assert_eq!(ask("standup").await.status, 200);
    let ann = api.user("ann").await;
    api.room(&ann, "standup").await;
    refused(&ask("standup").await, 403, "forbidden");
    assert_eq!(
        ask("elsewhere").await.status,
        200,
        "rooms nobody stored work as before"
    );
}

#[tokio::test]
async fn an_expired_room_is_gone() {
    let api = Api::start(None, no_address_budgets).await;
    let ann = api.user("ann").await;
    api.room(&ann, "later").await;
    let code = api.code(&ann, "later", json!({"max_uses": null})).await;
    // Expired a moment ago (the API takes only future expiries).
    let store = api.server.running().control().store().clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let past = switchboard_store::RoomPatch {
        expires_at: Some(Some(now - 1)),
        ..Default::default()
    };
    store.update_room("later", &past, now).await.unwrap();
    refused(
        &api.get("/v1/rooms/later", Some(&ann)).await,
        404,
        "not_found",
    );
    assert_eq!(
        api.get("/v1/rooms", Some(&ann)).await.json()["rooms"],
        json!([])
    );
    refused(
        &api.get(&format!("/v1/invites/{code}"), None).await,
        404,
        "not_found",
    );
    let guest = api.post("/v1/token", None, json!({"room": "later"})).await;
    assert_eq!(guest.status, 200, "no longer stored: {}", guest.body);
    // Its id is free again.
    let bob = api.user("bob").await;
    let again = api.room(&bob, "later").await;
    assert_eq!(again["expires_at"], Value::Null);
}

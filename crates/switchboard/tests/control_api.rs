//! The control API over real HTTP: accounts, stored rooms, room tokens and share codes, on a real
//! server with its real store (SQLite, and PostgreSQL for the cases stamped on both backends).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard_store::testing::TestDb;
use switchboard_testkit::{
    Client,
    api::{Api, refused},
    server::no_address_budgets,
};

async fn accounts_sign_in_refresh_and_sign_out(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let api = Api::start(Some(&db), no_address_budgets).await;
    let ann =
        json!({"username": "Ann", "password": "correct horse battery", "display_name": "Ann B."});
    let made = api.post("/v1/accounts", None, ann.clone()).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let account = made.json();
    assert_eq!(account["username"], "ann");
    assert_eq!(account["display_name"], "Ann B.");
    assert!(account.get("password_hash").is_none());
    refused(
        &api.post("/v1/accounts", None, ann.clone()).await,
        409,
        "conflict",
    );
    let short = json!({"username": "bob", "password": "short"});
    refused(
        &api.post("/v1/accounts", None, short).await,
        400,
        "invalid_message",
    );

    // A wrong password and an unknown account look the same.
    let wrong = api.login("ann", "wrong password").await;
    let unknown = api.login("nobody", "wrong password").await;
    refused(&wrong, 401, "unauthorized");
    assert_eq!(wrong.body, unknown.body);

    let login = api.login("ANN", "correct horse battery").await;
    assert_eq!(login.status, 200, "{}", login.body);
    let tokens = login.json();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let me = api.get("/v1/users/me", Some(access)).await;
    assert_eq!(me.json()["id"], account["id"]);
    refused(&api.get("/v1/users/me", None).await, 401, "unauthorized");
    refused(
        &api.get("/v1/users/me", Some("not.a.token")).await,
        401,
        "unauthorized",
    );

    let renamed = api
        .call(
            Method::PATCH,
            "/v1/users/me",
            Some(access),
            Some(json!({"display_name": "Annie"})),
        )
        .await;
    assert_eq!(renamed.json()["display_name"], "Annie");
    let id = account["id"].as_str().unwrap();
    let public = api
        .get(&format!("/v1/users/{id}"), Some(access))
        .await
        .json();
    assert_eq!(public, json!({"id": id, "display_name": "Annie"}));
    refused(
        &api.get("/v1/users/u_nobody", Some(access)).await,
        404,
        "not_found",
    );

    // Refreshing spends the refresh token; replaying it signs the login out.
    let first = tokens["refresh_token"].as_str().unwrap();
    let refreshed = api.refresh(first).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let second = refreshed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    let replay = api.refresh(first).await;
    refused(&replay, 401, "unauthorized");
    let after = api.refresh(&second).await;
    refused(&after, 401, "unauthorized");

    // Logout ends a login's refresh token.
    let login = api.login("ann", "correct horse battery").await.json();
    let refresh = login["refresh_token"].as_str().unwrap();
    let out = api
        .post("/v1/auth/logout", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(out.status, 204);
    refused(&api.refresh(refresh).await, 401, "unauthorized");

    // A new password needs the old one, and signs every login out.
    let login = api.login("ann", "correct horse battery").await.json();
    let access = login["access_token"].as_str().unwrap();
    let change =
        |current: &str| json!({"password": {"current": current, "new": "new horse battery"}});
    let bad = api
        .call(
            Method::PATCH,
            "/v1/users/me",
            Some(access),
            Some(change("nope nope")),
        )
        .await;
    refused(&bad, 401, "unauthorized");
    let good = api
        .call(
            Method::PATCH,
            "/v1/users/me",
            Some(access),
            Some(change("correct horse battery")),
        )
        .await;
    assert_eq!(good.status, 200, "{}", good.body);
    let refresh = login["refresh_token"].as_str().unwrap();
    refused(&api.refresh(refresh).await, 401, "unauthorized");
    let new = api.login("ann", "new horse battery").await;
    assert_eq!(new.status, 200);
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn accounts_sign_in_refresh_and_sign_out_sqlite() {
    accounts_sign_in_refresh_and_sign_out(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn accounts_sign_in_refresh_and_sign_out_postgres() {
    accounts_sign_in_refresh_and_sign_out(TestDb::postgres().await).await;
}

#[tokio::test]
async fn failed_logins_lock_any_username_out_with_backoff() {
    let api = Api::start(None, |c| {
        c.api.logins_per_sec_per_address = 0.0;
        c.api.login_failures_before_lockout = 2;
        c.api.lockout_base_ms = 60_000;
    })
    .await;
    api.user("ann").await;
    for username in ["ann", "nobody"] {
        let attempt = json!({"username": username, "password": "wrong password"});
        // The second failure in a row locks; the third attempt is refused.
        for _ in 0..2 {
            refused(
                &api.post("/v1/auth/login", None, attempt.clone()).await,
                401,
                "unauthorized",
            );
        }
        let locked = api.post("/v1/auth/login", None, attempt).await;
        refused(&locked, 429, "rate_limited");
        let wait: u64 = locked.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((55..=60).contains(&wait), "{wait}");
    }
    // Even the right password waits out the lock; other accounts do not.
    let right = json!({"username": "ann", "password": "correct horse battery"});
    refused(
        &api.post("/v1/auth/login", None, right).await,
        429,
        "rate_limited",
    );
    api.user("bob").await;
}

#[tokio::test]
async fn logins_and_registrations_are_budgeted_per_address() {
    let api = Api::start(None, |c| {
        c.api.registrations_per_sec_per_address = 0.001;
        c.api.registration_burst_per_address = 2.0;
        c.api.logins_per_sec_per_address = 0.001;
        c.api.login_burst_per_address = 3.0;
    })
    .await;
    api.user("ann").await;
    api.user("bob").await;
    let third = api
        .post(
            "/v1/accounts",
            None,
            json!({"username": "cid", "password": "long enough"}),
        )
        .await;
    refused(&third, 429, "rate_limited");
    assert!(third.headers.contains_key("retry-after"));
    let login = json!({"username": "ann", "password": "correct horse battery"});
    assert_eq!(
        api.post("/v1/auth/login", None, login.clone()).await.status,
        200
    );
    refused(
        &api.post("/v1/auth/login", None, login).await,
        429,
        "rate_limited",
    );
}

#[tokio::test]
async fn an_access_token_joins_no_room() {
    let api = Api::start(None, no_address_budgets).await;
    let token = api.user("ann").await;
    let session = api.post("/v1/sessions", Some(&token), json!({})).await;
    refused(&session, 401, "unauthorized");
    let url = format!("{}?token={token}", api.server.ws_url());
    let (status, body) = switchboard_testkit::ws_refusal(&url, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
}

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

#[tokio::test]
async fn the_openapi_document_describes_every_control_route() {
    let api = Api::start(None, no_address_budgets).await;
    let answer = api.get("/openapi.json", None).await;
    assert_eq!(answer.status, 200);
    let doc = answer.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/accounts", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/users/me", "get"),
        ("/v1/users/me", "patch"),
        ("/v1/users/{id}", "get"),
        ("/v1/rooms", "post"),
        ("/v1/rooms", "get"),
        ("/v1/rooms/{room}", "get"),
        ("/v1/rooms/{room}", "patch"),
        ("/v1/rooms/{room}", "delete"),
        ("/v1/rooms/{room}/tokens", "post"),
        ("/v1/rooms/{room}/participants", "get"),
        ("/v1/rooms/{room}/participants/{peer}", "delete"),
        ("/v1/rooms/{room}/messages", "post"),
        ("/v1/rooms/{room}/knocks/{ticket}", "post"),
        ("/v1/rooms/{room}/invites", "post"),
        ("/v1/rooms/{room}/invites", "get"),
        ("/v1/rooms/{room}/invites/{invite}", "delete"),
        ("/v1/invites/{code}", "get"),
        ("/v1/invites/{code}/redeem", "post"),
        ("/v1/audit", "get"),
        ("/v1/node", "get"),
    ];
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, method) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        // Rate-limited operations say so, with Retry-After.
        let limited = [
            "/v1/accounts",
            "/v1/auth/login",
            "/v1/invites/{code}",
            "/v1/invites/{code}/redeem",
        ]
        .contains(&path)
            || (path, method) == ("/v1/users/me", "patch");
        assert_eq!(responses.contains_key("429"), limited, "{method} {path}");
        // Operations behind a token say which.
        let secured = operation.get("security").is_some();
        assert_eq!(
            secured,
            !path.starts_with("/v1/auth")
                && !path.starts_with("/v1/invites")
                && path != "/v1/accounts",
            "{method} {path}"
        );
    }
    let too_many = &doc["components"]["responses"]["TooManyRequests"];
    assert!(too_many["headers"]["Retry-After"].is_object(), "{too_many}");
    let codes = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
    assert!(
        codes.as_array().unwrap().contains(&json!("rate_limited")),
        "{codes}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Bounds that come from the settings are filled in.
    let max_peers = &doc["components"]["schemas"]["RoomRequest"]["properties"]["max_peers"];
    assert_eq!(
        max_peers["maximum"],
        Config::default().max_peers,
        "{max_peers}"
    );
    // A server without the SFU offers no `sfu` rooms (`auto` rooms stay mesh there).
    assert_eq!(
        doc["components"]["schemas"]["Media"]["enum"],
        json!(["mesh", "auto"])
    );
    // Bodies are objects, never an array of fields.
    let ann = api.user("ann").await;
    let array = api.post("/v1/rooms", Some(&ann), json!([null, null])).await;
    refused(&array, 400, "invalid_message");
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
async fn the_admin_command_grants_and_takes_the_grant() {
    let dir = std::env::temp_dir().join(format!("switchboard-admin-cli-{}", std::process::id()));
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .env("SWITCHBOARD_DATA_DIR", &dir)
            .env_remove("SWITCHBOARD_DATABASE_URL")
            .env_remove("SWITCHBOARD_CONFIG")
            .output()
            .expect("the binary runs")
    };
    let migrated = run(&["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    let location = switchboard_store::Location::SqliteFile(dir.join("switchboard.db"));
    let store = switchboard_store::open(&location).await.unwrap();
    store
        .create_user(&switchboard_store::NewUser {
            id: "u_1".into(),
            username: "ann".into(),
            display_name: "Ann".into(),
            password_hash: "x".into(),
            now: 0,
        })
        .await
        .unwrap();
    let granted = run(&["admin", "Ann"]);
    assert!(granted.status.success(), "{granted:?}");
    assert!(store.user("u_1").await.unwrap().unwrap().admin);
    assert!(run(&["admin", "ann", "--revoke"]).status.success());
    assert!(!store.user("u_1").await.unwrap().unwrap().admin);
    let missing = run(&["admin", "nobody"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account `nobody`"));
    let _ = std::fs::remove_dir_all(&dir);
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

//! Accounts: sign-up, sign-in, refresh and sign-out, the budgets and lockouts on logins, an
//! access token that joins no room, and the `admin` command that grants the admin flag.

use reqwest::Method;
use serde_json::json;
use switchboard_store::testing::TestDb;
use switchboard_testkit::{
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

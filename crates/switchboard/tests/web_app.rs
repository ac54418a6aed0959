//! What the web app needs from the server: the embedded files, guest tokens, TURN credentials;
//! and the API reference at `/docs`.

use serde_json::{Value, json};
use switchboard::turn;
use switchboard_testkit::{
    Client, TestServer,
    http::{http_get, send},
    unix_s,
};

async fn post_token(server: &TestServer, body: Value) -> (u16, Value) {
    let request = reqwest::Client::new()
        .post(server.http("/v1/token"))
        .json(&body);
    let answer = send(request).await;
    (answer.status, answer.json())
}

#[tokio::test]
async fn the_app_and_the_sdk_are_served() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.http("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let response = reqwest::get(server.http("/sdk/switchboard.js"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(response.text().await.unwrap().contains("export"));
    let (status, body) = http_get(&server.http("/sdk/missing.js"), &[]).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_api_reference_is_served_from_the_binary() {
    let server = TestServer::start().await;
    for path in ["/docs", "/docs/"] {
        let response = reqwest::get(server.http(path)).await.unwrap();
        assert_eq!(response.status(), 200);
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("/docs/swagger-ui/swagger-ui-bundle.js"),
            "{page}"
        );
        assert!(page.contains("/docs/init.js"), "{page}");
    }
    // Every file the page loads is embedded: nothing comes from a CDN.
    for (path, kind) in [
        ("/docs/swagger-ui/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui/swagger-ui.css", "text/css"),
        ("/docs/init.js", "text/javascript"),
    ] {
        let response = reqwest::get(server.http(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("https://cdn."), "{path} loads from a CDN");
    }
    let init = reqwest::get(server.http("/docs/init.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("'/openapi.json'"));
}

#[tokio::test]
async fn guest_tokens_make_the_first_comer_host() {
    let server = TestServer::start().await;
    let (status, first) = post_token(&server, json!({"room": "lobby-1", "name": " Ann "})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["role"], "host");
    assert_eq!(first["room"], "lobby-1");
    assert_eq!(first["name"], "Ann");
    assert!(first["user"].as_str().unwrap().starts_with("guest-"));
    // The token works, for that room, with that role and name.
    let url = format!(
        "{}?token={}",
        server.ws_url(),
        first["token"].as_str().unwrap()
    );
    let mut ann = Client::connect(&url).await;
    let joined = ann.join("lobby-1", "ann").await;
    assert_eq!(joined.payload["role"], "host");
    // The room has a member now: the next one is a guest, and sees Ann's name.
    let (_, second) = post_token(&server, json!({"room": "lobby-1"})).await;
    assert_eq!(second["role"], "guest");
    assert!(second.get("name").is_none());
    assert_ne!(second["user"], first["user"]);
    let url = format!(
        "{}?token={}",
        server.ws_url(),
        second["token"].as_str().unwrap()
    );
    let mut bob = Client::connect(&url).await;
    let joined = bob.join("lobby-1", "bob").await;
    assert_eq!(joined.payload["peers"][0]["name"], "Ann");
    // The grant is exactly the room.
    let env = bob.msg("join").room("lobby-2");
    bob.send(env).await;
    bob.expect_error("forbidden").await;
}

#[tokio::test]
async fn guest_tokens_refuse_bad_input_and_can_be_turned_off() {
    let server = TestServer::start().await;
    for body in [
        json!({"room": "no spaces"}),
        json!({"room": "team-*"}),
        json!({"name": "x"}),
        json!({"room": "r", "name": "a\u{7}"}),
        json!({"room": "r", "role": "host"}),
    ] {
        let (status, answer) = post_token(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_message");
    }
    let server = TestServer::start_with(|c| c.guest_access = false).await;
    let (status, answer) = post_token(&server, json!({"room": "r"})).await;
    assert_eq!(status, 403);
    assert_eq!(answer["error"]["code"], "forbidden");
}

#[tokio::test]
async fn joined_carries_turn_credentials_minted_for_the_session() {
    let server = TestServer::start_with(|c| {
        c.ice_servers = vec![switchboard_protocol::IceServer {
            urls: vec!["stun:stun.example.org:3478".into()],
            username: None,
            credential: None,
        }];
        c.turn_secret = Some("coturn-shared-secret".into());
        c.turn_urls = vec!["turn:turn.example.org:3478".into()];
        c.turn_ttl_ms = 3_600_000;
    })
    .await;
    let mut alice = server
        .client("alice", "r1", switchboard_protocol::Role::Guest)
        .await;
    let joined = alice.join("r1", "alice").await;
    let ice = joined.payload["ice_servers"].as_array().unwrap().clone();
    assert_eq!(ice.len(), 2);
    assert_eq!(ice[0], json!({"urls": ["stun:stun.example.org:3478"]}));
    assert_eq!(ice[1]["urls"], json!(["turn:turn.example.org:3478"]));
    let username = ice[1]["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, "alice");
    let expiry: u64 = expiry.parse().unwrap();
    let now = unix_s();
    assert!(
        (now + 3590..=now + 3610).contains(&expiry),
        "{expiry} vs {now}"
    );
    assert_eq!(
        ice[1]["credential"],
        turn::password(b"coturn-shared-secret", username)
    );
}

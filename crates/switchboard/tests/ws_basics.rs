//! End-to-end basics over real sockets: hello, join, relay, leave, health endpoints.

use serde_json::json;
use switchboard_protocol::Role;
use switchboard_testkit::{TestServer, http::http_get};

#[tokio::test]
async fn two_peers_join_and_relay_an_offer() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.client("bob", "r1", Role::Guest).await;
    let joined = bob.join("r1", "bob").await;
    assert_eq!(
        joined.payload["peers"],
        json!([{"peer": "alice", "role": "host", "meta": null}])
    );
    let announced = alice.expect("peer_joined").await;
    assert_eq!(announced.payload["peer"], "bob");

    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .id("o-1")
        .payload(json!({"sdp": "v=0\r\n"}));
    alice.send(offer).await;
    let got = bob.expect("offer").await;
    assert_eq!(got.from.as_deref(), Some("alice"));
    assert_eq!(got.payload, json!({"sdp": "v=0\r\n"}));
    assert_eq!(got.id.as_deref(), Some("o-1"));
    alice.expect_quiet().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let (status, _) = http_get(&server.http("/healthz"), &[]).await;
    assert_eq!(status, 200);
    let (status, _) = http_get(&server.http("/readyz"), &[]).await;
    assert_eq!(status, 200);
}

//! Floods against the real server: budgets hold, the flooder is warned (not echoed), sustained
//! abuse is disconnected with 1008, new-session floods get 429 with `Retry-After`, caps answer with
//! a clear error, and a normal call between other peers keeps working throughout.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use switchboard::config::Config;
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, TestServer, eventually, metrics::scrape, server::no_address_budgets, ws_refusal,
};
use tokio_tungstenite::tungstenite::Message;

fn candidate(n: usize) -> serde_json::Value {
    json!({"candidate": format!("candidate:{n} 1 udp 1 127.0.0.1 {} typ host", 40000 + n),
           "sdp_mid": "0", "sdp_m_line_index": 0})
}

/// Small budgets so a test floods in milliseconds; the per-address budgets are off unless a test
/// turns them on.
fn small_budgets(c: &mut Config) {
    no_address_budgets(c);
    c.rate_limits.candidates_per_sec = 20.0;
    c.rate_limits.candidate_burst = 20.0;
    c.rate_limits.messages_per_sec = 20.0;
    c.rate_limits.message_burst = 20.0;
}

/// Reads until the `pong` answering a fresh ping, counting the messages of `kind` before it.
async fn count_until_pong(client: &mut Client, kind: &str) -> usize {
    let ping = client.msg("ping").id("count");
    client.send(ping).await;
    let mut n = 0;
    loop {
        let m = client.recv().await;
        if m.kind == "pong" && m.id.as_deref() == Some("count") {
            return n;
        }
        assert_eq!(m.kind, kind, "unexpected {m:?}");
        n += 1;
    }
}

#[tokio::test]
async fn a_candidate_flood_is_dropped_and_a_normal_call_keeps_working() {
    let server = TestServer::start_with(small_budgets).await;
    let mut mallory = server.joined("mallory", "r1", Role::Guest, "mallory").await;
    let mut victim = server.joined("victim", "r1", Role::Guest, "victim").await;
    mallory.expect("peer_joined").await;
    let mut alice = server.joined("alice", "r2", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r2", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;

    let start = Instant::now();
    for n in 0..500 {
        let env = mallory
            .msg("candidate")
            .room("r1")
            .to("victim")
            .payload(candidate(n));
        mallory.send(env).await;
    }
    // During the flood a normal call elsewhere goes through, every message of it.
    let offer = alice
        .msg("offer")
        .room("r2")
        .to("bob")
        .payload(json!({"sdp": "v=0"}));
    alice.send(offer).await;
    for n in 0..20 {
        let c = alice
            .msg("candidate")
            .room("r2")
            .to("bob")
            .payload(candidate(n));
        alice.send(c).await;
    }
    assert_eq!(bob.expect("offer").await.from.as_deref(), Some("alice"));
    for _ in 0..20 {
        bob.expect("candidate").await;
    }
    let answer = bob
        .msg("answer")
        .room("r2")
        .to("alice")
        .payload(json!({"sdp": "v=0"}));
    bob.send(answer).await;
    alice.expect("answer").await;

    // The victim got no more than the budget allows over the elapsed time.
    let got = count_until_pong(&mut victim, "candidate").await;
    let allowed = 20 + (20.0 * start.elapsed().as_secs_f64()).ceil() as usize;
    assert!(
        (20..=allowed).contains(&got),
        "victim got {got}, allowed {allowed}"
    );
    // The flooder was warned, never answered message by message.
    let warnings = count_until_pong(&mut mallory, "warning").await;
    let seconds = start.elapsed().as_secs() as usize + 1;
    assert!(
        (1..=seconds).contains(&warnings),
        "{warnings} warnings in about {seconds} s"
    );
    let metrics = scrape(&server.http("/metrics")).await;
    assert!(
        metrics
            .text
            .contains("rate_limited_total{scope=\"candidate\"}"),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn sustained_abuse_closes_the_connection_with_1008() {
    let server = TestServer::start_with(|c| {
        small_budgets(c);
        c.rate_limits.messages_per_sec = 5.0;
        c.rate_limits.message_burst = 5.0;
        c.rate_limits.abuse_factor = 4.0;
        c.rate_limits.abuse_window_ms = 2_000;
    })
    .await;
    let mut mallory = server.joined("mallory", "r1", Role::Guest, "mallory").await;
    let mut victim = server.joined("victim", "r1", Role::Guest, "victim").await;
    mallory.expect("peer_joined").await;
    let frames: Vec<String> = (0..1000)
        .map(|n| {
            mallory
                .msg("message")
                .room("r1")
                .to("victim")
                .payload(json!({"n": n}))
                .to_json()
        })
        .collect();
    let (mut sink, mut stream) = mallory.ws.split();
    // About 50 messages a second, ten times the budget, until the server hangs up (or 20 s).
    let flood = tokio::spawn(async move {
        for frame in frames {
            if sink.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let code = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(frame) = stream.next().await {
            if let Ok(Message::Close(frame)) = frame {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the server closes an abusive connection");
    flood.abort();
    assert_eq!(code, Some(1008));
    loop {
        let m = victim.recv().await;
        if m.kind == "peer_left" {
            assert_eq!(
                m.payload,
                json!({"peer": "mallory", "reason": "disconnected"})
            );
            break;
        }
        assert_eq!(m.kind, "message");
    }
}

#[tokio::test]
async fn a_new_session_flood_from_one_address_gets_429_with_retry_after() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.sessions_per_sec_per_address = 1.0;
        c.rate_limits.session_burst_per_address = 3.0;
    })
    .await;
    let token = server.token("u", "r1", Role::Guest);
    let url = format!("{}?token={token}", server.ws_url());
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Client::connect(&url).await);
    }
    let (status, body) = ws_refusal(&url, &[]).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limited");
    // The HTTP transports share the budget, and say when to come back.
    let response = reqwest::Client::new()
        .post(server.http("/v1/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    // The sessions already open are unaffected.
    for client in &mut open {
        client.expect_quiet().await;
    }
}

#[tokio::test]
async fn caps_refuse_with_a_clear_error_instead_of_failing() {
    let server = TestServer::start_with(|c| {
        no_address_budgets(c);
        c.max_sessions_per_user = 2;
        c.max_connections = Some(3);
    })
    .await;
    let alice = server.token("alice", "r1", Role::Guest);
    let url = |t: &str| format!("{}?token={t}", server.ws_url());
    let mut a1 = Client::connect(&url(&alice)).await;
    let _a2 = Client::connect(&url(&alice)).await;
    let (status, body) = ws_refusal(&url(&alice), &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let _b1 = server.client("bob", "r1", Role::Guest).await;
    let carol = server.token("carol", "r1", Role::Guest);
    let (status, body) = ws_refusal(&url(&carol), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    // Existing sessions keep working, and a closed one frees its place.
    a1.expect_quiet().await;
    a1.close().await;
    eventually("a place freed", || {
        tokio_tungstenite::connect_async(url(&carol))
    })
    .await;
}

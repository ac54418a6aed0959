//! What operators see: the JSON log of a full run at debug level holds no raw user id, token, SDP,
//! candidate or chat text (user ids appear as their keyed hash), and `/metrics` after a scripted
//! call carries every documented metric with the right values.
//!
//! The log test runs the real `switchboard serve` binary and reads its stderr, so it sees exactly
//! what an operator's log pipeline would, from startup to graceful shutdown.

use serde_json::{Value, json};
use switchboard::observe::UserHasher;
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, DEADLINE, Process, SECRET, TestServer,
    metrics::{Scrape, scrape},
    process,
    tokens::{self, TTL},
    ws_refusal,
};

const ALICE: &str = "user-alice-9d2f61";
const BOB: &str = "user-bob-4c81e7";
const OFFER_SDP: &str =
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=SDP-OFFER-MARKER-7ab3c9\r\n";
const ANSWER_SDP: &str = "v=0\r\no=- 99 2 IN IP4 127.0.0.1\r\ns=SDP-ANSWER-MARKER-5e6f10\r\n";
const CANDIDATE: &str =
    "candidate:CANDIDATE-MARKER-1a2b 1 udp 2122260223 192.0.2.77 54400 typ host";
const CHAT: &str = "CHAT-MARKER-99f1 meet at noon";
const BAD_TOKEN: &str = "TOKEN-MARKER-bad.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

/// Everything secret that the scripted call put on the wire.
struct Secrets {
    tokens: Vec<String>,
}

/// A call between alice (host) and bob over WebSocket on `base` (`ws://host:port`): joins,
/// offer/answer with distinctive SDP, candidates both ways and end-of-candidates, call control,
/// chat to the room and to one peer, a refused message, an auth failure with a distinctive token
/// and an expired one, a dropped connection resumed, a leave. Returns the tokens used.
async fn scripted_call(base: &str) -> (Secrets, Client, Client) {
    let ws = format!("{base}/v1/ws");
    let alice_token = tokens::signer()
        .mint(ALICE, "r1", Role::Host, Some("Alice".into()), TTL)
        .unwrap();
    let bob_token = tokens::mint(BOB, "r1", Role::Guest);
    let expired = tokens::expired(ALICE, "r1");

    // Auth failures: garbage with a marker, and a well-signed but expired token.
    for token in [BAD_TOKEN, expired.as_str()] {
        let (status, _) = ws_refusal(&format!("{ws}?token={token}"), &[]).await;
        assert_eq!(status, 401);
    }
    let auth = format!("Bearer {BAD_TOKEN}");
    let (status, _) = ws_refusal(&ws, &[("authorization", &auth)]).await;
    assert_eq!(status, 401);

    let mut alice = Client::connect(&format!("{ws}?token={alice_token}")).await;
    alice.join("r1", "alice").await;
    let bob_url = format!("{ws}?token={bob_token}");
    let mut bob = Client::connect(&bob_url).await;
    bob.join("r1", "bob").await;
    alice.expect("peer_joined").await;

    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .payload(json!({"type": "offer", "sdp": OFFER_SDP}));
    alice.send(offer).await;
    assert_eq!(bob.expect("offer").await.payload["sdp"], OFFER_SDP);
    let answer = bob
        .msg("answer")
        .room("r1")
        .to("alice")
        .payload(json!({"type": "answer", "sdp": ANSWER_SDP}));
    bob.send(answer).await;
    alice.expect("answer").await;
    trickle(&mut alice, &mut bob, "bob").await;
    trickle(&mut bob, &mut alice, "alice").await;
    let start = alice
        .msg("call_start")
        .room("r1")
        .to("bob")
        .payload(json!({"call_id": "call-1"}));
    alice.send(start).await;
    bob.expect("call_start").await;
    let chat = alice
        .msg("message")
        .room("r1")
        .payload(json!({"text": CHAT}));
    alice.send(chat).await;
    assert_eq!(bob.expect("message").await.payload["text"], CHAT);
    let dm = bob
        .msg("message")
        .room("r1")
        .to("alice")
        .payload(json!({"text": CHAT}));
    bob.send(dm).await;
    alice.expect("message").await;
    // A refusal: an offer to nobody.
    let stray = alice
        .msg("offer")
        .room("r1")
        .to("zed")
        .payload(json!({"sdp": OFFER_SDP}));
    alice.send(stray).await;
    alice.expect_error("unknown_peer").await;

    // Bob's network drops; he resumes and gets what he missed.
    let (resume, last_seq, seq) = (bob.resume_url(&bob_url), bob.last_seq, bob.seq);
    bob.drop_connection();
    let end = alice
        .msg("call_end")
        .room("r1")
        .to("bob")
        .payload(json!({"call_id": "call-1"}));
    alice.send(end).await;
    alice.expect_quiet().await;
    let mut bob = Client::connect_resumed(&resume, last_seq, seq).await;
    bob.expect("call_end").await;
    bob.expect_quiet().await;

    let secrets = Secrets {
        tokens: vec![alice_token, bob_token, expired, BAD_TOKEN.to_owned()],
    };
    (secrets, alice, bob)
}

/// A candidate and the end-of-candidates marker from `from` to `to` (peer id `peer`).
async fn trickle(from: &mut Client, to: &mut Client, peer: &str) {
    for candidate in [CANDIDATE, ""] {
        let env = from
            .msg("candidate")
            .room("r1")
            .to(peer)
            .payload(json!({"candidate": candidate, "sdp_mid": "0", "sdp_m_line_index": 0}));
        from.send(env).await;
        assert_eq!(to.expect("candidate").await.payload["candidate"], candidate);
    }
}

#[tokio::test]
async fn a_full_runs_json_log_holds_no_user_ids_tokens_sdp_or_candidates() {
    let binary = env!("CARGO_BIN_EXE_switchboard");
    let server = Process::start(binary, &[("SWITCHBOARD_LOG", "debug")], None).await;
    let (secrets, alice, bob) = scripted_call(&format!("ws://{}", server.addr)).await;
    // An auth failure on an HTTP session endpoint too, with the same distinctive token.
    let refused = reqwest::Client::new()
        .post(format!("http://{}/v1/sessions", server.addr))
        .bearer_auth(BAD_TOKEN)
        .timeout(DEADLINE)
        .send()
        .await
        .expect("HTTP answer");
    assert_eq!(refused.status(), 401);
    // And one with no token at all, which is refused (and logged) before any token is checked.
    let tokenless = reqwest::Client::new()
        .post(format!("http://{}/v1/sessions", server.addr))
        .timeout(DEADLINE)
        .send()
        .await
        .expect("HTTP answer");
    assert_eq!(tokenless.status(), 401);
    let bob_leave = {
        let mut bob = bob;
        let leave = bob.msg("leave").room("r1");
        bob.send(leave).await;
        bob.expect("left").await;
        bob
    };
    bob_leave.close().await;
    alice.close().await;
    let lines = server.stop().await;
    let log = lines.join("\n");

    // Every line is one JSON object with a level; the run produced the named events.
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    let events: Vec<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["event"].as_str().map(str::to_owned))
        .collect();
    for event in [
        "server.listening",
        "ws.connect",
        "auth.failure",
        "ws.auth_success",
        "session.opened",
        "room.join",
        "relay.offer",
        "relay.answer",
        "relay.candidate",
        "relay.message",
        "message.rejected",
        "session.detached",
        "session.resumed",
        "room.leave",
        "stream.closed",
        "session.closed",
        "server.stopped",
    ] {
        assert!(
            events.iter().any(|e| e == event),
            "no {event} in the log:\n{log}"
        );
    }

    // One name for auth failures on every transport, which a field tells apart.
    let failures = process::events(&lines, "auth.failure");
    for transport in ["ws", "http"] {
        assert!(
            failures.iter().any(|v| v["transport"] == transport),
            "no auth.failure for {transport}: {failures:?}"
        );
    }
    assert!(
        failures.iter().any(|v| v["transport"] == "http"
            && v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("a token is required"))),
        "no auth.failure for the tokenless HTTP request: {failures:?}"
    );

    // User ids only as their keyed hash.
    let hasher = UserHasher::new(SECRET.as_bytes());
    for user in [ALICE, BOB] {
        assert!(log.contains(&hasher.hash(user)), "{user}'s hash is logged");
    }
    let mut forbidden: Vec<String> = vec![
        ALICE.into(),
        BOB.into(),
        "SDP-OFFER-MARKER".into(),
        "SDP-ANSWER-MARKER".into(),
        "4611731400430051336".into(),
        "CANDIDATE-MARKER".into(),
        "192.0.2.77".into(),
        "CHAT-MARKER".into(),
        "TOKEN-MARKER".into(),
        SECRET.into(),
    ];
    for token in &secrets.tokens {
        forbidden.push(token.clone());
        // Each part on its own too (a token cut at a dot is still a leak), but not the shared
        // HS256 header.
        forbidden.extend(
            token
                .split('.')
                .skip(1)
                .filter(|p| p.len() > 8)
                .map(str::to_owned),
        );
    }
    for needle in &forbidden {
        let hits: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(needle.as_str()))
            .collect();
        assert!(hits.is_empty(), "`{needle}` appears in the log: {hits:#?}");
    }
}

#[tokio::test]
async fn metrics_after_a_scripted_call_carry_the_documented_values() {
    let server = TestServer::start().await;
    let base = format!("ws://{}", server.addr);
    let (_, alice, bob) = scripted_call(&base).await;
    // A long-poll session too, so two transports show.
    let token = server.token("carol", "r2", Role::Guest);
    let session = server.http_session(&token).await;
    let polled = reqwest::Client::new()
        .get(server.http(&format!("/v1/sessions/{session}/poll?after=0")))
        .bearer_auth(&token)
        .timeout(DEADLINE)
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), 200);

    let metrics = scrape(&server.http("/metrics")).await;
    let Scrape { text, samples: m } = &metrics;
    let get = |key: &str| metrics.get(key);
    // Type lines of every documented metric (`rate_limited` has none until something is limited).
    for (name, kind) in [
        ("ws_connections_gauge", "gauge"),
        ("room_members_gauge", "gauge"),
        ("rooms_gauge", "gauge"),
        ("sessions_gauge", "gauge"),
        ("messages", "counter"),
        ("errors", "counter"),
        ("relay_latency_ms", "histogram"),
        ("stream_churn", "counter"),
        ("resumes", "counter"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind}\n{text}"
        );
    }

    // Every metric the server exposes is documented.
    let doc = operations_doc();
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|l| l.split(' ').next())
        {
            assert!(
                doc.contains(&format!("`{name}`")) || doc.contains(&format!("`{name}_total`")),
                "{name} is not in docs/operations.md"
            );
        }
    }

    // Gauges: alice and bob's sockets are open (bob's first one closed), one room of two.
    assert_eq!(get(r#"ws_connections_gauge{transport="ws"}"#), 2.0);
    assert_eq!(get(r#"ws_connections_gauge{transport="poll"}"#), 0.0);
    assert_eq!(get("rooms_gauge"), 1.0);
    assert_eq!(get("room_members_gauge"), 2.0);
    assert_eq!(get("sessions_gauge"), 3.0);

    // Messages by type and direction: what the script sent and what was delivered.
    for (kind, dir, n) in [
        ("join", "in", 2.0),
        ("joined", "out", 2.0),
        ("offer", "in", 1.0), // accepted only: the refused one is an error below
        ("offer", "out", 1.0),
        ("answer", "in", 1.0),
        ("answer", "out", 1.0),
        ("candidate", "in", 4.0),
        ("candidate", "out", 4.0),
        ("call_start", "in", 1.0),
        ("call_start", "out", 1.0),
        ("call_end", "in", 1.0),
        ("call_end", "out", 1.0),
        ("peer_joined", "out", 1.0),
        ("ping", "in", 2.0),
        ("pong", "out", 2.0),
        ("message", "in", 2.0),
        ("message", "out", 2.0),
        ("hello", "out", 4.0), // alice, bob, bob resumed, carol
        ("error", "out", 1.0),
    ] {
        let key = format!(r#"messages_total{{type="{kind}",direction="{dir}"}}"#);
        assert_eq!(get(&key), n, "{key}");
    }
    assert_eq!(get(r#"errors_total{code="unknown_peer"}"#), 1.0);

    // Relay latency: one observation per relayed message handed to a transport, buckets
    // cumulative up to +Inf.
    let relayed = 1.0 + 1.0 + 4.0 + 1.0 + 1.0 + 2.0;
    assert_eq!(get("relay_latency_ms_count"), relayed);
    assert!(get("relay_latency_ms_sum") >= 0.0);
    let mut buckets: Vec<(f64, f64)> = m
        .iter()
        .filter_map(|(k, v)| {
            let le = k
                .strip_prefix("relay_latency_ms_bucket{le=\"")?
                .strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            Some((le, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative {buckets:?}"
    );
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, relayed));

    // Churn and resumes: three WebSocket streams opened, bob's first one lost; one poll answered.
    assert_eq!(
        get(r#"stream_churn_total{transport="ws",event="open",reason=""}"#),
        3.0
    );
    let ws_closed: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with(r#"stream_churn_total{transport="ws",event="close""#))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(ws_closed, 1.0, "{text}");
    assert_eq!(
        get(r#"stream_churn_total{transport="poll",event="close",reason="answered"}"#),
        1.0
    );
    assert_eq!(get(r#"resumes_total{outcome="ok"}"#), 1.0);
    // Rate limits: a normal call never hits one (the family is absent while it has no samples).
    assert!(
        m.iter()
            .filter(|(k, _)| k.starts_with("rate_limited_total"))
            .all(|(_, v)| *v == 0.0),
        "{text}"
    );

    // The gauges follow the hub when members leave.
    alice.close().await;
    bob.close().await;
    server.wait_for("both gone", |s| s.members == 0).await;
    let m = scrape(&server.http("/metrics")).await.samples;
    assert_eq!(m[r#"ws_connections_gauge{transport="ws"}"#], 0.0);
    assert_eq!(m["rooms_gauge"], 0.0);
    assert_eq!(m["room_members_gauge"], 0.0);
}

fn operations_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md");
    std::fs::read_to_string(path).expect("docs/operations.md")
}

#[test]
fn operations_doc_names_every_setting_and_the_dashboard_covers_the_metrics() {
    let doc = operations_doc();
    let config = serde_json::to_value(switchboard::config::Config::default()).unwrap();
    let optional = [
        "secret",
        "jwks_url",
        "jwt_issuer",
        "jwt_audience",
        "otlp_endpoint",
        "max_connections",
        "tls_cert",
        "tls_key",
        "database_url",
    ];
    let keys = config
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .chain(optional);
    for key in keys {
        assert!(
            doc.contains(&format!("`{key}`")) || doc.contains(&format!("`{key}.*`")),
            "setting `{key}` is not in docs/operations.md"
        );
    }

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/switchboard.json"
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    for metric in [
        "ws_connections_gauge",
        "rooms_gauge",
        "room_members_gauge",
        "messages_total",
        "errors_total",
        "rate_limited_total",
        "relay_latency_ms_bucket",
        "stream_churn_total",
        "resumes_total",
        "connections_refused_total",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "no panel shows {metric}"
        );
    }
    for q in ["histogram_quantile(0.5,", "histogram_quantile(0.99,"] {
        assert!(exprs.iter().any(|e| e.contains(q)), "no panel computes {q}");
    }
    for metric in exprs.iter().flat_map(|e| {
        e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.ends_with("_total") || w.ends_with("_gauge") || w.ends_with("_bucket"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    }) {
        let base = metric
            .trim_end_matches("_bucket")
            .trim_end_matches("_count");
        assert!(
            doc.contains(base),
            "the dashboard uses {metric}, which is not documented"
        );
    }
}

#[tokio::test]
async fn rate_limited_total_counts_messages_dropped_over_a_budget() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.candidates_per_sec = 1.0;
        c.rate_limits.candidate_burst = 3.0;
    })
    .await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let _bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    for i in 0..10 {
        let env =
            alice.msg("candidate").room("r1").to("bob").payload(
                json!({"candidate": format!("candidate:{i} 1 udp 1 192.0.2.1 9 typ host")}),
            );
        alice.send(env).await;
    }
    // The sender is told (once) that it is over its budget.
    alice.expect("warning").await;
    let metrics = scrape(&server.http("/metrics")).await;
    let dropped = metrics.get(r#"rate_limited_total{scope="candidate"}"#);
    let text = &metrics.text;
    assert!((1.0..=7.0).contains(&dropped), "{dropped}\n{text}");
    assert!(text.contains("# TYPE rate_limited counter\n"));
}

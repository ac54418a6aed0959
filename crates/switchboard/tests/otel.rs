//! OpenTelemetry: without `otlp_endpoint` the span call sites are disabled; with it, a call's
//! spans (connection lifecycle, join, relay, HTTP requests) reach an OTLP/HTTP collector. The
//! collector here is a stub on 127.0.0.1:0 that keeps every `POST /v1/traces` body (protobuf), in
//! which span names appear as plain strings.
//!
//! The test installs the server's own subscriber ([`switchboard::telemetry::subscriber`]) as the
//! thread's default; `#[tokio::test]` runs every task of the server on this one thread, so all of
//! its spans go through it.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use parking_lot::Mutex;
use serde_json::json;
use switchboard::{config::LogFormat, telemetry};
use switchboard_protocol::Role;
use switchboard_testkit::{DEADLINE, TestServer, eventually, server::stub};
use tracing_subscriber::EnvFilter;

/// Bodies of `POST /v1/traces`, with their content types.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn collector() -> (String, Received) {
    async fn traces(
        State(received): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        received.lock().push((content_type, body));
        StatusCode::OK
    }
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received.clone());
    (format!("http://{}", stub(app).await), received)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn spans_cost_nothing_without_an_endpoint_and_a_call_exports_them_with_one() {
    // Without an endpoint: no exporter, and the span call sites are disabled (no layer wants
    // their target). One test, in sequence: the call-site cache is global to the process.
    {
        let (subscriber, telemetry) = telemetry::subscriber(
            LogFormat::Text,
            EnvFilter::new("debug"),
            std::io::sink,
            false,
            None,
        )
        .unwrap();
        assert!(!telemetry.exporting());
        let _default = tracing::subscriber::set_default(subscriber);
        assert!(telemetry::receive_span().is_disabled());
        assert!(telemetry::ws_span(false).is_disabled());
    }

    let (endpoint, received) = collector().await;
    let (subscriber, telemetry) = telemetry::subscriber(
        LogFormat::Json,
        EnvFilter::new("info"),
        std::io::sink,
        false,
        Some(&endpoint),
    )
    .expect("exporter");
    assert!(telemetry.exporting());
    let telemetry = Arc::new(telemetry);
    let _default = tracing::subscriber::set_default(subscriber);
    assert!(!telemetry::receive_span().is_disabled());

    let server = TestServer::start().await;
    let mut alice = server
        .joined("user-alice-otel", "r1", Role::Host, "alice")
        .await;
    let mut bob = server
        .joined("user-bob-otel", "r1", Role::Guest, "bob")
        .await;
    alice.expect("peer_joined").await;
    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .payload(json!({"sdp": "v=0\r\ns=OTEL-SDP-MARKER\r\n"}));
    alice.send(offer).await;
    bob.expect("offer").await;
    let candidate = bob.msg("candidate").room("r1").to("alice").payload(
        json!({"candidate": "candidate:OTEL-CANDIDATE-MARKER 1 udp 1 192.0.2.1 9 typ host"}),
    );
    bob.send(candidate).await;
    alice.expect("candidate").await;
    // HTTP requests too: a routed one, and one of the session endpoints served outside the router.
    for (path, status) in [("/healthz", 200), ("/v1/sessions/nope/poll", 401)] {
        let response = reqwest::Client::new()
            .get(server.http(path))
            .timeout(DEADLINE)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    // Connection spans end when the sockets close.
    alice.close().await;
    bob.close().await;
    server
        .wait_for("sessions closed", |s| s.sessions == 0)
        .await;

    // Flush (blocking, off this thread: the collector answers on it) until every span arrived.
    let wanted = [
        "ws.connection",
        "room.join",
        "relay.offer",
        "relay.candidate",
        "GET /v1/ws",
        "GET /healthz",
        "GET /v1/sessions/{session}/poll",
        "switchboard",
    ];
    eventually("every span exported", || async {
        let t = telemetry.clone();
        tokio::task::spawn_blocking(move || t.flush())
            .await
            .unwrap()
            .expect("flush");
        let bodies = received.lock().clone();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|name| !bodies.iter().any(|(_, body)| contains(body, name)))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    })
    .await;
    let bodies = received.lock().clone();
    assert!(
        bodies.iter().all(|(ct, _)| ct == "application/x-protobuf"),
        "OTLP/HTTP protobuf"
    );
    // Spans carry no user ids, SDP or candidates.
    for needle in [
        "user-alice-otel",
        "user-bob-otel",
        "OTEL-SDP-MARKER",
        "OTEL-CANDIDATE-MARKER",
    ] {
        assert!(
            !bodies.iter().any(|(_, body)| contains(body, needle)),
            "{needle} exported"
        );
    }
    drop(_default);
    let t = Arc::try_unwrap(telemetry).ok().expect("sole owner");
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
}

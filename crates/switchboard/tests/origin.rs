//! Origin allow-list and CORS over real sockets: a browser request from another site gets 403
//! `forbidden` before any upgrade or token check; the server's own origin, the loopback origins
//! (by default) or the configured ones pass; requests without `Origin` pass; CORS answers name
//! allowed origins only.

use reqwest::{Method, header};
use serde_json::Value;
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, TestServer,
    http::{Answer, assert_error, send},
    ws_refusal,
};

fn assert_forbidden(status: u16, body: &Value) {
    assert_error((status, body), 403, "forbidden");
}

/// `method path` with `headers`: status, headers and body text.
async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new().request(method, server.http(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send(request).await
}

#[tokio::test]
async fn cross_site_upgrades_are_refused_before_the_upgrade_and_before_auth() {
    let server = TestServer::start().await;
    let token = server.token("alice", "r1", Role::Host);
    let url = format!("{}?token={token}", server.ws_url());
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example:8080",
        "null",
        "not an origin",
    ] {
        let (status, body) = ws_refusal(&url, &[("origin", origin)]).await;
        assert_forbidden(status, &body);
    }
    // Without a token: the origin is judged first.
    let (status, body) = ws_refusal(&server.ws_url(), &[("origin", "https://evil.example")]).await;
    assert_forbidden(status, &body);
}

#[tokio::test]
async fn same_origin_loopback_and_originless_upgrades_pass_by_default() {
    let server = TestServer::start().await;
    let token = server.token("alice", "r1", Role::Host);
    let url = format!("{}?token={token}", server.ws_url());
    let own = format!("http://{}", server.addr);
    for origin in [
        own.as_str(),
        "http://localhost:5173",
        "https://127.0.0.1:3000",
        "http://[::1]:8000",
    ] {
        let c = Client::connect_with_headers(&url, &[("origin", origin)]).await;
        c.close().await;
    }
    let c = Client::connect(&url).await;
    c.close().await;
}

#[tokio::test]
async fn a_configured_list_replaces_the_loopback_default() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec![
            "https://app.example".into(),
            "https://*.tenant.example".into(),
        ];
    })
    .await;
    let token = server.token("alice", "r1", Role::Host);
    let url = format!("{}?token={token}", server.ws_url());
    let own = format!("http://{}", server.addr);
    for origin in [
        "https://app.example",
        "https://a.tenant.example",
        own.as_str(),
    ] {
        let c = Client::connect_with_headers(&url, &[("origin", origin)]).await;
        c.close().await;
    }
    for origin in [
        "http://localhost:5173",
        "http://app.example",
        "https://app.example:8443",
        "https://tenant.example",
    ] {
        let (status, body) = ws_refusal(&url, &[("origin", origin)]).await;
        assert_forbidden(status, &body);
    }
    // Another port of the server's own host is another origin.
    let other_port = format!("http://127.0.0.1:{}", server.addr.port().wrapping_add(1));
    let (status, body) = ws_refusal(&url, &[("origin", &other_port)]).await;
    assert_forbidden(status, &body);
}

#[tokio::test]
async fn http_session_endpoints_check_the_origin_and_answer_cors() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let token = server.token("alice", "r1", Role::Host);
    let bearer = format!("Bearer {token}");
    let evil = ("origin", "https://evil.example");
    let app = ("origin", "https://app.example");

    // Every session endpoint refuses another site, whatever the session.
    for (method, path) in [
        (Method::POST, "/v1/sessions"),
        (Method::POST, "/v1/sessions/nope/messages"),
        (Method::GET, "/v1/sessions/nope/events"),
        (Method::GET, "/v1/sessions/nope/poll"),
    ] {
        let Answer {
            status,
            headers,
            body,
        } = request(
            &server,
            method.clone(),
            path,
            &[evil, ("authorization", &bearer)],
        )
        .await;
        assert_forbidden(status, &serde_json::from_str(&body).unwrap());
        assert!(
            headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "{path}"
        );
    }

    // An allowed origin gets the answer, with CORS headers naming it (and no credentials).
    let Answer {
        status,
        headers,
        body,
    } = request(
        &server,
        Method::POST,
        "/v1/sessions",
        &[app, ("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert!(
        headers
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none()
    );
    assert!(
        headers.get_all(header::VARY).iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin")),
        "{headers:?}"
    );
    let session: Value = serde_json::from_str(&body).unwrap();
    let session = session["session"].as_str().unwrap();

    // Preflight for a POST with Authorization: allowed for the app, refused for another site.
    let preflight = |origin| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ]
    };
    let path = format!("/v1/sessions/{session}/messages");
    let Answer {
        status, headers, ..
    } = request(
        &server,
        Method::OPTIONS,
        &path,
        &preflight("https://app.example"),
    )
    .await;
    assert!((200..300).contains(&status), "preflight status {status}");
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(
        headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let Answer {
        status,
        headers,
        body,
    } = request(
        &server,
        Method::OPTIONS,
        &path,
        &preflight("https://evil.example"),
    )
    .await;
    assert_forbidden(status, &serde_json::from_str(&body).unwrap());
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // Without an Origin (curl, SDKs, servers) nothing changes and no CORS headers are added.
    let Answer {
        status, headers, ..
    } = request(
        &server,
        Method::GET,
        &format!("/v1/sessions/{session}/poll?after=0"),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // Health, readiness and metrics are not browser endpoints and are not guarded.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let Answer { status, .. } = request(&server, Method::GET, path, &[evil]).await;
        assert_eq!(status, 200, "{path}");
    }
}

//! The HTTP session endpoints' answers to requests that are not well-formed, over real sockets:
//! a wrong method, a bad query, a body over the limit (declared, and chunked without a length), a
//! percent-encoded session id; and the same CORS headers from these endpoints as from the others.

use reqwest::{Method, header};
use serde_json::{Value, json};
use switchboard::transport::http::MAX_POSTED_BYTES;
use switchboard_protocol::Role;
use switchboard_testkit::{
    DEADLINE, TestServer,
    http::{Answer, error_code, send},
    unix_ms,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server with an HTTP session of `alice`: the server, its bearer header value and the session.
async fn session(
    adjust: impl FnOnce(&mut switchboard::config::Config),
) -> (TestServer, String, String) {
    let server = TestServer::start_with(adjust).await;
    let token = server.token("alice", "r1", Role::Host);
    let session = server.http_session(&token).await;
    (server, format!("Bearer {token}"), session)
}

#[tokio::test]
async fn wrong_methods_bad_queries_and_encoded_ids() {
    let (server, bearer, session) = session(|_| {}).await;
    let http = reqwest::Client::new();
    for (method, endpoint, allow) in [
        (Method::GET, "messages", "POST"),
        (Method::PUT, "messages", "POST"),
        (Method::POST, "events", "GET"),
        (Method::DELETE, "poll", "GET"),
    ] {
        let url = server.http(&format!("/v1/sessions/{session}/{endpoint}"));
        let Answer {
            status, headers, ..
        } = send(
            http.request(method.clone(), url)
                .header(header::AUTHORIZATION, &bearer),
        )
        .await;
        assert_eq!(status, 405, "{method} {endpoint}");
        assert_eq!(headers[header::ALLOW], allow, "{method} {endpoint}");
    }

    // A known parameter that does not parse, and a session id that is not UTF-8 once decoded, are
    // invalid_message, as JSON; an unknown session is gone; one of another user is forbidden.
    let mallory = format!("Bearer {}", server.token("mallory", "r1", Role::Host));
    for (path, auth, expected) in [
        (
            format!("/v1/sessions/{session}/poll?after=soon"),
            &bearer,
            (400, "invalid_message"),
        ),
        (
            "/v1/sessions/%FF/poll".to_owned(),
            &bearer,
            (400, "invalid_message"),
        ),
        (
            "/v1/sessions/nope/poll".to_owned(),
            &bearer,
            (410, "session_expired"),
        ),
        (
            format!("/v1/sessions/{session}/poll"),
            &mallory,
            (403, "forbidden"),
        ),
    ] {
        let request = http
            .get(server.http(&path))
            .header(header::AUTHORIZATION, auth);
        let answer = send(request).await;
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            expected,
            "{path}: {}",
            answer.body
        );
    }

    // The session id is percent-decoded like any path segment.
    let encoded: String = session.bytes().map(|b| format!("%{b:02X}")).collect();
    let ping = json!({"type": "ping", "seq": 1, "ts": unix_ms(), "payload": {}});
    let post = http
        .post(server.http(&format!("/v1/sessions/{encoded}/messages")))
        .header(header::AUTHORIZATION, &bearer)
        .body(ping.to_string());
    let Answer { status, body, .. } = send(post).await;
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":true}"#));
    let url = server.http(&format!("/v1/sessions/{encoded}/poll?after=1"));
    let Answer { status, body, .. } =
        send(http.get(url).header(header::AUTHORIZATION, &bearer)).await;
    assert_eq!(status, 200, "{body}");
    let answered: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(answered[0]["type"], "pong", "{body}");
}

/// Sends `head` and then `body` in chunks of `chunk` bytes on a raw socket (the server may stop
/// reading early); the status and body of the answer.
async fn raw_chunked(server: &TestServer, head: &str, body: &[u8], chunk: usize) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    for part in body.chunks(chunk) {
        let framed = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
        if tcp.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if let Some(text) = std::str::from_utf8(&answer).ok()
                && let Some((_, body)) = text.split_once("\r\n\r\n")
                && body.ends_with('}')
            {
                break;
            }
        }
    });
    read.await.expect("an answer in time");
    let text = String::from_utf8(answer).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[tokio::test]
async fn a_posted_body_over_the_limit_is_payload_too_large_and_the_session_goes_on() {
    let (server, bearer, session) = session(|_| {}).await;
    let http = reqwest::Client::new();
    let path = format!("/v1/sessions/{session}/messages");
    let big = vec![b' '; MAX_POSTED_BYTES + 1];

    let answer = send(
        http.post(server.http(&path))
            .header(header::AUTHORIZATION, &bearer)
            .body(big.clone()),
    )
    .await;
    let body = answer.body.as_str();
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (413, "payload_too_large"),
        "{body}"
    );
    assert!(body.contains(&(MAX_POSTED_BYTES + 1).to_string()), "{body}");

    // Without a length, the body is read up to the limit and refused there.
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: {bearer}\r\ntransfer-encoding: chunked\r\n\r\n",
        server.addr
    );
    let (status, body) = raw_chunked(&server, &head, &big, 64 * 1024).await;
    assert_eq!(
        (
            status,
            error_code(&serde_json::from_str(&body).expect("JSON")).as_str()
        ),
        (413, "payload_too_large"),
        "{body}"
    );

    // A chunked body within the limit is read whole, and the session still takes messages.
    let ping = json!({"type": "ping", "seq": 1, "ts": unix_ms(), "payload": {}}).to_string();
    let padded = format!("{ping}{}", " ".repeat(30_000));
    let (status, body) = raw_chunked(&server, &head, padded.as_bytes(), 1000).await;
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":true}"#));
}

#[tokio::test]
async fn direct_and_routed_endpoints_answer_the_same_cors_headers() {
    let (server, bearer, session) =
        session(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let http = reqwest::Client::new();
    let cors = |headers: &header::HeaderMap| {
        [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::VARY,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        ]
        .map(|name| headers.get(name).cloned())
    };
    let routed = http
        .post(server.http("/v1/sessions"))
        .header(header::AUTHORIZATION, &bearer)
        .header(header::ORIGIN, "https://app.example");
    let Answer {
        status,
        headers: routed,
        ..
    } = send(routed).await;
    assert_eq!(status, 200);
    let ping = json!({"type": "ping", "seq": 1, "ts": unix_ms(), "payload": {}});
    let direct = http
        .post(server.http(&format!("/v1/sessions/{session}/messages")))
        .header(header::AUTHORIZATION, &bearer)
        .header(header::ORIGIN, "https://app.example")
        .body(ping.to_string());
    let Answer {
        status,
        headers: direct,
        ..
    } = send(direct).await;
    assert_eq!(status, 200);
    assert_eq!(cors(&direct), cors(&routed));
    assert_eq!(
        direct[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert_eq!(direct[header::ACCESS_CONTROL_EXPOSE_HEADERS], "retry-after");
}

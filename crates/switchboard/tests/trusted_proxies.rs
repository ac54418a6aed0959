//! The client behind a trusted proxy, over real sockets: a proxy on 127.0.0.1 (trusted) forwards
//! for clients it names in `X-Forwarded-For`, and a client on 127.0.0.2 (not trusted) connects
//! directly and sends the same headers, which must be ignored. Per-address budgets and caps are
//! charged to the client each of them is, on every transport, and the forwarded scheme and host
//! count for the origin check on both of the front's paths.

use std::net::{IpAddr, SocketAddr};

use switchboard::config::Config;
use switchboard_protocol::Role;
use switchboard_testkit::{DEADLINE, TestServer, tokens};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// Where the trusted proxy connects from.
const PROXY: &str = "127.0.0.1";
/// Where a client that is not a proxy connects from.
const DIRECT: &str = "127.0.0.2";

/// A server trusting connections from [`PROXY`], with `adjust` applied.
async fn server(adjust: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|config| {
        config.trusted_proxies = vec![format!("{PROXY}/32")];
        adjust(config);
    })
    .await
}

/// An open connection to the server from the source address `from`, and the status of the answer
/// to the request written on it.
struct Exchange {
    status: u16,
    _stream: TcpStream,
}

/// Sends `method path` with `headers` from `from`, and reads the status of the answer; the
/// connection stays open while the [`Exchange`] lives (a WebSocket stays up). A `POST` carries
/// the body a guest token is asked for with.
async fn send_from(
    from: &str,
    server: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Exchange {
    let body = if method == "POST" { TOKEN_REQUEST } else { "" };
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {server}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let reading = async {
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n") {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "answer cut short");
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(DEADLINE, reading)
        .await
        .expect("an answer in time");
    let line = String::from_utf8(head).unwrap();
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok());
    Exchange {
        status: status.unwrap_or_else(|| panic!("not a status line: {line:?}")),
        _stream: stream,
    }
}

/// What `POST /v1/token` asks for.
const TOKEN_REQUEST: &str = r#"{"room":"r"}"#;

/// The headers of a WebSocket upgrade.
const UPGRADE: [(&str, &str); 4] = [
    ("upgrade", "websocket"),
    ("connection", "upgrade"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// A budget of one new session (or guest token) per address, refilling too slowly to matter.
fn one_new_session_per_address(config: &mut Config) {
    config.rate_limits.sessions_per_sec_per_address = 0.001;
    config.rate_limits.session_burst_per_address = 1.0;
}

#[tokio::test]
async fn new_session_budgets_are_charged_to_the_forwarded_client() {
    let server = server(one_new_session_per_address).await;
    let token = |from: &str, forwarded: &str| {
        let headers = [("x-forwarded-for", forwarded.to_owned())];
        let addr = server.addr;
        let from = from.to_owned();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            send_from(&from, addr, "POST", "/v1/token", &headers)
                .await
                .status
        }
    };
    // Two clients behind the proxy have a budget each.
    assert_eq!(token(PROXY, "203.0.113.1").await, 200);
    assert_eq!(token(PROXY, "203.0.113.2").await, 200);
    assert_eq!(token(PROXY, "203.0.113.1").await, 429);
    // Spoofing: the client writes another address first; the proxy appends the real one.
    assert_eq!(token(PROXY, "198.51.100.77, 203.0.113.1").await, 429);
    // The proxy's own budget is untouched by its clients'.
    assert_eq!(
        send_from(PROXY, server.addr, "POST", "/v1/token", &[])
            .await
            .status,
        200
    );

    // A client that is not a proxy names whomever it likes: it is charged itself.
    assert_eq!(token(DIRECT, "198.51.100.1").await, 200);
    assert_eq!(token(DIRECT, "198.51.100.2").await, 429);
    assert_eq!(token(DIRECT, "203.0.113.3").await, 429);
}

#[tokio::test]
async fn session_caps_hold_per_forwarded_client_on_every_transport() {
    let server = server(|config| config.max_sessions_per_address = 1).await;
    let bearer = format!("Bearer {}", tokens::mint("u", "r", Role::Guest));
    let ws_path = "/v1/ws";
    let open = |from: &'static str, forwarded: &'static str, transport: &'static str| {
        let bearer = bearer.clone();
        let addr = server.addr;
        async move {
            let mut headers = vec![
                ("authorization", bearer.as_str()),
                ("x-forwarded-for", forwarded),
            ];
            let (method, path) = if transport == "ws" {
                headers.extend(UPGRADE);
                ("GET", ws_path)
            } else {
                ("POST", "/v1/sessions")
            };
            send_from(from, addr, method, path, &headers).await
        }
    };
    // A WebSocket and an HTTP session (SSE or long-poll) from two clients behind the proxy.
    let ws_a = open(PROXY, "203.0.113.1", "ws").await;
    assert_eq!(ws_a.status, 101);
    let http_b = open(PROXY, "203.0.113.2", "http").await;
    assert_eq!(http_b.status, 200);
    // Each is at its cap, whichever transport it tries next and whatever it puts first.
    assert_eq!(open(PROXY, "203.0.113.1", "http").await.status, 429);
    assert_eq!(open(PROXY, "10.9.9.9, 203.0.113.2", "ws").await.status, 429);
    // The direct client holds one session, whatever addresses it names.
    let direct = open(DIRECT, "203.0.113.5", "ws").await;
    assert_eq!(direct.status, 101);
    assert_eq!(open(DIRECT, "203.0.113.6", "http").await.status, 429);
    assert_eq!(open(DIRECT, "203.0.113.7", "ws").await.status, 429);
    let stats = server.running().node().hub().stats();
    assert_eq!(stats.sessions, 3);
}

#[tokio::test]
async fn forwarded_proto_and_host_count_for_the_origin_only_from_a_proxy() {
    // Only another site is listed, so the app's origin passes as the server's own or not at all.
    let server =
        server(|config| config.allowed_origins = vec!["https://other.example".into()]).await;
    let behind_tls = [
        ("origin", "https://app.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example"),
    ];
    let plain_origin = [
        ("origin", "http://app.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example"),
    ];
    // A routed path and a path of the front's direct path; neither has a token, so a request
    // the origin check lets through is answered 401.
    for path in ["/v1/sessions", "/v1/sessions/nope/messages"] {
        let status = |from, headers| async move {
            send_from(from, server.addr, "POST", path, headers)
                .await
                .status
        };
        assert_eq!(status(PROXY, &behind_tls).await, 401, "{path}");
        assert_eq!(
            status(PROXY, &plain_origin).await,
            403,
            "{path}: scheme differs"
        );
        assert_eq!(
            status(DIRECT, &behind_tls).await,
            403,
            "{path}: not from a proxy"
        );
    }
    // A WebSocket upgrade through the proxy is judged the same way.
    let mut upgrade = behind_tls.to_vec();
    upgrade.extend(UPGRADE);
    assert_eq!(
        send_from(PROXY, server.addr, "GET", "/v1/ws", &upgrade)
            .await
            .status,
        401
    );
    assert_eq!(
        send_from(DIRECT, server.addr, "GET", "/v1/ws", &upgrade)
            .await
            .status,
        403
    );
}

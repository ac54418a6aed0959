//! Test harness: a real server on an ephemeral port and real WebSocket clients.
//!
//! Waiting is bounded (every receive has a deadline) and silence is proven with a barrier, not a
//! sleep: a client that sends `ping` and gets `pong` as the very next message had nothing queued
//! before it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::{
    auth::{Claims, Signer},
    config::Config,
    secret::{Secret, SecretSource},
    server::{self, Running},
};
use switchboard_protocol::{ClientEnvelope, Role, ServerEnvelope};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, protocol::CloseFrame},
};

/// How long any single expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const SECRET: &str = "integration-test-secret-0123456789";

pub struct TestServer {
    pub addr: SocketAddr,
    running: Option<Running>,
    signer: Signer,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            secret: Some(SECRET.into()),
            ..Config::default()
        };
        adjust(&mut config);
        let secret = Secret {
            bytes: SECRET.as_bytes().to_vec(),
            source: SecretSource::Configured,
        };
        let running = server::start(config, &secret).await.expect("server starts");
        TestServer {
            addr: running.addr,
            running: Some(running),
            signer: Signer::new(SECRET.as_bytes()),
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    pub async fn shutdown(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    pub fn token(&self, user: &str, room: &str, role: Role) -> String {
        self.signer
            .mint(user, room, role, None, Duration::from_secs(600))
            .unwrap()
    }

    pub fn sign(&self, claims: &Claims) -> String {
        self.signer.sign(claims).unwrap()
    }

    /// A connected client whose `hello` has been read.
    pub async fn client(&self, user: &str, room: &str, role: Role) -> Client {
        let token = self.token(user, room, role);
        Client::connect(&format!("{}?token={token}", self.ws_url())).await
    }

    /// A client joined to `room` as `peer`, with its `joined` read.
    pub async fn joined(&self, user: &str, room: &str, role: Role, peer: &str) -> Client {
        let mut c = self.client(user, room, role).await;
        c.join(room, peer).await;
        c
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Socket,
    pub seq: u64,
    pub last_seq: u64,
    pub session: String,
    pub hello: ServerEnvelope,
    url: String,
}

impl Client {
    /// Connects and reads `hello`.
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut c = Client {
            ws,
            seq: 0,
            last_seq: 0,
            session: String::new(),
            hello: ServerEnvelope {
                kind: String::new(),
                room: None,
                seq: 0,
                ts: 0,
                from: None,
                id: None,
                payload: Value::Null,
            },
            url: url.to_owned(),
        };
        let hello = c.recv().await;
        assert_eq!(hello.kind, "hello", "first frame is hello: {hello:?}");
        c.session = hello.payload["session"].as_str().unwrap().to_owned();
        c.hello = hello;
        c
    }

    /// Opens a new connection that resumes this session after `last_seq`.
    pub async fn resume_url(&self, base_with_token: &str) -> String {
        format!(
            "{base_with_token}&resume={}&last_seq={}",
            self.session, self.last_seq
        )
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// An envelope with the next seq and the current time.
    pub fn msg(&mut self, kind: &str) -> ClientEnvelope {
        self.seq += 1;
        ClientEnvelope::new(kind, self.seq, unix_ms())
    }

    pub async fn send(&mut self, env: ClientEnvelope) {
        self.send_text(&env.to_json()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next server message, checking `seq` rises by exactly one.
    pub async fn recv(&mut self) -> ServerEnvelope {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("a message in time")
                .expect("stream open")
                .expect("frame");
            match frame {
                Message::Text(text) => {
                    let env: ServerEnvelope = serde_json::from_str(&text).expect("valid JSON");
                    if env.seq != 0 {
                        assert_eq!(env.seq, self.last_seq + 1, "no gap or repeat in seq: {text}");
                        self.last_seq = env.seq;
                    }
                    return env;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next message, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> ServerEnvelope {
        let env = self.recv().await;
        assert_eq!(env.kind, kind, "expected {kind}, got {env:?}");
        env
    }

    /// The next message, which must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) -> ServerEnvelope {
        let env = self.expect("error").await;
        assert_eq!(env.payload["code"], code, "{env:?}");
        env
    }

    pub async fn join(&mut self, room: &str, peer: &str) -> ServerEnvelope {
        let env = self.msg("join").room(room).payload(json!({"peer": peer}));
        self.send(env).await;
        self.expect("joined").await
    }

    /// Proves nothing is queued for this client: a `ping` is answered by the very next message.
    pub async fn expect_quiet(&mut self) {
        let env = self.msg("ping").id("barrier");
        self.send(env).await;
        let next = self.recv().await;
        assert_eq!(next.kind, "pong", "expected nothing before pong, got {next:?}");
        assert_eq!(next.id.as_deref(), Some("barrier"));
    }

    /// Reads until the server closes the socket; returns the close frame.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("close in time");
            match frame {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(Message::Text(text))) => panic!("expected close, got {text}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("expected a close frame, got error {e}"),
                None => return None,
            }
        }
    }

    /// Closes the socket cleanly.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(DEADLINE, self.ws.next()).await {}
    }

    /// Drops the TCP connection without a close frame, as a network failure would.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// The HTTP status and JSON body of a plain (non-upgrade-completing) request to `/v1/ws`.
pub async fn ws_refusal(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        request
            .headers_mut()
            .insert(name, v.parse().expect("header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => panic!("upgrade should have been refused"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            let json = serde_json::from_slice(&body).expect("JSON error body");
            (status, json)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

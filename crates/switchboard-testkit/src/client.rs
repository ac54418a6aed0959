//! A WebSocket client over tungstenite that checks what arrives: every server message is valid
//! JSON and its `seq` rises by exactly one (no gap, no repeat).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_protocol::{ClientEnvelope, ServerEnvelope};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Message, client::IntoClientRequest, handshake::client::Request, protocol::CloseFrame,
    },
};

use crate::{DEADLINE, no_hello, unix_ms};

/// The socket of a [`Client`].
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket session's client side; see the module documentation.
pub struct Client {
    /// The socket, for sending what the methods below do not.
    pub ws: Socket,
    /// The last client `seq` used.
    pub seq: u64,
    /// The last server `seq` received.
    pub last_seq: u64,
    /// The session id (from `hello`).
    pub session: String,
    /// The `hello` read on connecting.
    pub hello: ServerEnvelope,
    url: String,
}

impl Client {
    /// Connects and reads `hello`.
    pub async fn connect(url: &str) -> Client {
        let mut c = Client::connect_raw(url).await;
        c.read_hello().await;
        c
    }

    /// Connects and reads `hello` within `within`: the client, or the error the upgrade ended in;
    /// `None` if the server answered nothing in time.
    pub async fn try_connect(
        url: &str,
        within: Duration,
    ) -> Option<Result<Client, tokio_tungstenite::tungstenite::Error>> {
        let connecting = async {
            let (ws, _) = tokio_tungstenite::connect_async(request(url, &[])).await?;
            let mut c = Client::over(ws, url);
            c.read_hello().await;
            Ok(c)
        };
        tokio::time::timeout(within, connecting).await.ok()
    }

    /// Connects with extra request headers (such as `Authorization`) and reads `hello`.
    pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> Client {
        let ws = upgrade(request(url, headers)).await;
        let mut c = Client::over(ws, url);
        c.read_hello().await;
        c
    }

    /// Connects without reading anything (a refused resume sends an `error`, not `hello`).
    pub async fn connect_raw(url: &str) -> Client {
        let ws = upgrade(request(url, &[])).await;
        Client::over(ws, url)
    }

    /// Resumes on `url` (which carries `resume` and `last_seq`): the `hello` must be numbered
    /// `last_seq + 1`, and the client keeps numbering its own messages after `seq`.
    pub async fn connect_resumed(url: &str, last_seq: u64, seq: u64) -> Client {
        let mut c = Client::connect_raw(url).await;
        c.last_seq = last_seq;
        c.seq = seq;
        c.read_hello().await;
        assert_eq!(c.hello.payload["resumed"], true, "{:?}", c.hello);
        c
    }

    fn over(ws: Socket, url: &str) -> Client {
        Client {
            ws,
            seq: 0,
            last_seq: 0,
            session: String::new(),
            hello: no_hello(),
            url: url.to_owned(),
        }
    }

    async fn read_hello(&mut self) {
        let hello = self.recv().await;
        assert_eq!(hello.kind, "hello", "first frame is hello: {hello:?}");
        self.session = hello.payload["session"]
            .as_str()
            .expect("hello names the session")
            .to_owned();
        self.hello = hello;
    }

    /// The URL that resumes this session after `last_seq`. `base_with_token` may be a URL this
    /// function made (such as a resumed client's `url()`): its old resume parameters are dropped.
    pub fn resume_url(&self, base_with_token: &str) -> String {
        let base = base_with_token
            .split("&resume=")
            .next()
            .unwrap_or(base_with_token);
        format!("{base}&resume={}&last_seq={}", self.session, self.last_seq)
    }

    /// The URL this client connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next client seq, for messages written by hand.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// An envelope with the next seq and the current time.
    pub fn msg(&mut self, kind: &str) -> ClientEnvelope {
        let seq = self.next_seq();
        ClientEnvelope::new(kind, seq, unix_ms())
    }

    /// Sends `env` as one text frame.
    pub async fn send(&mut self, env: ClientEnvelope) {
        self.send_text(&env.to_json()).await;
    }

    /// Sends `text` as one text frame, whatever it holds.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next server message, checking `seq` rises by exactly one.
    pub async fn recv(&mut self) -> ServerEnvelope {
        self.recv_text().await.1
    }

    /// The next server message as sent (for byte-exact checks) and decoded, checking `seq` rises
    /// by exactly one.
    pub async fn recv_text(&mut self) -> (String, ServerEnvelope) {
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
                        assert_eq!(
                            env.seq,
                            self.last_seq + 1,
                            "no gap or repeat in seq: {text}"
                        );
                        self.last_seq = env.seq;
                    }
                    return (text.as_str().to_owned(), env);
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

    /// The next message, which must be an `error` with `code` and a message.
    pub async fn expect_error(&mut self, code: &str) -> ServerEnvelope {
        let env = self.expect("error").await;
        assert_eq!(env.payload["code"], code, "{env:?}");
        assert!(
            env.payload["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "an error explains itself: {env:?}"
        );
        env
    }

    /// Joins `room` as `peer`; the `joined` answer.
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
        assert_eq!(
            next.kind, "pong",
            "expected nothing before pong, got {next:?}"
        );
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

/// A WebSocket upgrade request for `url` with extra `headers`.
pub(crate) fn request(url: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = url.into_client_request().expect("a WebSocket URL");
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
            .expect("a header name");
        request
            .headers_mut()
            .insert(name, v.parse().expect("header value"));
    }
    request
}

/// The socket `request` upgrades to, in time.
pub(crate) async fn upgrade(request: Request) -> Socket {
    let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .expect("connect");
    ws
}

/// The status and JSON body of the HTTP answer that refuses a WebSocket upgrade of `url` with
/// `headers`; the upgrade must be refused.
pub async fn ws_refusal(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let connecting = tokio_tungstenite::connect_async(request(url, headers));
    match tokio::time::timeout(DEADLINE, connecting)
        .await
        .expect("answer in time")
    {
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

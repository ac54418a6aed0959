//! Test harness: a real server on an ephemeral port and real WebSocket clients.
//!
//! Waiting is bounded (every receive has a deadline) and silence is proven with a barrier, not a
//! sleep: a client that sends `ping` and gets `pong` as the very next message had nothing queued
//! before it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchboard::{
    auth::{Claims, Signer},
    config::Config,
    secret::{Secret, SecretSource},
    server::{self, Running},
};
use switchboard_core::Stats;
use switchboard_protocol::{ClientEnvelope, Role, ServerEnvelope};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Message, client::IntoClientRequest, handshake::client::Request, protocol::CloseFrame,
    },
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

    /// Starts an HTTP (SSE or long-poll) session with `token`; its id.
    pub async fn http_session(&self, token: &str) -> String {
        let created: Value = reqwest::Client::new()
            .post(self.http("/v1/sessions"))
            .bearer_auth(token)
            .timeout(DEADLINE)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["session"]
            .as_str()
            .expect("a session id")
            .to_owned()
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
        }
    }

    async fn read_hello(&mut self) {
        let hello = self.recv().await;
        assert_eq!(hello.kind, "hello", "first frame is hello: {hello:?}");
        self.session = hello.payload["session"].as_str().unwrap().to_owned();
        self.hello = hello;
    }

    /// The URL that resumes this session after `last_seq`. `base_with_token` may be a URL this
    /// function made (such as a resumed client's `url()`): its old resume parameters are dropped.
    pub async fn resume_url(&self, base_with_token: &str) -> String {
        let base = base_with_token
            .split("&resume=")
            .next()
            .unwrap_or(base_with_token);
        format!("{base}&resume={}&last_seq={}", self.session, self.last_seq)
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
fn request(url: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        request
            .headers_mut()
            .insert(name, v.parse().expect("header value"));
    }
    request
}

async fn upgrade(request: Request) -> Socket {
    let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .expect("connect");
    ws
}

/// Polls `cond` on the server's hub counts until it holds (bounded by [`DEADLINE`]); for waiting
/// on something that must happen, never for proving that something did not.
pub async fn wait_for_stats(server: &TestServer, what: &str, cond: impl Fn(&Stats) -> bool) {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let stats = server.running().node().hub().stats();
        if cond(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{what}: still {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Status and JSON body of a plain HTTP GET, bounded by [`DEADLINE`].
pub async fn http_get(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url).timeout(DEADLINE);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("HTTP answer");
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// The HTTP status and JSON body of a plain (non-upgrade-completing) request to `/v1/ws`.
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

/// A WebSocket client on a bare TCP stream that does only what it is told. Unlike [`Client`] it
/// never answers a ping by itself, so once the test stops calling it, the server's heartbeat sees
/// a dead peer; and it can read what the server sent even after the server hung up.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    pub seq: u64,
}

impl RawClient {
    /// Upgrades `GET path_and_query` (such as `/v1/ws?token=...`) by hand.
    pub async fn connect(addr: SocketAddr, path_and_query: &str) -> RawClient {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
                .await
                .expect("handshake in time")
                .expect("read");
            assert_ne!(n, 0, "connection closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        buf.drain(..end);
        RawClient {
            stream,
            buf,
            seq: 0,
        }
    }

    /// Sends one masked text frame.
    pub async fn send_text(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        let payload = text.as_bytes();
        let mut frame = vec![0x81];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("write");
    }

    /// Sends `env` with the next seq.
    pub async fn send(&mut self, env: ClientEnvelope) {
        self.send_text(&env.to_json()).await;
    }

    /// An envelope with the next seq and the current time.
    pub fn msg(&mut self, kind: &str) -> ClientEnvelope {
        self.seq += 1;
        ClientEnvelope::new(kind, self.seq, unix_ms())
    }

    /// The next frame as (opcode, payload); `None` at the end of the stream.
    pub async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((opcode, payload));
            }
            use tokio::io::AsyncReadExt;
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
                .await
                .expect("a frame in time")
                .expect("read");
            if n == 0 {
                assert!(self.buf.is_empty(), "stream ended inside a frame");
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next text message, skipping pings and pongs.
    pub async fn recv(&mut self) -> ServerEnvelope {
        loop {
            match self.next_frame().await.expect("stream open") {
                (0x1, payload) => return serde_json::from_slice(&payload).expect("valid JSON"),
                (0x9 | 0xA, _) => continue,
                (opcode, payload) => panic!("expected text, got opcode {opcode}: {payload:?}"),
            }
        }
    }

    /// The next message, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> ServerEnvelope {
        let env = self.recv().await;
        assert_eq!(env.kind, kind, "expected {kind}, got {env:?}");
        env
    }

    /// Skips pings and pongs up to the close frame; returns its code (`None` if the stream ended
    /// without one).
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next_frame().await? {
                (0x8, payload) => {
                    return payload
                        .get(..2)
                        .map(|code| u16::from_be_bytes([code[0], code[1]]));
                }
                (0x9 | 0xA, _) => continue,
                (opcode, payload) => panic!(
                    "expected close, got opcode {opcode}: {}",
                    String::from_utf8_lossy(&payload)
                ),
            }
        }
    }
}

/// One unmasked server frame at the start of `buf`: (opcode, payload, bytes used).
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b0 & 0x80, 0x80, "fragmented server frames are not expected");
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let (len, header) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().unwrap();
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let payload = buf.get(header..header + len)?.to_vec();
    Some((b0 & 0x0f, payload, header + len))
}

/// The real `switchboard serve` binary on an ephemeral port, logging JSON; its stderr is collected
/// line by line (and so never fills up and blocks the server).
pub struct Process {
    child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
    pub addr: String,
}

impl Process {
    /// Starts the binary with `env` on top of the test secret. With `open_files`, it runs under
    /// that open-files limit (soft and hard, set by the shell's `ulimit -n` before `exec`).
    pub async fn start(env: &[(&str, &str)], open_files: Option<u64>) -> Process {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let data_dir = std::env::temp_dir().join(format!(
            "sb-process-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let binary = env!("CARGO_BIN_EXE_switchboard");
        let serve = ["serve", "--listen", "127.0.0.1:0", "--log-format", "json"];
        let mut command = match open_files {
            None => tokio::process::Command::new(binary),
            Some(n) => {
                let mut sh = tokio::process::Command::new("sh");
                sh.args([
                    "-c",
                    &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                    binary,
                ]);
                sh
            }
        };
        let mut child = command
            .args(serve)
            .env("SWITCHBOARD_SECRET", SECRET)
            .env("SWITCHBOARD_DATA_DIR", &data_dir)
            .env_remove("SWITCHBOARD_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("switchboard binary starts");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let collected = lines.clone();
        let reader = tokio::spawn(async move {
            let mut addr_tx = Some(addr_tx);
            let mut stderr = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = stderr.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == "server.listening"
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                collected.lock().push(line);
            }
        });
        let addr = tokio::time::timeout(DEADLINE, addr_rx)
            .await
            .expect("the server logs its address in time")
            .expect("a server.listening line");
        Process {
            child,
            lines,
            reader,
            addr,
        }
    }

    /// The server's process id (the shell `exec`s it, so it keeps the child's id).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait status").is_none()
    }

    /// The JSON log lines so far whose `event` is `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.lines
            .lock()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// SIGTERM, then every line the process wrote until it exited.
    pub async fn stop(mut self) -> Vec<String> {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("graceful exit in time")
            .unwrap();
        assert!(exit.success(), "{exit:?}");
        tokio::time::timeout(DEADLINE, self.reader)
            .await
            .expect("stderr closes")
            .unwrap();
        std::mem::take(&mut *self.lines.lock())
    }
}

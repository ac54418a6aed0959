//! HTTPS and wss:// on the server's one listener (`tls_cert`, `tls_key`), with certificates made
//! here: every transport over TLS, and certificates renewed under running calls, by the files
//! changing and by SIGHUP.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use switchboard_protocol::Role;
use switchboard_testkit::{DEADLINE, TestServer, tokens, unix_ms};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

/// The name the certificates are for, and the address tests reach the server at.
const HOST: &str = "127.0.0.1";

/// A self-signed certificate and its key, as PEM, and the certificate as DER.
struct Cert {
    pem: String,
    key: String,
    der: CertificateDer<'static>,
}

fn cert() -> Cert {
    let made = rcgen::generate_simple_self_signed(vec![HOST.to_owned(), "localhost".to_owned()])
        .expect("a certificate");
    Cert {
        pem: made.cert.pem(),
        key: made.signing_key.serialize_pem(),
        der: made.cert.der().clone(),
    }
}

/// Where one test keeps its certificate files.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(test: &str, cert: &Cert) -> Files {
        let dir = std::env::temp_dir().join(format!("sb-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = Files { dir };
        files.write(cert);
        files
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// Replaces both files as a renewal does: written aside, then renamed into place.
    fn write(&self, cert: &Cert) {
        for (path, text) in [(self.cert(), &cert.pem), (self.key(), &cert.key)] {
            let aside = path.with_extension("new");
            std::fs::write(&aside, text).unwrap();
            std::fs::rename(&aside, &path).unwrap();
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn server(files: &Files, reload_ms: u64) -> TestServer {
    let (cert, key) = (files.cert(), files.key());
    TestServer::start_with(move |config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.tls_reload_ms = reload_ms;
    })
    .await
}

/// A client TLS configuration trusting `certs`.
fn trusting(certs: &[&Cert]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `server`, verified against `config`'s roots.
async fn tls(server: &TestServer, config: &Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from(HOST).unwrap();
    let connecting = TlsConnector::from(config.clone()).connect(name, tcp);
    tokio::time::timeout(DEADLINE, connecting)
        .await
        .expect("a handshake in time")
        .expect("a verified handshake")
}

/// The certificate a new connection to `server` is given.
async fn presented(
    server: &TestServer,
    config: &Arc<rustls::ClientConfig>,
) -> CertificateDer<'static> {
    let stream = tls(server, config).await;
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// A resume over wss:// replays what a lost transport missed in batches of many messages at once,
/// each sealed into TLS records in one write: larger than rustls's default 64 KiB of unsent
/// records, which once broke the connection.
#[tokio::test]
async fn a_replay_larger_than_a_tls_buffer_arrives_whole() {
    let cert = cert();
    let files = Files::new("replay", &cert);
    let server = server(&files, 60_000).await;
    let config = trusting(&[&cert]);
    let mut alice = Wss::connect(&server, &config, "alice").await;
    alice.join("alice").await;
    let mut bob = Wss::connect(&server, &config, "bob").await;
    let hello = bob.recv_hello_payload.take().unwrap();
    bob.join("bob").await;
    alice.expect("peer_joined").await;
    let last_seq = 2; // hello, joined
    // Bob's transport goes; 40 messages of 3 KB are queued for him (sent to the dead socket or
    // not, a resume from `last_seq` replays them all).
    drop(bob);
    let text = "x".repeat(3000);
    for n in 0..40 {
        alice.send("message", json!({"text": text, "n": n})).await;
    }
    // A barrier: the hub has handled all 40 once alice's ping is answered.
    alice.seq += 1;
    let ping = json!({"type": "ping", "seq": alice.seq, "ts": unix_ms()}).to_string();
    alice.ws.send(Message::Text(ping.into())).await.unwrap();
    alice.expect("pong").await;
    let session = hello["session"].as_str().unwrap();
    let token = tokens::mint("bob", "r", Role::Guest);
    let url = format!(
        "wss://{HOST}:{}/v1/ws?token={token}&resume={session}&last_seq={last_seq}",
        server.addr.port()
    );
    let stream = tls(&server, &config).await;
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("upgraded");
    let mut bob = Wss {
        ws,
        seq: 10,
        recv_hello_payload: None,
    };
    assert_eq!(bob.expect("hello").await["payload"]["resumed"], true);
    for n in 0..40 {
        let message = bob.expect("message").await;
        assert_eq!(message["payload"]["n"], n);
    }
}

/// A wss:// client: its socket and the last client `seq` it used.
struct Wss {
    ws: WebSocketStream<TlsStream<TcpStream>>,
    seq: u64,
    /// The `hello`'s payload, until taken.
    recv_hello_payload: Option<Value>,
}

impl Wss {
    /// Connects as `user` and reads the `hello`.
    async fn connect(server: &TestServer, config: &Arc<rustls::ClientConfig>, user: &str) -> Wss {
        let token = tokens::mint(user, "r", Role::Guest);
        let url = format!("wss://{HOST}:{}/v1/ws?token={token}", server.addr.port());
        let stream = tls(server, config).await;
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("upgraded");
        let mut c = Wss {
            ws,
            seq: 0,
            recv_hello_payload: None,
        };
        let hello = c.expect("hello").await;
        c.recv_hello_payload = Some(hello["payload"].clone());
        c
    }

    async fn send(&mut self, kind: &str, payload: Value) {
        self.seq += 1;
        let text = envelope(kind, self.seq, payload).to_string();
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next server message (pings aside).
    async fn recv(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(DEADLINE, self.ws.next()).await;
            match next
                .expect("a message in time")
                .expect("open")
                .expect("a frame")
            {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn expect(&mut self, kind: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    async fn join(&mut self, peer: &str) {
        self.send("join", json!({"peer": peer})).await;
        self.expect("joined").await;
    }
}

/// A client message in room `r`.
fn envelope(kind: &str, seq: u64, payload: Value) -> Value {
    json!({"type": kind, "room": "r", "seq": seq, "ts": unix_ms(), "payload": payload})
}

/// An HTTPS client trusting `cert`.
fn https(cert: &Cert) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem.as_bytes()).unwrap())
        .timeout(DEADLINE)
        .build()
        .unwrap()
}

/// An HTTP session (for SSE or long-poll) of `user`: its id and token.
async fn http_session(http: &reqwest::Client, base: &str, user: &str) -> (String, String) {
    let token = tokens::mint(user, "r", Role::Guest);
    let created: Value = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (created["session"].as_str().unwrap().to_owned(), token)
}

/// Posts one client message of an HTTP session; it must be accepted.
async fn post(http: &reqwest::Client, base: &str, session: &(String, String), message: Value) {
    let answer: Value = http
        .post(format!("{base}/v1/sessions/{}/messages", session.0))
        .bearer_auth(&session.1)
        .body(message.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["accepted"], true, "{answer}");
}

#[tokio::test]
async fn every_transport_works_over_tls() {
    let cert = cert();
    let files = Files::new("transports", &cert);
    let server = server(&files, 60_000).await;
    let config = trusting(&[&cert]);
    let base = format!("https://{HOST}:{}", server.addr.port());
    let http = https(&cert);

    let mut ws = Wss::connect(&server, &config, "alice").await;
    ws.join("alice").await;

    // SSE: a stream of events, read as it comes.
    let sse = http_session(&http, &base, "bob").await;
    post(
        &http,
        &base,
        &sse,
        envelope("join", 1, json!({"peer": "bob"})),
    )
    .await;
    let events = http
        .get(format!(
            "{base}/v1/sessions/{}/events?token={}&last_seq=1",
            sse.0, sse.1
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut events = events;

    // Long-poll.
    let poll = http_session(&http, &base, "carol").await;
    post(
        &http,
        &base,
        &poll,
        envelope("join", 1, json!({"peer": "carol"})),
    )
    .await;

    // A message from the wss:// client reaches both HTTP clients.
    ws.send("message", json!({"text": "over wss"})).await;
    let mut seen = String::new();
    let reading = async {
        while !seen.contains("over wss") {
            let chunk = events.chunk().await.unwrap().expect("the stream goes on");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(DEADLINE, reading)
        .await
        .expect("the SSE event in time");
    let deadline = Instant::now() + DEADLINE;
    let mut after = 1;
    loop {
        let batch: Vec<Value> = http
            .get(format!("{base}/v1/sessions/{}/poll?after={after}", poll.0))
            .bearer_auth(&poll.1)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if batch.iter().any(|m| m["payload"]["text"] == "over wss") {
            break;
        }
        after = batch
            .iter()
            .filter_map(|m| m["seq"].as_u64())
            .max()
            .unwrap_or(after);
        assert!(
            Instant::now() < deadline,
            "the long-poll client never got the message"
        );
    }

    // And one posted over HTTPS reaches the wss:// client.
    post(
        &http,
        &base,
        &sse,
        envelope("message", 2, json!({"text": "over https"})),
    )
    .await;
    loop {
        let message = ws.recv().await;
        if message["type"] == "message" && message["payload"]["text"] == "over https" {
            break;
        }
    }

    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://{HOST}:{}/healthz", server.addr.port()))
        .timeout(DEADLINE)
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered on the TLS listener");
    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
}

/// Waits until new connections are given `expected`.
async fn until_presented(server: &TestServer, config: &Arc<rustls::ClientConfig>, expected: &Cert) {
    let deadline = Instant::now() + DEADLINE;
    while presented(server, config).await != expected.der {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two calls over wss:// go on through a renewal: `renew` replaces the certificate.
async fn calls_survive(test: &str, reload_ms: u64, renew: impl AsyncFnOnce(&Files, &Cert)) {
    let (old, new) = (cert(), cert());
    let files = Files::new(test, &old);
    let server = server(&files, reload_ms).await;
    let config = trusting(&[&old, &new]);
    assert_eq!(presented(&server, &config).await, old.der);
    let mut alice = Wss::connect(&server, &config, "alice").await;
    alice.join("alice").await;
    let mut bob = Wss::connect(&server, &config, "bob").await;
    bob.join("bob").await;
    alice.expect("peer_joined").await;

    renew(&files, &new).await;
    until_presented(&server, &config, &new).await;

    // The calls made before go on, both ways.
    alice.send("message", json!({"text": "still here"})).await;
    assert_eq!(bob.expect("message").await["payload"]["text"], "still here");
    bob.send("message", json!({"text": "me too"})).await;
    assert_eq!(alice.expect("message").await["payload"]["text"], "me too");
    // A new one is made with the new certificate.
    let mut carol = Wss::connect(&server, &config, "carol").await;
    carol.join("carol").await;
    alice.expect("peer_joined").await;
}

#[tokio::test]
async fn changed_files_are_served_to_new_connections_and_calls_go_on() {
    calls_survive("files", 50, async |files, new| {
        // Garbage first, as a renewal caught half-way: the old certificate stays.
        std::fs::write(files.cert(), "not a certificate").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        files.write(new);
    })
    .await;
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    // The files are looked at once an hour: only the signal can bring the new certificate in time.
    calls_survive("sighup", 3_600_000, async |files, new| {
        files.write(new);
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP)
            .unwrap();
    })
    .await;
}

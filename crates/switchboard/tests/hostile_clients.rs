//! Clients that try to hold the server's resources without using them: request heads sent a byte
//! at a time (slowloris), connections that send nothing, bodies that never finish, and a client
//! that pings without ever reading. Each is cut off or kept to a bound (the deadlines of
//! `crates/switchboard/src/edge/http.rs`, the pong rule of the WebSocket sender) while everyone
//! else is served.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::Value;
use switchboard::config::Config;
use switchboard_protocol::Role;
use switchboard_testkit::{
    DEADLINE, Process, TestServer, metrics,
    raw::{self, RawClient},
    tokens,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The deadlines the HTTP tests run with: short, so a test takes seconds, and long enough that a
/// loaded machine does not cut off a request that is on time.
const HEADER_TIMEOUT: Duration = Duration::from_millis(800);
const BODY_TIMEOUT: Duration = Duration::from_millis(800);

/// How late past its deadline a cut-off may come on a loaded machine.
const SLACK: Duration = Duration::from_secs(4);

fn short_deadlines(c: &mut Config) {
    c.header_timeout_ms = HEADER_TIMEOUT.as_millis() as u64;
    c.body_timeout_ms = BODY_TIMEOUT.as_millis() as u64;
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection; what it sent, and when it closed. A reset
/// counts as closed.
async fn read_to_close(stream: &mut TcpStream) -> (String, Instant) {
    let mut bytes = Vec::new();
    let result = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes)).await;
    assert!(result.is_ok(), "the server closes the connection in time");
    (String::from_utf8_lossy(&bytes).into_owned(), Instant::now())
}

/// The JSON body of a raw HTTP/1.1 answer.
fn body(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("a JSON body ({e}): {answer}"))
}

#[tokio::test]
async fn heads_sent_a_byte_at_a_time_are_cut_off_while_others_are_served() {
    let server = TestServer::start_with(short_deadlines).await;
    let addr = server.addr;
    // Twenty slow clients, each sending a complete request line and then one header byte every
    // 100 ms, which would never end.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = connect(addr).await;
                let started = Instant::now();
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .unwrap();
                let mut sent = 0usize;
                let mut buf = [0u8; 256];
                loop {
                    tokio::select! {
                        read = stream.read(&mut buf) => {
                            // Closed (0 or a reset): nothing may have been answered.
                            assert!(read.unwrap_or(0) == 0, "an unfinished head is not answered");
                            return (started.elapsed(), sent);
                        }
                        () = tokio::time::sleep(Duration::from_millis(100)) => {
                            if stream.write_all(b"X").await.is_err() {
                                return (started.elapsed(), sent);
                            }
                            sent += 1;
                            assert!(started.elapsed() < HEADER_TIMEOUT + SLACK, "never cut off");
                        }
                    }
                }
            })
        })
        .collect();
    // Meanwhile a normal client is served at once.
    tokio::time::sleep(HEADER_TIMEOUT / 2).await;
    let (status, _) = switchboard_testkit::http::http_get(&server.http("/healthz"), &[]).await;
    assert_eq!(status, 200);
    for task in slow {
        let (lasted, sent) = task.await.unwrap();
        assert!(
            lasted >= HEADER_TIMEOUT,
            "cut off by the deadline, not before"
        );
        assert!(sent >= 3, "the client kept sending while it was held");
    }
    let scrape = metrics::scrape(&server.http("/metrics")).await;
    assert_eq!(scrape.get("http_timeouts_total{reason=\"header\"}"), 20.0);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_and_an_idle_kept_alive_one_are_closed() {
    let server = TestServer::start_with(short_deadlines).await;
    let mut silent = connect(server.addr).await;
    let opened = Instant::now();
    let (sent, closed) = read_to_close(&mut silent).await;
    assert_eq!(sent, "", "nothing is answered to nothing");
    let lasted = closed - opened;
    assert!(lasted >= HEADER_TIMEOUT && lasted < HEADER_TIMEOUT + SLACK);

    // A kept-alive connection waiting for its next request is on the same clock.
    let mut idle = connect(server.addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let (_, closed) = read_to_close(&mut idle).await;
    assert!(closed - answered >= HEADER_TIMEOUT - Duration::from_millis(50));
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_408_and_nothing_of_it_is_handled() {
    let server = TestServer::start_with(short_deadlines).await;
    let token = server.token("alice", "r1", Role::Guest);
    let session = server.http_session(&token).await;

    // The direct path: a batch of messages whose body stops halfway.
    let join = format!(
        r#"[{{"type":"join","seq":2,"ts":{},"room":"r1","peer":"a"}}]"#,
        switchboard_testkit::unix_ms()
    );
    let mut stream = connect(server.addr).await;
    let head = format!(
        "POST /v1/sessions/{session}/messages HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        join.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&join.as_bytes()[..join.len() / 2])
        .await
        .unwrap();
    let sent_at = Instant::now();
    let (answer, closed) = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    assert_eq!(body(&answer)["error"]["code"], "request_timeout");
    let lasted = closed - sent_at;
    assert!(lasted >= BODY_TIMEOUT - Duration::from_millis(50) && lasted < BODY_TIMEOUT + SLACK);
    // The join was not handled: the session is in no room.
    server.wait_for("no member", |s| s.members == 0).await;

    // The router's path (the control API), with a body dripped a byte at a time: the deadline
    // is for the whole body, not for the gap between two bytes.
    let account = r#"{"username":"mallory","password":"a long enough password"}"#;
    let mut stream = connect(server.addr).await;
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        account.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for byte in account.as_bytes() {
        tokio::select! {
            read = stream.read_to_end(&mut answer) => {
                read.ok();
                break;
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stream.write_all(&[*byte]).await.is_err() {
                    stream.read_to_end(&mut answer).await.ok();
                    break;
                }
            }
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(body(&answer)["error"]["code"], "request_timeout");
    assert!(started.elapsed() < BODY_TIMEOUT + SLACK);
    let scrape = metrics::scrape(&server.http("/metrics")).await;
    assert_eq!(scrape.get("http_timeouts_total{reason=\"body\"}"), 2.0);

    // A body that arrives in time is served as ever, on the same session.
    let answer = reqwest::Client::new()
        .post(server.http(&format!("/v1/sessions/{session}/messages")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(join)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    server.wait_for("alice joined", |s| s.members == 1).await;
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_client_that_pings_without_reading_costs_one_pong_not_one_per_ping() {
    let server = Process::start(env!("CARGO_BIN_EXE_switchboard"), &[], None).await;
    let addr: SocketAddr = server.addr.parse().unwrap();
    let token = tokens::mint("pinger", "r1", Role::Guest);
    let mut pinger = RawClient::connect(addr, &format!("/v1/ws?token={token}")).await;
    let before = rss_kib(server.pid());
    // 300,000 pings with the largest payload a ping may carry: 38 MiB of pongs if each were
    // kept for a socket that is never read, far past what the kernel's buffers take.
    let payload = [b'p'; 125];
    let ping = raw::frame(true, raw::PING, &payload, true);
    let batch: Vec<u8> = ping.repeat(1000);
    for _ in 0..300 {
        pinger.write(&batch).await;
    }
    // The server has read everything once a message sent behind the pings is answered.
    let mut probe = switchboard_testkit::Client::connect(&format!(
        "ws://{addr}/v1/ws?token={}",
        tokens::mint("probe", "r1", Role::Guest)
    ))
    .await;
    probe.join("r1", "probe").await;
    let grown_kib = rss_kib(server.pid()).saturating_sub(before);
    assert!(
        grown_kib < 8 * 1024,
        "the server grew by {grown_kib} KiB holding pongs for a client that does not read"
    );
    // The pinger is still served: once it reads, it gets its hello, then pongs.
    assert_eq!(pinger.next_frame().await.unwrap().0, raw::TEXT);
    let (opcode, payload) = pinger.next_frame().await.unwrap();
    assert_eq!((opcode, payload), (raw::PONG, [b'p'; 125].to_vec()));
    // The pongs the kernel took are still unread: a client that does not read holds up the
    // shutdown's drain (up to `shutdown_grace_ms`), so this one goes first.
    drop(pinger);
    server.stop().await;
}

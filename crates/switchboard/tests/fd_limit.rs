//! At the open-files limit: the real binary runs under a low `RLIMIT_NOFILE` while clients open
//! WebSocket sessions until one is refused. Every refusal must come at once (a 503 before the
//! upgrade, or, when the descriptors ran out first, a 503 or a closed connection at accept), the
//! sessions already open must keep relaying, and the process must stay up without spinning while
//! refused clients keep trying.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_protocol::Role;
use switchboard_testkit::{
    Client, Process, eventually, metrics, process::NO_ADDRESS_BUDGETS, tokens,
};
use tokio_tungstenite::tungstenite::Error;

/// The server's open-files limit: room for a few dozen sessions.
const OPEN_FILES: u64 = 128;

/// How long a refusal may take. A 503 over loopback takes a millisecond; the rest is slack for a
/// loaded machine. A client left in the accept queue would wait until its own timeout.
const PROMPT: Duration = Duration::from_secs(3);

enum Outcome {
    Opened(Box<Client>),
    /// HTTP 503 `unavailable`.
    Refused,
    /// The connection ended without an HTTP answer.
    Closed(String),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Opened(_) => "opened".into(),
            Outcome::Refused => "503".into(),
            Outcome::Closed(e) => format!("closed: {e}"),
        }
    }
}

/// The real binary under the open-files limit, with `env` and no per-address budgets (every client
/// comes from 127.0.0.1).
async fn start(env: &[(&str, &str)]) -> Process {
    let env = [&NO_ADDRESS_BUDGETS[..], env].concat();
    Process::start(env!("CARGO_BIN_EXE_switchboard"), &env, Some(OPEN_FILES)).await
}

/// Session `i` (its own user; two sessions to a room) tries to connect.
async fn attempt(server: &Process, i: usize) -> Outcome {
    let token = tokens::mint(&format!("user-{i}"), &room(i), Role::Guest);
    let url = format!("ws://{}/v1/ws?token={token}", server.addr);
    match Client::try_connect(&url, PROMPT).await {
        None => panic!("session {i}: no answer within {PROMPT:?}"),
        Some(Ok(client)) => Outcome::Opened(Box::new(client)),
        Some(Err(Error::Http(response))) => {
            assert_eq!(response.status(), 503, "session {i}: {response:?}");
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON error body");
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            Outcome::Refused
        }
        Some(Err(e)) => Outcome::Closed(e.to_string()),
    }
}

fn room(i: usize) -> String {
    format!("r{}", i / 2)
}

/// Opens sessions, two to a room, until one is refused: the open ones and that refusal.
async fn fill(server: &Process) -> (Vec<Client>, Outcome) {
    let mut sessions: Vec<Client> = Vec::new();
    for i in 0..4 * OPEN_FILES as usize {
        match attempt(server, i).await {
            Outcome::Opened(mut client) => {
                client.join(&room(i), ["a", "b"][i % 2]).await;
                if i % 2 == 1 {
                    sessions[i - 1].expect("peer_joined").await;
                }
                sessions.push(*client);
            }
            refused => return (sessions, refused),
        }
    }
    panic!("no refusal under an open-files limit of {OPEN_FILES}");
}

/// Each complete pair relays a message.
async fn relay(sessions: &mut [Client]) {
    for (pair, members) in sessions.chunks_exact_mut(2).enumerate() {
        let [a, b] = members else { unreachable!() };
        let message = a
            .msg("message")
            .room(&format!("r{pair}"))
            .to("b")
            .payload(json!({"text": "still here"}));
        a.send(message).await;
        assert_eq!(b.expect("message").await.payload["text"], "still here");
    }
}

/// CPU time (user + system) the process used so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process running");
    // The command name may hold spaces; utime and stime are the 12th and 13th fields after it.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_nanos(ticks * 1_000_000_000 / rustix::param::clock_ticks_per_second())
}

/// New sessions keep trying for about a second, one every 20 ms: each must be refused at once
/// (`refused` says what counts), and the server must use far less CPU meanwhile than the whole
/// core a spinning accept loop burns. Returns how many tried.
async fn keep_refusing(
    server: &Process,
    first: usize,
    refused: impl Fn(&Outcome) -> bool,
) -> usize {
    let pid = server.pid();
    let (cpu_before, started) = (cpu_time(pid), Instant::now());
    let mut i = first;
    while started.elapsed() < Duration::from_secs(1) {
        let outcome = attempt(server, i).await;
        assert!(refused(&outcome), "session {i}: {}", outcome.describe());
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cpu, wall) = (cpu_time(pid) - cpu_before, started.elapsed());
    assert!(
        cpu < wall / 3,
        "the server used {cpu:?} of CPU in {wall:?} while refusing {} sessions",
        i - first
    );
    i - first
}

#[tokio::test]
async fn with_the_default_cap_sessions_past_it_get_a_prompt_503() {
    let mut server = start(&[]).await;
    let cap = switchboard::open_files::connection_cap(OPEN_FILES);
    let limit = server.events("server.fd_limit");
    assert_eq!(limit.len(), 1, "{limit:?}");
    assert_eq!(limit[0]["level"], "INFO");
    assert_eq!(limit[0]["max_connections"], cap);

    let (mut sessions, refusal) = fill(&server).await;
    assert!(
        matches!(refusal, Outcome::Refused),
        "{}",
        refusal.describe()
    );
    assert_eq!(sessions.len(), cap);
    let is_503 = |o: &Outcome| matches!(o, Outcome::Refused);
    keep_refusing(&server, cap + 1, is_503).await;
    relay(&mut sessions).await;
    assert!(server.running());
    drop(sessions);
    server.stop().await;
}

#[tokio::test]
async fn with_a_cap_above_the_limit_accept_turns_connections_away_promptly() {
    let mut server = start(&[("SWITCHBOARD_MAX_CONNECTIONS", "100000")]).await;
    let limit = server.events("server.fd_limit");
    assert_eq!(limit.len(), 1, "{limit:?}");
    assert_eq!(
        limit[0]["level"], "WARN",
        "a cap above the limit is a warning"
    );

    let (mut sessions, _) = fill(&server).await;
    let opened = sessions.len();
    // The server holds one descriptor per session and a dozen of its own: it ran out of them.
    assert!(opened > OPEN_FILES as usize - 32, "only {opened} sessions");
    let at_accept = |o: &Outcome| matches!(o, Outcome::Refused | Outcome::Closed(_));
    let tried = keep_refusing(&server, opened + 1, at_accept).await;
    relay(&mut sessions).await;
    assert!(server.running());
    assert!(!server.events("server.fd_exhausted").is_empty());

    // Closing a pair makes room for a scrape, which counts every connection turned away.
    sessions.truncate(opened - 2);
    let refused = loop_until_scraped(&server).await;
    assert!(
        refused > tried as f64,
        "{refused} counted, {tried} turned away"
    );
    drop(sessions);
    server.stop().await;
}

/// `connections_refused_total{reason="fd_limit"}`, scraped as soon as the server has a descriptor
/// for the scrape again.
async fn loop_until_scraped(server: &Process) -> f64 {
    let url = format!("http://{}/metrics", server.addr);
    let text = eventually("a scrape", || async {
        let response = reqwest::Client::new()
            .get(&url)
            .timeout(PROMPT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200 => response.text().await.map_err(|e| e.to_string()),
            status => Err(format!("status {status}")),
        }
    })
    .await;
    let key = "connections_refused_total{reason=\"fd_limit\"}";
    *metrics::samples(&text)
        .get(key)
        .unwrap_or_else(|| panic!("no fd_limit refusals in\n{text}"))
}

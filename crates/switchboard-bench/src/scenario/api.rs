//! `api`: the control API (`docs/api.md`) at a fixed request rate, one operation per run: room
//! creation, share-code redemption, a cheap authenticated read (`GET /v1/rooms`), or login.
//!
//! Open loop and free of coordinated omission: a schedule thread makes one due time every
//! `1 / rate` seconds and queues it; keep-alive connections take due times from the queue and send
//! one request each, one at a time per connection. Latency runs from the request's due time to its
//! whole answer, so a server that falls behind is charged the time a request waited in the queue
//! too, not only its time on the wire. The queue is bounded ([`BACKLOG`]): a due time that finds
//! it full is skipped and counted, and a run with skipped requests did not sustain its rate.
//!
//! Only requests due inside the measured period count, each once its answer is in: the drain
//! after the period waits for them up to [`DRAIN`], and counts what is still unanswered then
//! (queued or in flight) as failed, so a server that stops answering cannot end a run with a
//! latency that leaves them out.
//!
//! Set-up makes what the operation needs through the API itself: the account (registered, or
//! taken over if the username exists), an access token, and for redemption `codes` share codes of
//! unlimited uses spread over `rooms` rooms. The server's per-address budgets for logins,
//! registrations and share codes must be raised for a run (`scripts/bench-api` does it with
//! `SWITCHBOARD_API__*`), or it answers 429 and the report counts them by status.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{
    h1::HttpConn,
    net::Sources,
    stats::{CpuMeter, Latencies, Percentiles, load_average, now_ns},
};

/// Due times queued for the connections at most; see the module documentation.
const BACKLOG: usize = 10_000;

/// Longest wait for one answer; a request still unanswered then counts as a timeout and its
/// connection is opened again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after the schedule ends the connections may take to answer what is queued and in
/// flight; what is still unanswered then counts as failed.
const DRAIN: Duration = Duration::from_secs(20);

/// Which request a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `POST /v1/rooms {}`: a new stored room each time.
    Rooms,
    /// `POST /v1/invites/{code}/redeem {}`, over the codes in turn.
    Redeem,
    /// `GET /v1/rooms?limit=20`: a cheap authenticated read.
    Read,
    /// `POST /v1/auth/login`: argon2id by design, tens of ms of CPU each.
    Login,
}

impl Op {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Rooms => "rooms",
            Op::Redeem => "redeem",
            Op::Read => "read",
            Op::Login => "login",
        }
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct ApiParams {
    /// The server.
    pub addr: SocketAddr,
    /// Where connections come from.
    pub sources: Sources,
    /// The request.
    pub op: Op,
    /// Requests per second offered.
    pub rate: f64,
    /// Keep-alive connections, each one request at a time: the most requests in flight.
    pub connections: usize,
    /// Share codes made for `redeem`.
    pub codes: usize,
    /// Rooms the codes are spread over.
    pub rooms: usize,
    /// The account's username (registered when missing).
    pub username: String,
    /// Its password.
    pub password: String,
    /// Traffic before measuring.
    pub warmup: Duration,
    /// Measured period.
    pub duration: Duration,
    /// The server's process, for its CPU time.
    pub server_pid: Option<u32>,
    /// The run's name in the report (a backend, a build).
    pub label: String,
}

/// What one run measured: one JSON line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiReport {
    /// See [`ApiParams::label`].
    pub label: String,
    /// See [`Op::name`].
    pub op: String,
    /// Offered requests per second.
    pub rate: f64,
    /// See [`ApiParams::connections`].
    pub connections: usize,
    /// Wall seconds of the measured period.
    pub duration_s: f64,
    /// Requests due in the measured period that got an answer, by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Of those, 2xx answers per second.
    pub ok_per_s: f64,
    /// Requests due in the measured period that failed without an answer (timeout, broken
    /// connection).
    pub failed: u64,
    /// Due times skipped because the queue was full (the rate was not sustained).
    pub skipped: u64,
    /// Latency of every answered request due in the measured period, from its due time (µs).
    pub latency: Option<Percentiles>,
    /// Its 95th percentile (µs).
    pub p95_us: Option<f64>,
    /// The server's CPU use over the period (1.0 = one core), when its pid was given.
    pub server_cpu_util: Option<f64>,
    /// This generator's CPU use over the period.
    pub client_cpu_util: Option<f64>,
    /// The machine's load average at the start.
    pub load_avg: Option<String>,
    /// A few failures' texts.
    pub error_samples: Vec<String>,
}

/// What the connections' tasks share.
struct Run {
    /// Due times waiting for a connection.
    queue: tokio::sync::Mutex<mpsc::Receiver<u64>>,
    /// `[start, end)` of the measured period in [`now_ns`] time; `end` is 0 until it is known.
    window: (AtomicU64, AtomicU64),
    latency: Latencies,
    statuses: Mutex<BTreeMap<u16, u64>>,
    failed: AtomicU64,
    skipped: AtomicU64,
    /// Requests that count, taken from the queue and not yet answered or failed.
    in_flight: AtomicU64,
    error_samples: Mutex<Vec<String>>,
}

impl Run {
    /// Whether a request due at `due` counts.
    fn counts(&self, due: u64) -> bool {
        in_window(
            due,
            self.window.0.load(Ordering::Relaxed),
            self.window.1.load(Ordering::Relaxed),
        )
    }

    fn note(&self, what: String) {
        let mut samples = self.error_samples.lock();
        if samples.len() < 8 {
            samples.push(what);
        }
    }
}

/// Whether `due` falls in `[start, end)`; `start` 0 means measuring has not begun and `end` 0
/// that it has not ended.
fn in_window(due: u64, start: u64, end: u64) -> bool {
    start != 0 && due >= start && (end == 0 || due < end)
}

/// What a request needs beside its kind.
struct Fixture {
    access_token: String,
    codes: Vec<String>,
    login_body: String,
}

/// Runs one operation at the offered rate and reports what it measured; `Err` when set-up failed.
pub async fn run(p: &ApiParams) -> Result<ApiReport, String> {
    let fixture = Arc::new(set_up(p).await?);
    let (tx, rx) = mpsc::channel(BACKLOG);
    let run = Arc::new(Run {
        queue: tokio::sync::Mutex::new(rx),
        window: (AtomicU64::new(0), AtomicU64::new(0)),
        latency: Latencies::default(),
        statuses: Mutex::new(BTreeMap::new()),
        failed: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        error_samples: Mutex::new(Vec::new()),
    });
    let mut workers = Vec::with_capacity(p.connections);
    for i in 0..p.connections.max(1) {
        let (run, fixture, src, addr, op) =
            (run.clone(), fixture.clone(), p.sources.next(), p.addr, p.op);
        workers.push(tokio::spawn(async move {
            connection(&run, &fixture, src, addr, op, i).await;
        }));
    }
    let interval = (1e9 / p.rate.max(0.001)) as u64;
    let start = now_ns();
    let total = p.warmup + p.duration;
    let schedule = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || schedule(&tx, start, interval, total, &run))
    };
    tokio::time::sleep(p.warmup).await;
    let server = CpuMeter::start(p.server_pid);
    let client = CpuMeter::start(Some(std::process::id()));
    run.window.0.store(now_ns(), Ordering::Relaxed);
    tokio::time::sleep(p.duration).await;
    run.window.1.store(now_ns(), Ordering::Relaxed);
    let (server_cpu, wall) = server.stop();
    let (client_cpu, _) = client.stop();
    // The schedule ends at `total` and closes the queue; the connections finish what is queued
    // within DRAIN, and what they have not answered by then failed.
    let _ = schedule.await;
    let drained = tokio::time::Instant::now() + DRAIN;
    let mut late = Vec::new();
    for mut worker in workers {
        if tokio::time::timeout_at(drained, &mut worker).await.is_err() {
            worker.abort();
            late.push(worker);
        }
    }
    for worker in late {
        let _ = worker.await;
    }
    let mut unanswered = run.in_flight.load(Ordering::Relaxed);
    let mut queue = run.queue.lock().await;
    while let Ok(due) = queue.try_recv() {
        unanswered += u64::from(run.counts(due));
    }
    if unanswered > 0 {
        run.failed.fetch_add(unanswered, Ordering::Relaxed);
        run.note(format!(
            "{unanswered} requests unanswered at the end of the drain"
        ));
    }
    let statuses = run.statuses.lock().clone();
    let ok: u64 = statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    Ok(ApiReport {
        label: p.label.clone(),
        op: p.op.name().to_owned(),
        rate: p.rate,
        connections: p.connections,
        duration_s: wall,
        ok_per_s: ok as f64 / wall,
        statuses,
        failed: run.failed.load(Ordering::Relaxed),
        skipped: run.skipped.load(Ordering::Relaxed),
        latency: run.latency.percentiles(),
        p95_us: run.latency.quantile(0.95),
        server_cpu_util: server_cpu.map(|c| c / wall),
        client_cpu_util: client_cpu.map(|c| c / wall),
        load_avg: load_average(),
        error_samples: run.error_samples.lock().clone(),
    })
}

/// Queues a due time every `interval` ns from `start` for `total`, on a thread of its own so the
/// connections' work never delays the schedule.
fn schedule(tx: &mpsc::Sender<u64>, start: u64, interval: u64, total: Duration, run: &Run) {
    let end = start + total.as_nanos() as u64;
    let mut due = start;
    while due < end {
        let now = now_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
            continue;
        }
        match tx.try_send(due) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if run.counts(due) {
                    run.skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
        due += interval;
    }
}

/// One keep-alive connection: takes due times until the queue closes, sends one request each.
async fn connection(
    run: &Run,
    fixture: &Fixture,
    src: Ipv4Addr,
    addr: SocketAddr,
    op: Op,
    index: usize,
) {
    let mut conn: Option<HttpConn> = None;
    let mut sent = index;
    loop {
        let Some(due) = run.queue.lock().await.recv().await else {
            return;
        };
        let counts = run.counts(due);
        if counts {
            run.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(HttpConn::open(src, addr).await?),
            };
            request(c, fixture, op, sent).await
        })
        .await;
        sent += 1;
        let end = now_ns();
        if counts {
            run.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        match answer {
            Ok(Ok(status)) => {
                if counts {
                    run.latency.record(end.saturating_sub(due));
                    *run.statuses.lock().entry(status).or_default() += 1;
                }
            }
            Ok(Err(e)) => {
                conn = None;
                if counts {
                    run.failed.fetch_add(1, Ordering::Relaxed);
                    run.note(e);
                }
            }
            Err(_) => {
                conn = None;
                if counts {
                    run.failed.fetch_add(1, Ordering::Relaxed);
                    run.note("request timed out".into());
                }
            }
        }
    }
}

/// Sends request number `n` of `op` and reads its answer; its status.
async fn request(c: &mut HttpConn, fixture: &Fixture, op: Op, n: usize) -> Result<u16, String> {
    let (status, _) = match op {
        Op::Rooms => {
            c.call("POST", "/v1/rooms", &fixture.access_token, Some("{}"))
                .await?
        }
        Op::Read => {
            c.call("GET", "/v1/rooms?limit=20", &fixture.access_token, None)
                .await?
        }
        Op::Redeem => {
            let code = &fixture.codes[n % fixture.codes.len()];
            let path = format!("/v1/invites/{code}/redeem");
            c.call("POST", &path, "", Some("{}")).await?
        }
        Op::Login => {
            c.call("POST", "/v1/auth/login", "", Some(&fixture.login_body))
                .await?
        }
    };
    Ok(status)
}

#[derive(Deserialize)]
struct LoginAnswer {
    access_token: String,
}

#[derive(Deserialize)]
struct RoomAnswer {
    id: String,
}

#[derive(Deserialize)]
struct CodeAnswer {
    code: String,
}

/// Calls the API once during set-up; the body of a 2xx answer, or what went wrong.
async fn setup_call(
    c: &mut HttpConn,
    method: &str,
    path: &str,
    bearer: &str,
    body: &str,
) -> Result<Vec<u8>, String> {
    let (status, answer) =
        tokio::time::timeout(REQUEST_TIMEOUT, c.call(method, path, bearer, Some(body)))
            .await
            .map_err(|_| format!("{method} {path}: timed out"))??;
    if !(200..300).contains(&status) {
        return Err(format!(
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    Ok(answer)
}

/// Makes the account, its access token and the share codes; see the module documentation.
async fn set_up(p: &ApiParams) -> Result<Fixture, String> {
    let mut c = HttpConn::open(p.sources.next(), p.addr).await?;
    let credentials =
        serde_json::json!({"username": p.username, "password": p.password}).to_string();
    let registered = setup_call(&mut c, "POST", "/v1/accounts", "", &credentials).await;
    if let Err(e) = registered
        && !e.contains(" 409 ")
    {
        return Err(e);
    }
    let login = setup_call(&mut c, "POST", "/v1/auth/login", "", &credentials).await?;
    let login: LoginAnswer =
        serde_json::from_slice(&login).map_err(|e| format!("login answer: {e}"))?;
    let mut codes = Vec::new();
    if p.op == Op::Redeem {
        let token = &login.access_token;
        let mut rooms = Vec::with_capacity(p.rooms.max(1));
        for _ in 0..p.rooms.max(1) {
            let room = setup_call(&mut c, "POST", "/v1/rooms", token, "{}").await?;
            let room: RoomAnswer =
                serde_json::from_slice(&room).map_err(|e| format!("room answer: {e}"))?;
            rooms.push(room.id);
        }
        // Unlimited uses for the longest allowed time: no code runs out during a run.
        let unlimited = r#"{"max_uses":null,"expires_in":604800}"#;
        for i in 0..p.codes.max(1) {
            let path = format!("/v1/rooms/{}/invites", rooms[i % rooms.len()]);
            let code = setup_call(&mut c, "POST", &path, token, unlimited).await?;
            let code: CodeAnswer =
                serde_json::from_slice(&code).map_err(|e| format!("code answer: {e}"))?;
            codes.push(code.code);
        }
    }
    Ok(Fixture {
        access_token: login.access_token,
        codes,
        login_body: credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_due_in_the_measured_period_count() {
        // Not started: nothing counts, whatever the due time.
        assert!(!in_window(5, 0, 0));
        // Started, not ended: from the start on.
        assert!(!in_window(9, 10, 0));
        assert!(in_window(10, 10, 0));
        assert!(in_window(1_000, 10, 0));
        // Ended: the end itself is outside.
        assert!(in_window(19, 10, 20));
        assert!(!in_window(20, 10, 20));
    }
}

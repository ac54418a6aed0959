//! The workloads. Each sets up its clients, runs a warm-up, measures for a fixed time, then
//! drains and closes; every wait is bounded, so a run ends even against a server that stops
//! answering.

pub mod api;
mod churn;
mod connect;
mod fanout;
mod pacer;
mod relay;
pub mod sampler;
pub mod sfu;

pub use pacer::Pacing;
pub use sfu::SfuParams;

use std::{
    ops::ControlFlow,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use futures_util::{StreamExt, stream};

use crate::{
    net::ConnectError,
    proto::{Client, Endpoint, Incoming, Target, Transport},
    report::Report,
    stats::{CpuMeter, MachineMeter, Phase, Shared, load_average, now_ns},
};

/// What a scenario's loop does with what it has no use of its own for: a server `error` counts as
/// one, anything else is ignored, and a connection that ended stops the loop.
fn unhandled(shared: &Shared, incoming: crate::net::Result<Incoming>) -> ControlFlow<()> {
    match incoming {
        Ok(Incoming::Error(e)) => shared.error(e),
        Ok(_) => {}
        Err(e) => {
            shared.connection_ended(e);
            return ControlFlow::Break(());
        }
    }
    ControlFlow::Continue(())
}

/// Options every scenario shares.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The server's name in the report (default: the target's).
    pub label: Option<String>,
    /// The server's process, for CPU time and memory (nothing is sampled without it).
    pub server_pid: Option<u32>,
    /// Traffic before measuring.
    pub warmup: Duration,
    /// Measured period.
    pub duration: Duration,
    /// Connections being set up at once.
    pub concurrency: usize,
    /// Soak: read the server (`server_pid`, and `/metrics` at `metrics`) this often during the
    /// run ([`sampler`]).
    pub sample_every: Option<Duration>,
    /// The server's `/metrics` address, for the samples' task and session counts.
    pub metrics: Option<std::net::SocketAddr>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            label: None,
            server_pid: None,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
            concurrency: 64,
            sample_every: None,
            metrics: None,
        }
    }
}

/// `relay`: pairs in their own rooms, ping-pong.
#[derive(Debug, Clone)]
pub struct RelayParams {
    /// Pairs.
    pub pairs: usize,
    /// Messages in flight per pair (closed loop).
    pub window: usize,
    /// Payload bytes.
    pub size: usize,
    /// Open loop: offered relays per second over all pairs (a round trip is two relays).
    pub rate: Option<f64>,
    /// Open loop: how the sends are timed.
    pub pacing: Pacing,
}

/// `fanout`: rooms of `room_size`, one member broadcasting to the others.
#[derive(Debug, Clone)]
pub struct FanoutParams {
    /// Rooms.
    pub rooms: usize,
    /// Members per room (one broadcaster).
    pub room_size: usize,
    /// Broadcasts in flight per room.
    pub window: usize,
    /// Payload bytes.
    pub size: usize,
}

/// `connect`: many idle sessions joined to rooms of two.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    /// Sessions to open.
    pub sessions: usize,
    /// Idle time after the ramp before memory is read.
    pub settle: Duration,
    /// Pairs whose sessions are probed with a round trip after the ramp.
    pub probes: usize,
}

/// `churn`: sessions joining and leaving while pairs relay.
#[derive(Debug, Clone)]
pub struct ChurnParams {
    /// The relaying pairs.
    pub relay: RelayParams,
    /// Join/leave operations started per second.
    pub churn_rate: f64,
    /// Rooms the churning sessions join (shared, so members see each other come and go).
    pub churn_rooms: usize,
}

/// One workload with its parameters.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// See [`RelayParams`].
    Relay(RelayParams),
    /// See [`FanoutParams`].
    Fanout(FanoutParams),
    /// See [`ConnectParams`].
    Connect(ConnectParams),
    /// See [`ChurnParams`].
    Churn(ChurnParams),
    /// See [`SfuParams`].
    Sfu(SfuParams),
}

/// Runs `scenario` against `ep` and reports what it measured.
pub async fn run(ep: &Endpoint, opts: &RunOptions, scenario: &Scenario) -> Report {
    let mut report = Report {
        label: opts
            .label
            .clone()
            .unwrap_or_else(|| ep.target.name().to_owned()),
        target: ep.target.name().to_owned(),
        transport: ep.transport.name().to_owned(),
        load_avg: load_average(),
        warmup_s: opts.warmup.as_secs_f64(),
        ack_every: (ep.target == Target::Switchboard && ep.transport != Transport::Poll)
            .then_some(ep.ack_every),
        ..Report::default()
    };
    let shared = Shared::new();
    let sampling = opts.sample_every.zip(opts.server_pid).map(|(every, pid)| {
        let (shared, metrics) = (shared.clone(), opts.metrics);
        tokio::spawn(async move { sampler::run(pid, metrics, every, &shared).await })
    });
    match scenario {
        Scenario::Relay(p) => {
            report.scenario = "relay".into();
            relay::run(ep, opts, p, None, &shared, &mut report).await;
        }
        Scenario::Fanout(p) => {
            report.scenario = "fanout".into();
            fanout::run(ep, opts, p, &shared, &mut report).await;
        }
        Scenario::Connect(p) => {
            report.scenario = "connect".into();
            connect::run(ep, opts, p, &shared, &mut report).await;
        }
        Scenario::Churn(p) => {
            report.scenario = "churn".into();
            relay::run(ep, opts, &p.relay, Some(p), &shared, &mut report).await;
        }
        Scenario::Sfu(p) => {
            report.scenario = "sfu".into();
            sfu::run(ep, opts, p, &shared, &mut report).await;
        }
    }
    if let Some(sampling) = sampling {
        shared.stop.cancel();
        report.samples = sampling.await.unwrap_or_default();
        report.drift = sampler::drift(&report.samples);
    }
    report.errors = shared.errors.load(Ordering::Relaxed);
    report.error_samples = shared.error_samples.lock().clone();
    report.source_addresses = ep.sources.addresses_used();
    report
}

/// Warm-up, then the measured period (server and client CPU sampled around it), then drain.
async fn measure(shared: &Shared, opts: &RunOptions, report: &mut Report) {
    shared.set_phase(Phase::Warmup);
    tokio::time::sleep(opts.warmup).await;
    shared.latency.reset();
    shared.lag.reset();
    let server = CpuMeter::start(opts.server_pid);
    let client = CpuMeter::start(Some(std::process::id()));
    let machine = MachineMeter::start();
    shared.set_phase(Phase::Measure);
    tokio::time::sleep(opts.duration).await;
    shared.set_phase(Phase::Drain);
    let (server_cpu, wall) = server.stop();
    let (client_cpu, _) = client.stop();
    let all = machine.stop();
    report.duration_s = wall;
    report.relays = shared.relays.load(Ordering::Relaxed);
    report.sent = shared.sent.load(Ordering::Relaxed);
    report.skipped_sends = shared.skipped.load(Ordering::Relaxed);
    report.relays_per_s = report.relays as f64 / wall;
    report.server_cpu_s = server_cpu;
    report.server_cpu_util = server_cpu.map(|c| c / wall);
    report.relays_per_server_cpu_s = server_cpu
        .filter(|&c| c > 0.0)
        .map(|c| report.relays as f64 / c);
    report.client_cpu_util = client_cpu.map(|c| c / wall);
    // Everything else the machine did meanwhile: other people's builds skew a run.
    if let (Some(all), Some(server), Some(client)) = (all, server_cpu, client_cpu)
        && opts.server_pid != Some(std::process::id())
    {
        report.other_cpu_util = Some(((all - server - client) / wall).max(0.0));
    }
}

/// Counts a failed set-up by kind.
fn count_failure(report: &mut Report, shared: &Shared, e: &ConnectError) {
    match e {
        ConnectError::Refused(_) => report.refused += 1,
        ConnectError::Timeout => report.timeouts += 1,
        ConnectError::Failed(_) => report.failed += 1,
    }
    let mut samples = shared.error_samples.lock();
    if samples.len() < 8 {
        samples.push(format!("set-up: {e}"));
    }
}

/// Connects two clients into room `pair` and finds how the first addresses the second.
async fn connect_pair(
    ep: &Endpoint,
    kind: &str,
    i: usize,
    shared: &Shared,
) -> Result<(Client, Client, String), ConnectError> {
    let room = ep.room(kind, i);
    let (mut a, ready_a) = Client::connect(ep, &room, &ep.peer(&format!("{kind}a"), i)).await?;
    // With a peer node, the second member is there: the pair's relays cross nodes.
    let b_addr = ep.peer_addr.unwrap_or(ep.addr);
    let (mut b, ready_b) =
        Client::connect_at(ep, b_addr, &room, &ep.peer(&format!("{kind}b"), i)).await?;
    shared.join.record(ready_a.as_nanos() as u64);
    shared.join.record(ready_b.as_nanos() as u64);
    let deadline = ep.connect_timeout;
    let to_b = match ep.target {
        Target::Matchbox => tokio::time::timeout(deadline, a.wait_new_peers(1))
            .await
            .map_err(|_| ConnectError::Timeout)??
            .remove(0),
        Target::Bare => {
            // The relay registers a connection just after its handshake: one frame each way
            // proves both are in the room.
            sync_bare(&mut b, &mut a, deadline).await?;
            sync_bare(&mut a, &mut b, deadline).await?;
            String::new()
        }
        _ => b.me.clone(),
    };
    Ok((a, b, to_b))
}

/// Sends a marker frame (`t` = 0, ignored by the workloads) from `from` until `to` sees one.
async fn sync_bare(
    from: &mut Client,
    to: &mut Client,
    deadline: Duration,
) -> Result<(), ConnectError> {
    let marker = crate::proto::body(0, 16);
    let started = tokio::time::Instant::now();
    while started.elapsed() < deadline {
        from.send_to("", &marker).await?;
        let got = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                if let crate::proto::Incoming::Data { t: 0, .. } = to.recv().await? {
                    return Ok::<_, String>(());
                }
            }
        })
        .await;
        match got {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => return Err(ConnectError::Failed(e)),
            Err(_) => continue,
        }
    }
    Err(ConnectError::Timeout)
}

/// Sets up `n` units with at most `concurrency` at once; failures are counted, not fatal.
async fn set_up<T, F, Fut>(
    n: usize,
    concurrency: usize,
    report: &mut Report,
    shared: &Shared,
    make: F,
) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, ConnectError>>,
{
    let results: Vec<Result<T, ConnectError>> = stream::iter(0..n)
        .map(make)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut ok = Vec::with_capacity(n);
    for r in results {
        match r {
            Ok(unit) => ok.push(unit),
            Err(e) => count_failure(report, shared, &e),
        }
    }
    ok
}

/// Closes clients politely, many at once, within a bounded time.
async fn close_all(clients: Vec<Client>) {
    let closing = stream::iter(clients)
        .map(Client::close)
        .buffer_unordered(256)
        .collect::<Vec<()>>();
    let _ = tokio::time::timeout(Duration::from_secs(10), closing).await;
}

/// Waits for tasks to finish on their own for up to `grace`, then stops the rest.
async fn join_all<T>(
    shared: &Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<T>>,
    grace: Duration,
) -> Vec<T> {
    let mut done = Vec::with_capacity(tasks.len());
    let deadline = tokio::time::Instant::now() + grace;
    let mut pending = Vec::new();
    for task in tasks {
        if task.is_finished() {
            if let Ok(v) = task.await {
                done.push(v);
            }
        } else {
            pending.push(task);
        }
    }
    for mut task in pending {
        tokio::select! {
            r = &mut task => {
                if let Ok(v) = r {
                    done.push(v);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                shared.stop.cancel();
                match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
                    Ok(Ok(v)) => done.push(v),
                    Ok(Err(_)) => {}
                    Err(_) => task.abort(),
                }
            }
        }
    }
    done
}

/// Nanoseconds since `t` on the shared clock.
fn since(t: u64) -> u64 {
    now_ns().saturating_sub(t)
}

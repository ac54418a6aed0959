//! `connect`: `sessions` idle sessions, joined to rooms of two, opened `concurrency` at a time
//! from source addresses 127.0.0.2, 127.0.0.3, ... The server's resident memory is read before
//! the ramp and after it (once the sessions have idled for `settle`), giving memory per session,
//! and its CPU time over that idle window, giving what idle sessions cost at rest;
//! the time from the first byte to the confirmed join is the join latency. Afterwards a sample of
//! pairs does one round trip each, to show that existing sessions still work (also when the ramp
//! hit the server's limits).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use tokio::sync::watch;

use crate::{
    net::ConnectError,
    proto::{Client, Endpoint, Incoming, Target, body},
    report::Report,
    stats::{CpuSample, Shared, open_fds, rss_kib},
};

use super::{ConnectParams, RunOptions, close_all, count_failure, join_all};

/// What setting up one pair gave: the task holding its open sessions, how many opened, and
/// why the others did not.
type Outcome = (
    Option<tokio::task::JoinHandle<Vec<Client>>>,
    u64,
    Vec<ConnectError>,
);

#[derive(Default)]
struct Probes {
    /// Sampled pairs with both sessions open, waiting for the probe.
    armed: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

pub(super) async fn run(
    ep: &Endpoint,
    opts: &RunOptions,
    p: &ConnectParams,
    shared: &Arc<Shared>,
    report: &mut Report,
) {
    report.sessions = Some(p.sessions);
    let pid = opts.server_pid;
    report.rss_before_kib = pid.and_then(rss_kib);
    let pairs = p.sessions.div_ceil(2);
    let stride = (pairs / p.probes.max(1)).max(1);
    let (probe_tx, probe_rx) = watch::channel(false);
    let probes = Arc::new(Probes::default());
    let ramp = Instant::now();
    let outcomes: Vec<Outcome> = stream::iter(0..pairs)
        .map(|i| {
            let probe = (i % stride == 0).then(|| probe_rx.clone());
            let probes = probes.clone();
            let shared = shared.clone();
            async move {
                let room = ep.room("c", i);
                let (mut a, ready) = match Client::connect(ep, &room, &ep.peer("ca", i)).await {
                    Ok(a) => a,
                    Err(e) => return (None, 0, vec![e]),
                };
                shared.join.record(ready.as_nanos() as u64);
                let b = match Client::connect(ep, &room, &ep.peer("cb", i)).await {
                    Ok((b, ready)) => {
                        shared.join.record(ready.as_nanos() as u64);
                        b
                    }
                    Err(e) => {
                        // The first session is open and counts: keep it.
                        let h = tokio::spawn(hold(a, None, shared, None, probes));
                        return (Some(h), 1, vec![e]);
                    }
                };
                // matchbox tells the first member the second's id, once: take it now.
                let to_b = match ep.target {
                    Target::Matchbox => {
                        match tokio::time::timeout(ep.connect_timeout, a.wait_new_peers(1)).await {
                            Ok(Ok(mut ids)) => ids.remove(0),
                            _ => String::new(),
                        }
                    }
                    _ => b.me.clone(),
                };
                let h = tokio::spawn(hold(a, Some((b, to_b)), shared, probe, probes));
                (Some(h), 2, Vec::new())
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    report.ramp_s = Some(ramp.elapsed().as_secs_f64());
    let mut holders = Vec::with_capacity(outcomes.len());
    for (holder, opened, errors) in outcomes {
        report.sessions_ok += opened;
        for e in &errors {
            count_failure(report, shared, e);
        }
        if let Some(h) = holder {
            holders.push(h);
        }
    }
    report.join_us = shared.join.percentiles();
    // What the server spends on sessions that do nothing: their heartbeats, and any timer work.
    let idle_from = pid.and_then(CpuSample::read);
    let settling = Instant::now();
    tokio::time::sleep(p.settle).await;
    if let Some(from) = idle_from
        && let Some(to) = pid.and_then(CpuSample::read)
    {
        let window = settling.elapsed().as_secs_f64();
        report.idle_cpu_pct = Some(to.since(&from).as_secs_f64() / window * 100.0);
    }
    report.rss_after_kib = pid.and_then(rss_kib);
    report.server_fds = pid.and_then(open_fds);
    if let (Some(before), Some(after)) = (report.rss_before_kib, report.rss_after_kib)
        && report.sessions_ok > 0
    {
        report.bytes_per_session =
            Some(after.saturating_sub(before) as f64 * 1024.0 / report.sessions_ok as f64);
    }
    // Round trips through a sample of the existing sessions.
    let _ = probe_tx.send(true);
    let expected = probes.armed.load(Ordering::Relaxed);
    let probing = Instant::now();
    while probes.ok.load(Ordering::Relaxed) + probes.failed.load(Ordering::Relaxed) < expected
        && probing.elapsed() < Duration::from_secs(15)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.probes_ok = Some(probes.ok.load(Ordering::Relaxed));
    report.probes_failed = Some(expected.saturating_sub(probes.ok.load(Ordering::Relaxed)));
    shared.stop.cancel();
    let clients: Vec<Client> = join_all(shared, holders, Duration::from_secs(5))
        .await
        .into_iter()
        .flatten()
        .collect();
    close_all(clients).await;
}

/// Keeps sessions open and read (so heartbeats are answered) until the stop; a sampled pair
/// does one round trip when the probe fires.
async fn hold(
    mut a: Client,
    mut b: Option<(Client, String)>,
    shared: Arc<Shared>,
    mut probe: Option<watch::Receiver<bool>>,
    probes: Arc<Probes>,
) -> Vec<Client> {
    if b.is_none() {
        probe = None;
    }
    if probe.is_some() {
        probes.armed.fetch_add(1, Ordering::Relaxed);
    }
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => break,
            r = a.recv() => if let Err(e) = r {
                shared.error(format!("idle session lost: {e}"));
                break;
            },
            r = async {
                match b.as_mut() {
                    Some((b, _)) => b.recv().await,
                    None => std::future::pending().await,
                }
            } => if let Err(e) = r {
                shared.error(format!("idle session lost: {e}"));
                break;
            },
            changed = async {
                match probe.as_mut() {
                    Some(p) => p.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                probe = None;
                if let (Ok(()), Some((b, to_b))) = (changed, b.as_mut()) {
                    let counter = match round_trip(&mut a, b, to_b).await {
                        Ok(()) => &probes.ok,
                        Err(e) => {
                            shared.error(format!("probe: {e}"));
                            &probes.failed
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let mut clients = vec![a];
    clients.extend(b.map(|(b, _)| b));
    clients
}

/// One message from the first client to the second and back, within 5 s.
async fn round_trip(a: &mut Client, b: &mut Client, to_b: &str) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(5), async {
        a.send_to(to_b, &body(1, 64)).await?;
        let from = loop {
            if let Incoming::Data { from, t: 1 } = b.recv().await? {
                break from;
            }
        };
        b.send_to(from.as_deref().unwrap_or(""), &body(2, 64))
            .await?;
        loop {
            if let Incoming::Data { t: 2, .. } = a.recv().await? {
                return Ok(());
            }
        }
    })
    .await
    .map_err(|_| "probe timed out".to_owned())?
}

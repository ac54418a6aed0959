//! `relay` (and the relaying half of `churn`): pairs, each in its own room. The first member of a
//! pair sends, the second echoes every message straight back; the round trip is timed from the
//! send. Every message is its own write. Closed loop: `window` messages in flight per pair. Open
//! loop: each pair sends on a fixed schedule whatever the server does, on tokio's timer or evenly
//! apart ([`Pacing`]); how late each send left after it was due is reported too (`send_lag_us`),
//! so a server that stalls the sender (a full socket) cannot hide it.

use std::{
    ops::ControlFlow,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::sync::mpsc;

use crate::{
    proto::{Client, Endpoint, Incoming, body},
    report::Report,
    stats::{Shared, now_ns},
};

use super::{
    ChurnParams, RelayParams, RunOptions, close_all, connect_pair, join_all, measure,
    pacer::{Pacer, Pacing, Schedule},
    set_up, since, unhandled,
};

/// Open loop: at most this many messages outstanding per pair; later sends are skipped (and
/// counted) rather than queued without bound.
const MAX_OUTSTANDING: usize = 10_000;

pub(super) async fn run(
    ep: &Endpoint,
    opts: &RunOptions,
    p: &RelayParams,
    churn: Option<&ChurnParams>,
    shared: &Arc<Shared>,
    report: &mut Report,
) {
    report.pairs = Some(p.pairs);
    report.window = Some(p.window);
    report.size = Some(p.size);
    report.rate = p.rate;
    report.pacing = p.rate.map(|_| p.pacing);
    report.latency_kind = Some("rtt".into());
    let pairs = set_up(p.pairs, opts.concurrency, report, shared, |i| {
        connect_pair(ep, "p", i, shared)
    })
    .await;
    report.sessions_ok = 2 * pairs.len() as u64;
    if pairs.is_empty() {
        return;
    }
    let count = pairs.len();
    // Open loop: each pair sends one message every `interval`; a round trip is two relays.
    let schedule = p.rate.map(|rate| Schedule {
        start: now_ns(),
        interval: ((2.0 * count as f64 / rate.max(1e-3) * 1e9) as u64).max(1),
        pairs: count,
    });
    let (pacer, paced) = match schedule {
        Some(s) if p.pacing == Pacing::Even => {
            let (pacer, paced) = Pacer::start(s, shared.clone());
            (Some(pacer), paced)
        }
        _ => (None, Vec::new()),
    };
    let mut paced = paced.into_iter();
    let mut pingers = Vec::with_capacity(count);
    let mut echoers = Vec::with_capacity(count);
    for (i, (a, b, to_b)) in pairs.into_iter().enumerate() {
        let sends = match (schedule, paced.next()) {
            (Some(_), Some(due)) => Sends::Paced(due),
            (Some(s), None) => Sends::Timer {
                next: s.first(i),
                interval: s.interval,
            },
            (None, _) => Sends::Window(p.window.max(1)),
        };
        pingers.push(tokio::spawn(pinger(a, to_b, shared.clone(), p.size, sends)));
        echoers.push(tokio::spawn(echoer(b, shared.clone(), p.size)));
    }
    let churner = churn.map(|c| {
        report.churn_rate = Some(c.churn_rate);
        let ep = ep.clone();
        let shared = shared.clone();
        let c = c.clone();
        tokio::spawn(async move { super::churn::drive(&ep, &c, &shared).await })
    });
    measure(shared, opts, report).await;
    if let Some(churner) = churner {
        report.churn_ops = churner.await.ok();
        report.join_us = shared.join.percentiles();
    }
    report.latency_us = shared.latency.percentiles();
    if p.rate.is_some() {
        report.send_lag_us = shared.lag.percentiles();
    }
    // Let messages in flight come back, then stop the echoers.
    let mut clients = join_all(shared, pingers, Duration::from_secs(3)).await;
    shared.stop.cancel();
    if let Some(pacer) = pacer {
        pacer.join().await;
    }
    clients.extend(join_all(shared, echoers, Duration::from_secs(3)).await);
    close_all(clients).await;
}

/// What makes a pinger send.
enum Sends {
    /// Closed loop: this many messages in flight; each one back sends the next.
    Window(usize),
    /// Open loop on tokio's timer: the next send is due at `next`, then every `interval`.
    Timer { next: u64, interval: u64 },
    /// Open loop, evenly apart: the pacing thread hands over each send's due time.
    Paced(mpsc::Receiver<u64>),
    /// Open loop whose pacing thread has ended (the run is winding down): nothing more to send.
    Over,
}

async fn pinger(
    mut c: Client,
    to: String,
    shared: Arc<Shared>,
    size: usize,
    mut sends: Sends,
) -> Client {
    let mut outstanding = 0usize;
    if let Sends::Window(window) = sends {
        for _ in 0..window {
            if let Err(e) = c.send_to(&to, &body(now_ns(), size)).await {
                shared.error(e);
                return c;
            }
            outstanding += 1;
        }
    }
    loop {
        let wait = match &sends {
            Sends::Timer { next, .. } if !shared.draining() => {
                Duration::from_nanos(next.saturating_sub(now_ns()))
            }
            _ => Duration::from_secs(3600),
        };
        let timed = matches!(sends, Sends::Timer { .. });
        let paced = matches!(sends, Sends::Paced(_));
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            incoming = c.recv() => match incoming {
                Ok(Incoming::Data { t, .. }) if t != 0 => {
                    outstanding = outstanding.saturating_sub(1);
                    if shared.measuring() {
                        shared.relays.fetch_add(1, Ordering::Relaxed);
                        shared.latency.record(since(t));
                    }
                    if shared.draining() {
                        if outstanding == 0 {
                            break;
                        }
                    } else if let Sends::Window(_) = sends {
                        if shared.measuring() {
                            shared.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Err(e) = c.send_to(&to, &body(now_ns(), size)).await {
                            shared.error(e);
                            break;
                        }
                        outstanding += 1;
                    }
                }
                other => {
                    if unhandled(&shared, other).is_break() {
                        break;
                    }
                }
            },
            _ = tokio::time::sleep(wait), if timed && !shared.draining() => {
                let Sends::Timer { next, interval } = &mut sends else { continue };
                let now = now_ns();
                while *next <= now {
                    let due = *next;
                    *next += *interval;
                    if send_due(&mut c, &to, &shared, size, due, &mut outstanding).await.is_break() {
                        return c;
                    }
                }
            }
            due = next_paced(&mut sends), if paced && !shared.draining() => match due {
                Some(due) => {
                    if send_due(&mut c, &to, &shared, size, due, &mut outstanding).await.is_break() {
                        return c;
                    }
                }
                None => sends = Sends::Over,
            },
        }
        if let Err(e) = c.flush_ack().await {
            shared.error(e);
            break;
        }
        if shared.draining() && outstanding == 0 {
            break;
        }
    }
    c
}

/// The next due time from the pacing thread (`None` once it has ended); never ready otherwise.
async fn next_paced(sends: &mut Sends) -> Option<u64> {
    match sends {
        Sends::Paced(due) => due.recv().await,
        _ => std::future::pending().await,
    }
}

/// An open-loop send that was due at `due`, unless too many are outstanding (then it is skipped
/// and counted). The round trip is timed from the send itself; how late it was (the timer's 1 ms
/// granularity, the pacing thread's wake-up, or a stalled socket) is reported as `send_lag_us`.
async fn send_due(
    c: &mut Client,
    to: &str,
    shared: &Shared,
    size: usize,
    due: u64,
    outstanding: &mut usize,
) -> ControlFlow<()> {
    if *outstanding >= MAX_OUTSTANDING {
        shared.skipped.fetch_add(1, Ordering::Relaxed);
        return ControlFlow::Continue(());
    }
    let sent_at = now_ns();
    if shared.measuring() {
        shared.sent.fetch_add(1, Ordering::Relaxed);
        shared.lag.record(sent_at.saturating_sub(due));
    }
    if let Err(e) = c.send_to(to, &body(sent_at, size)).await {
        shared.error(e);
        return ControlFlow::Break(());
    }
    *outstanding += 1;
    ControlFlow::Continue(())
}

async fn echoer(mut c: Client, shared: Arc<Shared>, size: usize) -> Client {
    let mut partner: Option<String> = None;
    loop {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            incoming = c.recv() => match incoming {
                Ok(Incoming::Data { from, t }) if t != 0 => {
                    shared.relayed();
                    if let Some(from) = from
                        && partner.as_deref() != Some(from.as_str())
                    {
                        partner = Some(from);
                    }
                    let to = partner.as_deref().unwrap_or("");
                    if let Err(e) = c.send_to(to, &body(t, size)).await {
                        shared.error(e);
                        break;
                    }
                    if shared.measuring() {
                        shared.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                other => {
                    if unhandled(&shared, other).is_break() {
                        break;
                    }
                }
            },
        }
        if let Err(e) = c.flush_ack().await {
            shared.error(e);
            break;
        }
    }
    c
}

//! `relay` (and the relaying half of `churn`): pairs, each in its own room. The first member of a
//! pair sends, the second echoes every message straight back; the round trip is timed from the
//! send. Closed loop: `window` messages in flight per pair. Open loop: each pair sends on a fixed
//! schedule whatever the server does; how late each send left after it was due is reported too
//! (`send_lag_us`), so a server that stalls the sender (a full socket) cannot hide it.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use crate::{
    proto::{Client, Endpoint, Incoming, body},
    report::Report,
    stats::{Shared, now_ns},
};

use super::{
    ChurnParams, RelayParams, RunOptions, close_all, connect_pair, join_all, measure, set_up,
    since, unhandled,
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
    let interval = p
        .rate
        .map(|rate| (2.0 * count as f64 / rate.max(1e-3) * 1e9) as u64);
    let start = now_ns();
    let mut pingers = Vec::with_capacity(count);
    let mut echoers = Vec::with_capacity(count);
    for (i, (a, b, to_b)) in pairs.into_iter().enumerate() {
        let schedule = interval.map(|iv| Schedule {
            next: start + iv * i as u64 / count as u64,
            interval: iv.max(1),
        });
        pingers.push(tokio::spawn(pinger(
            a,
            to_b,
            shared.clone(),
            p.window.max(1),
            p.size,
            schedule,
        )));
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
    clients.extend(join_all(shared, echoers, Duration::from_secs(3)).await);
    close_all(clients).await;
}

#[derive(Debug, Clone, Copy)]
struct Schedule {
    next: u64,
    interval: u64,
}

async fn pinger(
    mut c: Client,
    to: String,
    shared: Arc<Shared>,
    window: usize,
    size: usize,
    mut schedule: Option<Schedule>,
) -> Client {
    let mut outstanding = 0usize;
    if schedule.is_none() {
        for _ in 0..window {
            if let Err(e) = c.send_to(&to, &body(now_ns(), size)).await {
                shared.error(e);
                return c;
            }
            outstanding += 1;
        }
    }
    loop {
        let wait = match &schedule {
            Some(s) if !shared.draining() => Duration::from_nanos(s.next.saturating_sub(now_ns())),
            _ => Duration::from_secs(3600),
        };
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
                    } else if schedule.is_none() {
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
            _ = tokio::time::sleep(wait), if schedule.is_some() && !shared.draining() => {
                let Some(s) = schedule.as_mut() else { continue };
                let now = now_ns();
                while s.next <= now {
                    let due = s.next;
                    s.next += s.interval;
                    if outstanding >= MAX_OUTSTANDING {
                        shared.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let sent_at = now_ns();
                    if shared.measuring() {
                        shared.sent.fetch_add(1, Ordering::Relaxed);
                        shared.lag.record(sent_at.saturating_sub(due));
                    }
                    // The round trip is timed from the send itself; how late the send was (the
                    // timer's 1 ms granularity, or a stalled socket) is reported as `send_lag_us`.
                    if let Err(e) = c.send_to(&to, &body(sent_at, size)).await {
                        shared.error(e);
                        return c;
                    }
                    outstanding += 1;
                }
            }
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

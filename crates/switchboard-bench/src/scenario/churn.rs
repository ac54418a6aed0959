//! The churning half of `churn`: while the pairs relay, new sessions are started at a fixed rate;
//! each connects, joins one of `churn_rooms` shared rooms (so its members see it come and go),
//! leaves (switchboard: `leave`, answered with `left`) and disconnects. The join latency (first
//! byte to confirmed join) of the operations is reported next to the relay figures.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{
    proto::{Client, Endpoint, Incoming, Target},
    stats::{Phase, Shared},
};

use super::ChurnParams;

/// Operations in progress at most; beyond it a due operation is skipped (and counted).
const MAX_IN_FLIGHT: usize = 512;

/// Starts operations at `c.churn_rate` per second until the run drains; returns how many
/// completed while measuring.
pub(super) async fn drive(ep: &Endpoint, c: &ChurnParams, shared: &Arc<Shared>) -> u64 {
    let completed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(1.0 / c.churn_rate.max(1e-3));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut k: usize = 0;
    while shared.phase() < Phase::Warmup {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while !shared.draining() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.stop.cancelled() => break,
        }
        if shared.draining() {
            break;
        }
        if in_flight.load(Ordering::Relaxed) as usize >= MAX_IN_FLIGHT {
            shared.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let room = ep.room("churn", k % c.churn_rooms.max(1));
        let peer = ep.peer("ch", k);
        k += 1;
        let (ep, shared, completed, in_flight) = (
            ep.clone(),
            shared.clone(),
            completed.clone(),
            in_flight.clone(),
        );
        tasks.push(tokio::spawn(async move {
            match operation(&ep, &room, &peer, &shared).await {
                Ok(()) => {
                    if shared.measuring() {
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => shared.error(format!("churn: {e}")),
            }
            in_flight.fetch_sub(1, Ordering::Relaxed);
        }));
        tasks.retain(|t| !t.is_finished());
    }
    let finishing = futures_util::future::join_all(tasks);
    let _ = tokio::time::timeout(Duration::from_secs(10), finishing).await;
    completed.load(Ordering::Relaxed)
}

async fn operation(ep: &Endpoint, room: &str, peer: &str, shared: &Shared) -> Result<(), String> {
    let (mut client, ready) = Client::connect(ep, room, peer)
        .await
        .map_err(|e| e.to_string())?;
    if shared.measuring() {
        shared.join.record(ready.as_nanos() as u64);
    }
    if ep.target == Target::Switchboard {
        client.leave().await?;
        tokio::time::timeout(ep.connect_timeout, async {
            loop {
                match client.recv().await? {
                    Incoming::Left => return Ok::<_, String>(()),
                    Incoming::Error(e) => return Err(e),
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| "leave timed out".to_owned())??;
    }
    client.close().await;
    Ok(())
}

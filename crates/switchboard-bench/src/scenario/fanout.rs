//! `fanout`: rooms of `room_size`; one member broadcasts, each of the others receives it. The
//! latency is one way (send to each delivery); a broadcast is complete when all `room_size - 1`
//! deliveries arrived, and `window` broadcasts are in flight per room. Where the protocol has no
//! room broadcast (matchbox, PeerJS) the sender sends one message per member, as its clients must.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::sync::mpsc;

use crate::{
    net::ConnectError,
    proto::{Client, Endpoint, Incoming, Target, body},
    report::Report,
    stats::{Shared, now_ns},
};

use super::{
    FanoutParams, RunOptions, close_all, join_all, measure, set_up, since, sync_bare, unhandled,
};

struct Room {
    sender: Client,
    members: Vec<String>,
    receivers: Vec<Client>,
}

async fn connect_room(
    ep: &Endpoint,
    p: &FanoutParams,
    k: usize,
    shared: &Shared,
) -> Result<Room, ConnectError> {
    let room = ep.room("f", k);
    let (mut sender, ready) = Client::connect(ep, &room, &ep.peer(&format!("f{k}-"), 0)).await?;
    shared.join.record(ready.as_nanos() as u64);
    let mut receivers = Vec::with_capacity(p.room_size.saturating_sub(1));
    for j in 1..p.room_size.max(2) {
        let (c, ready) = Client::connect(ep, &room, &ep.peer(&format!("f{k}-"), j)).await?;
        shared.join.record(ready.as_nanos() as u64);
        receivers.push(c);
    }
    let deadline = ep.connect_timeout;
    let members = match ep.target {
        Target::Matchbox => tokio::time::timeout(deadline, sender.wait_new_peers(receivers.len()))
            .await
            .map_err(|_| ConnectError::Timeout)??,
        Target::Bare => {
            for r in &mut receivers {
                sync_bare(r, &mut sender, deadline).await?;
            }
            Vec::new()
        }
        _ => receivers.iter().map(|r| r.me.clone()).collect(),
    };
    Ok(Room {
        sender,
        members,
        receivers,
    })
}

pub(super) async fn run(
    ep: &Endpoint,
    opts: &RunOptions,
    p: &FanoutParams,
    shared: &Arc<Shared>,
    report: &mut Report,
) {
    report.rooms = Some(p.rooms);
    report.room_size = Some(p.room_size.max(2));
    report.window = Some(p.window);
    report.size = Some(p.size);
    report.latency_kind = Some("one_way".into());
    // Rooms are set up one member at a time; spread the concurrency over rooms.
    let rooms = set_up(p.rooms, opts.concurrency, report, shared, |k| {
        connect_room(ep, p, k, shared)
    })
    .await;
    report.sessions_ok = rooms.iter().map(|r| 1 + r.receivers.len() as u64).sum();
    if rooms.is_empty() {
        return;
    }
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for room in rooms {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let fan = room.receivers.len() as u64;
        for r in room.receivers {
            receivers.push(tokio::spawn(receiver(r, shared.clone(), done_tx.clone())));
        }
        senders.push(tokio::spawn(sender(
            room.sender,
            room.members,
            fan,
            shared.clone(),
            p.window.max(1),
            p.size,
            done_rx,
        )));
    }
    measure(shared, opts, report).await;
    report.latency_us = shared.latency.percentiles();
    let mut clients = join_all(shared, senders, Duration::from_secs(3)).await;
    shared.stop.cancel();
    clients.extend(join_all(shared, receivers, Duration::from_secs(3)).await);
    close_all(clients).await;
}

async fn sender(
    mut c: Client,
    members: Vec<String>,
    fan: u64,
    shared: Arc<Shared>,
    window: usize,
    size: usize,
    mut done: mpsc::UnboundedReceiver<()>,
) -> Client {
    let mut sent: u64 = 0;
    let mut delivered: u64 = 0;
    loop {
        // Keep `window` broadcasts in flight; one is complete when all its deliveries arrived.
        while !shared.draining() && sent.saturating_sub(delivered / fan.max(1)) < window as u64 {
            match c.broadcast(&members, &body(now_ns(), size)).await {
                Ok(n) => {
                    if shared.measuring() {
                        shared.sent.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    shared.error(e);
                    return c;
                }
            }
            sent += 1;
        }
        if shared.draining() && delivered >= sent * fan {
            break;
        }
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            d = done.recv() => match d {
                Some(()) => delivered += 1,
                None => break,
            },
            incoming = c.recv() => if unhandled(&shared, incoming).is_break() {
                break;
            },
        }
        if let Err(e) = c.flush_ack().await {
            shared.error(e);
            break;
        }
    }
    c
}

async fn receiver(mut c: Client, shared: Arc<Shared>, done: mpsc::UnboundedSender<()>) -> Client {
    loop {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            incoming = c.recv() => match incoming {
                Ok(Incoming::Data { t, .. }) if t != 0 => {
                    if shared.measuring() {
                        shared.relays.fetch_add(1, Ordering::Relaxed);
                        shared.latency.record(since(t));
                    }
                    let _ = done.send(());
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

//! `sfu`: rooms of synthetic WebRTC endpoints ([`crate::media::MediaPeer`], each on its own UDP
//! socket on 127.0.0.1) signaling over the real WebSocket protocol with the server's SFU (the
//! peer `sfu`). Publishers send VP8-shaped frames (and optionally Opus-sized audio) with a send
//! timestamp in each; every member receives the others' tracks (the SFU subscribes everyone by
//! default) and records each frame's one-way latency. The report gives datagrams and frames
//! forwarded per server CPU-second, the egress bandwidth, and the SFU's own count of datagrams
//! sent (`sfu_datagrams_total{direction="out"}`) beside what the clients received.
//!
//! One task per endpoint owns its socket, its signaling client and its `Rtc`; the run's stop
//! token ends them all. Sends are `try_send_to`: a full socket buffer drops the datagram, as a
//! network would, and counts it.

use std::{
    fmt::Write,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::{net::UdpSocket, time::MissedTickBehavior};

use super::{RunOptions, close_all, join_all, measure, set_up, unhandled};
use crate::{
    h1::HttpConn,
    media::{MediaPeer, Outputs},
    net::ConnectError,
    proto::{Client, Endpoint, Incoming},
    report::Report,
    stats::{Shared, now_ns},
};

/// At most this many endpoints (one UDP socket each) in a run.
pub const MAX_ENDPOINTS: usize = 200;

/// `sfu`: rooms of publishers and receive-only subscribers.
#[derive(Debug, Clone)]
pub struct SfuParams {
    /// Rooms.
    pub rooms: usize,
    /// Members per room that publish (and receive the other publishers).
    pub publishers: usize,
    /// Members per room that only receive.
    pub subscribers: usize,
    /// Video frames per second per publisher.
    pub fps: f64,
    /// Bytes of a video frame.
    pub frame_size: usize,
    /// Bytes of a keyframe.
    pub keyframe_size: usize,
    /// A keyframe this often (and whenever the SFU asks for one).
    pub keyframe_every: Duration,
    /// Publishers also send 20 ms Opus-sized audio frames.
    pub audio: bool,
}

/// What the `sfu` scenario measured beyond the common figures (frames received count as
/// `relays`, their one-way latency as `latency_us`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SfuFigures {
    /// Publishers per room.
    pub publishers: usize,
    /// Receive-only members per room.
    pub subscribers: usize,
    /// Receivers of each publisher's tracks.
    pub subscribers_per_publisher: usize,
    /// Video frames per second per publisher.
    pub fps: f64,
    /// Whether publishers sent audio too.
    pub audio: bool,
    /// Endpoints whose ICE and DTLS came up, of all set up.
    pub connected: usize,
    /// Frames the publishers wrote while measuring.
    pub frames_sent: u64,
    /// Datagrams the endpoints received while measuring (all from the SFU: media, RTCP, STUN).
    pub datagrams: u64,
    /// Those per second.
    pub datagrams_per_s: f64,
    /// Those per server CPU-second.
    pub datagrams_per_server_cpu_s: Option<f64>,
    /// Bytes of those datagrams, in Mbit/s: the SFU's egress.
    pub egress_mbit_s: f64,
    /// Datagrams the endpoints could not send (socket buffer full), over the whole run.
    pub send_drops: u64,
    /// The whole run, set-up to stop: the SFU's `sfu_datagrams_total{direction="out"}` grew by
    /// this much (counted at each send; datagrams its socket refused are not counted).
    pub sfu_datagrams_out: Option<u64>,
    /// The whole run: datagrams the endpoints received; compare with `sfu_datagrams_out`.
    pub received_datagrams: u64,
}

/// Counters every endpoint task adds to.
#[derive(Default)]
struct Counters {
    connected: AtomicUsize,
    frames_sent: AtomicU64,
    datagrams: AtomicU64,
    bytes: AtomicU64,
    all_datagrams: AtomicU64,
    send_drops: AtomicU64,
}

/// One member: its signaling session, socket and media session.
struct Member {
    client: Client,
    socket: UdpSocket,
    local: SocketAddr,
    peer: MediaPeer,
    publishes: bool,
}

/// Runs the scenario.
pub(super) async fn run(
    ep: &Endpoint,
    opts: &RunOptions,
    p: &SfuParams,
    shared: &Arc<Shared>,
    report: &mut Report,
) {
    let per_room = p.publishers + p.subscribers;
    report.rooms = Some(p.rooms);
    report.room_size = Some(per_room);
    report.size = Some(p.frame_size);
    report.latency_kind = Some("one_way".into());
    let total = p.rooms * per_room;
    if total > MAX_ENDPOINTS || per_room < 2 || p.publishers == 0 || p.fps <= 0.0 {
        shared.error(format!(
            "sfu: {} rooms of {} publishers and {} subscribers: need 1..={MAX_ENDPOINTS} \
             endpoints, 2 or more per room, a publisher and fps > 0",
            p.rooms, p.publishers, p.subscribers
        ));
        return;
    }
    let out_before = sfu_datagrams_out(opts.metrics).await;
    let counters = Arc::new(Counters::default());
    let members = set_up(total, opts.concurrency, report, shared, |i| {
        let room = ep.room("sfu", i / per_room);
        let publishes = i % per_room < p.publishers;
        let peer = ep.peer(if publishes { "pub" } else { "sub" }, i);
        async move { Member::start(ep, &room, &peer, publishes, p.audio, shared).await }
    })
    .await;
    report.sessions_ok = members.len() as u64;
    let params = Arc::new(p.clone());
    let tasks: Vec<_> = members
        .into_iter()
        .map(|m| {
            let (shared, counters, params) = (shared.clone(), counters.clone(), params.clone());
            tokio::spawn(async move { m.drive(&params, &shared, &counters).await })
        })
        .collect();
    // ICE and DTLS within the connect timeout; who did not make it is reported, not waited for.
    let deadline = Instant::now() + ep.connect_timeout;
    while counters.connected.load(Ordering::Relaxed) < tasks.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    measure(shared, opts, report).await;
    let wall = report.duration_s.max(1e-9);
    let datagrams = counters.datagrams.load(Ordering::Relaxed);
    report.latency_us = shared.latency.percentiles();
    report.join_us = shared.join.percentiles();
    shared.stop.cancel();
    let members = join_all(shared, tasks, Duration::from_secs(5)).await;
    close_all(members.into_iter().map(|m| m.client).collect()).await;
    let out_after = sfu_datagrams_out(opts.metrics).await;
    report.sfu = Some(SfuFigures {
        publishers: p.publishers,
        subscribers: p.subscribers,
        subscribers_per_publisher: per_room - 1,
        fps: p.fps,
        audio: p.audio,
        connected: counters.connected.load(Ordering::Relaxed),
        frames_sent: counters.frames_sent.load(Ordering::Relaxed),
        datagrams,
        datagrams_per_s: datagrams as f64 / wall,
        datagrams_per_server_cpu_s: (report.server_cpu_s)
            .filter(|&c| c > 0.0)
            .map(|c| datagrams as f64 / c),
        egress_mbit_s: counters.bytes.load(Ordering::Relaxed) as f64 * 8.0 / wall / 1e6,
        send_drops: counters.send_drops.load(Ordering::Relaxed),
        sfu_datagrams_out: out_before.zip(out_after).map(|(a, b)| b.saturating_sub(a)),
        received_datagrams: counters.all_datagrams.load(Ordering::Relaxed),
    });
}

impl Member {
    /// Joins `room` as `peer`, binds a socket and sends the first offer to `sfu`.
    async fn start(
        ep: &Endpoint,
        room: &str,
        peer: &str,
        publishes: bool,
        audio: bool,
        shared: &Shared,
    ) -> Result<Member, ConnectError> {
        let (mut client, ready) = Client::connect(ep, room, peer).await?;
        shared.join.record(ready.as_nanos() as u64);
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| ConnectError::Failed(format!("udp bind: {e}")))?;
        let local = socket
            .local_addr()
            .map_err(|e| ConnectError::Failed(format!("udp address: {e}")))?;
        let mut peer = MediaPeer::new(local, Instant::now()).map_err(ConnectError::Failed)?;
        let mut out = Outputs::default();
        let offer =
            (peer.offer(publishes, publishes && audio, &mut out)).map_err(ConnectError::Failed)?;
        client
            .signal("offer", "sfu", &offer)
            .await
            .map_err(ConnectError::Failed)?;
        Ok(Member {
            client,
            socket,
            local,
            peer,
            publishes,
        })
    }

    /// Signals, sends and receives until the run stops; returns itself to be closed.
    async fn drive(mut self, p: &SfuParams, shared: &Shared, counters: &Counters) -> Member {
        let mut buf = vec![0u8; 2048];
        let mut out = Outputs::default();
        let mut video = tokio::time::interval(Duration::from_secs_f64(1.0 / p.fps));
        let mut audio = tokio::time::interval(Duration::from_millis(20));
        // A loaded machine delays ticks; frames are not sent in bursts to catch up.
        video.set_missed_tick_behavior(MissedTickBehavior::Skip);
        audio.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let gop = (p.keyframe_every.as_secs_f64() * p.fps).round().max(1.0) as u64;
        let mut connected = false;
        loop {
            let wake = (self.peer.next_timeout())
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let sending = self.publishes && connected;
            let stepped = tokio::select! {
                _ = shared.stop.cancelled() => break,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        counters.all_datagrams.fetch_add(1, Ordering::Relaxed);
                        if shared.measuring() {
                            counters.datagrams.fetch_add(1, Ordering::Relaxed);
                            counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        self.peer.receive(Instant::now(), from, self.local, &buf[..n], &mut out)
                    }
                    Err(e) => Err(format!("udp receive: {e}")),
                },
                m = self.client.recv() => match m {
                    Ok(Incoming::Sfu { kind, payload }) => {
                        match self.peer.on_signal(&kind, &payload, &mut out) {
                            Ok(Some(answer)) => self.client.signal("answer", "sfu", &answer).await,
                            other => other.map(drop),
                        }
                    }
                    other => {
                        if unhandled(shared, other).is_break() {
                            break;
                        }
                        Ok(())
                    }
                },
                _ = tokio::time::sleep_until(wake.into()) => self.peer.timeout(Instant::now(), &mut out),
                _ = video.tick(), if sending => {
                    self.wrote(shared, counters);
                    let sizes = (p.frame_size, p.keyframe_size);
                    self.peer.write_video(Instant::now(), now_ns(), sizes, gop, p.fps, &mut out)
                }
                _ = audio.tick(), if sending && p.audio => {
                    self.wrote(shared, counters);
                    self.peer.write_audio(Instant::now(), now_ns(), &mut out)
                }
            };
            if let Err(e) = stepped {
                shared.error(format!("sfu member {}: {e}", self.client.me));
                break;
            }
            for (to, datagram) in out.transmits.drain(..) {
                if self.socket.try_send_to(&datagram, to).is_err() {
                    counters.send_drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            for frame in out.frames.drain(..) {
                if shared.measuring() {
                    shared.relayed();
                    if let Some(sent) = frame.sent_ns {
                        shared.latency.record(now_ns().saturating_sub(sent));
                    }
                }
            }
            if !connected && self.peer.connected() {
                connected = true;
                counters.connected.fetch_add(1, Ordering::Relaxed);
            }
            if self.peer.failed() {
                shared.error(format!("sfu member {}: ICE disconnected", self.client.me));
                break;
            }
            if let Err(e) = self.client.flush_ack().await {
                shared.connection_ended(e);
                break;
            }
        }
        self
    }

    fn wrote(&self, shared: &Shared, counters: &Counters) {
        if shared.measuring() {
            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `sfu_datagrams_total{direction="out"}` from the server's `/metrics`, if it answers.
async fn sfu_datagrams_out(metrics: Option<SocketAddr>) -> Option<u64> {
    let read = async {
        let mut conn = HttpConn::open(Ipv4Addr::LOCALHOST, metrics?).await.ok()?;
        let (status, body) = conn.call("GET", "/metrics", "", None).await.ok()?;
        let text = String::from_utf8(body).ok().filter(|_| status == 200)?;
        counter(&text, r#"sfu_datagrams_total{direction="out"}"#)
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

/// The value of the sample `name` (with its labels) in OpenMetrics text.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// The Markdown table of `sfu` runs.
pub fn markdown(rows: &[&Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| server | rooms × (publishers + subscribers) | per publisher | frames sent/s | frames recv/s | datagrams/s | egress | server CPU | datagrams per server CPU-s | one-way p50 | p99 | p99.9 | connected | SFU out / received | client CPU | other CPU | errors |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let Some(f) = &r.sfu else { continue };
        let lat = r.latency_us.as_ref();
        let ms = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2} ms", v / 1000.0));
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.0}%", v * 100.0));
        let _ = writeln!(
            out,
            "| {} | {} × ({} + {}){} | {} | {:.0} | {:.0} | {:.0} | {:.1} Mbit/s | {} | {} | {} | {} | {} | {}/{} | {} / {} | {} | {} | {} |",
            r.label,
            r.rooms.unwrap_or(0),
            f.publishers,
            f.subscribers,
            if f.audio { ", audio" } else { "" },
            f.subscribers_per_publisher,
            f.frames_sent as f64 / r.duration_s.max(1e-9),
            r.relays_per_s,
            f.datagrams_per_s,
            f.egress_mbit_s,
            pct(r.server_cpu_util),
            f.datagrams_per_server_cpu_s
                .map_or("–".into(), |v| format!("{v:.0}")),
            ms(lat.map(|p| p.p50)),
            ms(lat.map(|p| p.p99)),
            ms(lat.map(|p| p.p999)),
            f.connected,
            r.sessions_ok,
            f.sfu_datagrams_out.map_or("–".into(), |v| v.to_string()),
            f.received_datagrams,
            pct(r.client_cpu_util),
            pct(r.other_cpu_util),
            r.errors + r.refused + r.timeouts + r.failed,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sfu_out_counter_is_read_by_its_labels() {
        let text = "# TYPE sfu_datagrams_total counter\n\
                    sfu_datagrams_total{direction=\"in\"} 12\n\
                    sfu_datagrams_total{direction=\"out\"} 3456\n";
        assert_eq!(
            counter(text, r#"sfu_datagrams_total{direction="out"}"#),
            Some(3456)
        );
        assert_eq!(counter(text, "sfu_missing_total"), None);
    }
}

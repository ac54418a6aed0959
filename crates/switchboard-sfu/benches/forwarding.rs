//! What forwarding costs the SFU: one publisher's video to 1, 10 and 50 subscribers, and a
//! ten-person room where everyone publishes audio and video, on the tests' virtual network.
//!
//! Only the SFU's own calls are timed (datagrams in, timers), with the thread's CPU clock around
//! each call, so the str0m clients standing in for browsers cost nothing here and a loaded
//! machine changes little; socket syscalls are not included (the virtual network has none). A
//! call's time is also how long the SFU holds a datagram before its forwarded copies are ready:
//! the latency it adds, bar the socket and scheduling.
//!
//! Run with `cargo bench -p switchboard-sfu`; results go to docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::World;
use str0m::media::MediaKind;

const WARM_UP: Duration = Duration::from_secs(2);
const MEASURED: Duration = Duration::from_secs(10);

fn measure(name: &str, mut w: World, senders: &[usize]) {
    w.run_media(WARM_UP, senders);
    w.sfu_calls.clear();
    let sent_before = w.sfu_sent;
    w.run_media(MEASURED, senders);
    let sent = w.sfu_sent - sent_before;
    let busy: Duration = w.sfu_calls.iter().sum();
    let mut calls = w.sfu_calls.clone();
    calls.sort();
    let pct = |p: f64| calls[((calls.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
    println!(
        "{name:<34} {:>9} {:>9.1} {:>8.2} {:>12.0} {:>8.1} {:>8.1}",
        sent,
        busy.as_secs_f64() * 1e3,
        busy.as_secs_f64() * 1e6 / sent as f64,
        sent as f64 / busy.as_secs_f64(),
        pct(0.5),
        pct(0.99),
    );
}

fn main() {
    println!(
        "{:<34} {:>9} {:>9} {:>8} {:>12} {:>8} {:>8}",
        "scenario (10 s of media)",
        "datagrams",
        "SFU ms",
        "µs/dgram",
        "dgrams/SFU-s",
        "p50 µs",
        "p99 µs"
    );
    for subscribers in [1, 10, 50] {
        let mut w = World::new(subscribers + 1);
        w.connect(0, &[MediaKind::Video]);
        for i in 1..=subscribers {
            w.connect(i, &[]);
        }
        measure(
            &format!("1 video publisher, {subscribers} subscribers"),
            w,
            &[0],
        );
    }
    let mut w = World::new(10);
    for i in 0..10 {
        w.connect(i, &[MediaKind::Audio, MediaKind::Video]);
    }
    let everyone: Vec<usize> = (0..10).collect();
    measure("10-person room, all publish A+V", w, &everyone);
}

//! The `sfu` scenario against the real server with its SFU on loopback: str0m endpoints signal
//! over WebSocket, connect to the SFU's UDP port and exchange frames for a couple of seconds.
//! Only that the tool works is checked (frames arrived, latency and the SFU's counter read);
//! the figures are for `docs/benchmarks.md`.

use std::time::Duration;

use switchboard_bench::{
    proto::{Endpoint, Target, Transport},
    scenario::{self, RunOptions, Scenario, SfuParams},
};
use switchboard_protocol::MediaMode;
use switchboard_testkit::{SECRET, TestServer, server::no_budgets};

fn params(publishers: usize, subscribers: usize, audio: bool) -> SfuParams {
    SfuParams {
        rooms: 1,
        publishers,
        subscribers,
        fps: 30.0,
        frame_size: 900,
        keyframe_size: 3000,
        keyframe_every: Duration::from_secs(1),
        audio,
    }
}

async fn run(p: SfuParams) {
    let mut server = TestServer::start_with(|c| {
        no_budgets(c);
        c.media_mode = MediaMode::Sfu;
        c.sfu.udp_port = Some(0);
        c.sfu.bind = "127.0.0.1".parse().unwrap();
    })
    .await;
    let ep = Endpoint::new(
        Target::Switchboard,
        Transport::Ws,
        server.addr,
        Some(SECRET.as_bytes()),
    );
    let opts = RunOptions {
        server_pid: Some(std::process::id()),
        warmup: Duration::from_millis(1_000),
        duration: Duration::from_secs(2),
        concurrency: 8,
        metrics: Some(server.addr),
        ..RunOptions::default()
    };
    let report = scenario::run(&ep, &opts, &Scenario::Sfu(p.clone())).await;
    let line = report.json_line();
    assert_eq!(report.errors, 0, "errors: {line}");
    let members = p.publishers + p.subscribers;
    assert_eq!(report.sessions_ok, members as u64, "{line}");
    let sfu = report.sfu.as_ref().expect("the sfu figures");
    assert_eq!(
        sfu.connected, members,
        "everyone's ICE and DTLS came up: {line}"
    );
    // Every receiver gets every publisher's video at 30 fps: at least a third of it in 2 s on a
    // loaded machine proves the path, not the speed.
    let receivers_per_publisher = (members - 1) as u64;
    let expected = 2 * 30 * p.publishers as u64 * receivers_per_publisher;
    assert!(report.relays >= expected / 3, "frames received: {line}");
    assert!(sfu.frames_sent > 0 && sfu.datagrams > 0, "{line}");
    assert!(report.latency_us.is_some(), "no latency: {line}");
    let out = sfu.sfu_datagrams_out.expect("the SFU's counter is read");
    assert!(out >= sfu.datagrams, "the SFU sent what arrived: {line}");
    let table = switchboard_bench::report::markdown(std::slice::from_ref(&report), "bare");
    assert!(table.contains("datagrams per server CPU-s"), "{table}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_reaches_three_subscribers_through_the_sfu() {
    tokio::time::timeout(Duration::from_secs(60), run(params(1, 3, false)))
        .await
        .expect("the run finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_three_publishing_audio_and_video_receives_each_other() {
    tokio::time::timeout(Duration::from_secs(60), run(params(3, 0, true)))
        .await
        .expect("the run finishes in time");
}

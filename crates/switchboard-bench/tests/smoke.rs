//! CI smoke of the load generator: every scenario on every transport against the real server,
//! started in-process, and against the bare relay; seconds and small counts, only to keep the
//! tool working (the measured figures are for `scripts/bench-peers` and `docs/benchmarks.md`).

use std::{net::SocketAddr, time::Duration};

use switchboard_bench::{
    proto::{Endpoint, Target, Transport},
    report::Report,
    scenario::{
        self, ChurnParams, ConnectParams, FanoutParams, Pacing, RelayParams, RunOptions, Scenario,
    },
};
use switchboard_testkit::{SECRET, TestServer, server::no_budgets};

/// The server with the benchmark's settings: every rate budget off, caps far above the load.
async fn switchboard() -> TestServer {
    TestServer::start_with(|c| {
        no_budgets(c);
        c.max_sessions_per_address = 100_000;
    })
    .await
}

fn options() -> RunOptions {
    RunOptions {
        label: None,
        server_pid: Some(std::process::id()),
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(700),
        concurrency: 16,
        sample_every: None,
        metrics: None,
    }
}

fn relay(rate: Option<f64>) -> Scenario {
    Scenario::Relay(RelayParams {
        pairs: 4,
        window: 2,
        size: 200,
        rate,
        pacing: Pacing::Tick,
    })
}

/// The open loop with each send released at its own due time by the pacing thread.
fn relay_even(rate: f64) -> Scenario {
    Scenario::Relay(RelayParams {
        pairs: 10,
        window: 1,
        size: 200,
        rate: Some(rate),
        pacing: Pacing::Even,
    })
}

fn fanout() -> Scenario {
    Scenario::Fanout(FanoutParams {
        rooms: 2,
        room_size: 4,
        window: 1,
        size: 200,
    })
}

fn connect() -> Scenario {
    Scenario::Connect(ConnectParams {
        sessions: 40,
        settle: Duration::from_millis(100),
        probes: 5,
    })
}

fn churn() -> Scenario {
    Scenario::Churn(ChurnParams {
        relay: RelayParams {
            pairs: 2,
            window: 1,
            size: 200,
            rate: None,
            pacing: Pacing::Tick,
        },
        churn_rate: 40.0,
        churn_rooms: 3,
    })
}

fn check(report: &Report) {
    let line = report.json_line();
    assert_eq!(report.errors, 0, "errors: {line}");
    assert_eq!(
        report.refused + report.timeouts + report.failed,
        0,
        "set-up failures: {line}"
    );
    assert!(report.sessions_ok > 0, "no sessions: {line}");
    let back: Report = serde_json::from_str(&line).expect("the JSON line reads back");
    assert_eq!(back.relays, report.relays);
    match report.scenario.as_str() {
        "connect" => {
            assert!(report.join_us.is_some(), "no join latency: {line}");
            assert!(report.probes_ok.unwrap_or(0) > 0, "no probe: {line}");
            assert_eq!(report.probes_failed, Some(0), "probes failed: {line}");
            assert!(report.rss_after_kib.is_some(), "no memory figure: {line}");
        }
        _ => {
            assert!(report.relays > 0, "nothing relayed: {line}");
            assert!(report.latency_us.is_some(), "no latency: {line}");
            assert!(report.server_cpu_s.is_some(), "no CPU figure: {line}");
        }
    }
    if report.rate.is_some() {
        assert!(report.sent > 0, "nothing sent: {line}");
        assert!(report.pacing.is_some(), "no pacing: {line}");
    }
    if report.scenario == "churn" {
        assert!(report.churn_ops.unwrap_or(0) > 0, "no churn: {line}");
    }
    let table = switchboard_bench::report::markdown(std::slice::from_ref(report), "bare");
    assert!(table.contains(&format!("| {} |", report.label)), "{table}");
}

async fn against_switchboard(transport: Transport, scenario: Scenario) {
    let mut server = switchboard().await;
    let secret = Some(SECRET.as_bytes());
    let ep = Endpoint::new(Target::Switchboard, transport, server.addr, secret);
    let report = scenario::run(&ep, &options(), &scenario).await;
    check(&report);
    server.shutdown().await;
}

/// A soak in miniature: churn with the server sampled every 100 ms.
async fn soak() {
    let mut server = switchboard().await;
    let ep = Endpoint::new(
        Target::Switchboard,
        Transport::Ws,
        server.addr,
        Some(SECRET.as_bytes()),
    );
    let options = RunOptions {
        sample_every: Some(Duration::from_millis(100)),
        metrics: Some(server.addr),
        ..options()
    };
    let report = scenario::run(&ep, &options, &churn()).await;
    check(&report);
    let measured: Vec<_> = report.samples.iter().filter(|s| s.measured).collect();
    assert!(measured.len() >= 4, "{}", report.json_line());
    for sample in &measured {
        assert!(sample.rss_kib.is_some() && sample.fds.is_some());
        assert!(sample.tasks.unwrap_or(0) > 0 && sample.sessions.unwrap_or(0) > 0);
    }
    assert!(report.drift.is_some(), "{}", report.json_line());
    server.shutdown().await;
}

async fn against_bare(scenario: Scenario) {
    let (addr, task) = switchboard_bench::bare::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bare relay starts");
    let ep = Endpoint::new(Target::Bare, Transport::Ws, addr, None);
    let report = scenario::run(&ep, &options(), &scenario).await;
    check(&report);
    task.abort();
}

macro_rules! smoke {
    ($($name:ident: $body:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                tokio::time::timeout(Duration::from_secs(60), $body)
                    .await
                    .expect("the run finishes in time");
            }
        )*
    };
}

smoke! {
    relay_ws: against_switchboard(Transport::Ws, relay(None));
    relay_sse: against_switchboard(Transport::Sse, relay(None));
    relay_poll: against_switchboard(Transport::Poll, relay(None));
    relay_open_loop_ws: against_switchboard(Transport::Ws, relay(Some(2_000.0)));
    relay_open_loop_sse: against_switchboard(Transport::Sse, relay(Some(1_000.0)));
    relay_open_loop_even_ws: against_switchboard(Transport::Ws, relay_even(2_000.0));
    fanout_ws: against_switchboard(Transport::Ws, fanout());
    fanout_sse: against_switchboard(Transport::Sse, fanout());
    fanout_poll: against_switchboard(Transport::Poll, fanout());
    connect_ws: against_switchboard(Transport::Ws, connect());
    connect_sse: against_switchboard(Transport::Sse, connect());
    connect_poll: against_switchboard(Transport::Poll, connect());
    churn_ws: against_switchboard(Transport::Ws, churn());
    churn_sse: against_switchboard(Transport::Sse, churn());
    churn_poll: against_switchboard(Transport::Poll, churn());
    soak_ws: soak();
    bare_relay: against_bare(relay(None));
    bare_relay_open_loop: against_bare(relay(Some(2_000.0)));
    bare_relay_open_loop_even: against_bare(relay_even(2_000.0));
    bare_fanout: against_bare(fanout());
    bare_connect: against_bare(connect());
    bare_churn: against_bare(churn());
}

#[test]
fn refuses_targets_off_loopback() {
    let addr = SocketAddr::from(([10, 0, 0, 1], 80));
    assert!(switchboard_bench::net::check_loopback(addr).is_err());
    assert!(switchboard_bench::net::check_loopback(SocketAddr::from(([127, 0, 0, 9], 80))).is_ok());
}

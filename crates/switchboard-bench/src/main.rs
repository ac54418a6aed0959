//! `switchboard-bench`: runs one workload against one server and prints a JSON line (stdout) and
//! a Markdown table (stderr); `bare-relay` serves the reference relay; `report` turns JSON lines
//! into the comparison tables. See `docs/benchmarks.md`.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use clap::{Args, Parser, Subcommand};
use switchboard_bench::{
    net::{Sources, check_loopback},
    proto::{Endpoint, Target, Transport},
    report::{self, Report},
    scenario::{
        self, ChurnParams, ConnectParams, FanoutParams, Pacing, RelayParams, RunOptions, Scenario,
        SfuParams,
        api::{ApiParams, Op as ApiOp},
    },
};

/// Load generator and benchmarks: switchboard against its peers and a bare relay.
#[derive(Debug, Parser)]
#[command(name = "switchboard-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pairs in their own rooms, ping-pong: relays/s and round-trip latency.
    ///
    /// Every message is its own write. Closed loop by default (`--window` in flight per pair);
    /// `--rate` makes it an open loop. One message per server read, the sends kept apart, with the
    /// browser SDK's acks: `--pairs 100 --rate 20000 --pacing even --ack-every 32`.
    Relay {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        relay: RelayArgs,
    },
    /// Rooms of N, one member broadcasting to the others: deliveries/s and one-way latency.
    Fanout {
        #[command(flatten)]
        common: Common,
        /// Rooms.
        #[arg(long, default_value_t = 20)]
        rooms: usize,
        /// Members per room, the broadcaster included.
        #[arg(long, default_value_t = 8)]
        room_size: usize,
        /// Broadcasts in flight per room.
        #[arg(long, default_value_t = 1)]
        window: usize,
        /// Payload bytes.
        #[arg(long, default_value_t = 256)]
        size: usize,
    },
    /// Many idle sessions in rooms of two: server memory per session, join latency, probes.
    Connect {
        #[command(flatten)]
        common: Common,
        /// Sessions to open.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Seconds the sessions idle before the server's memory is read.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// Pairs probed with a round trip after the ramp.
        #[arg(long, default_value_t = 100)]
        probes: usize,
    },
    /// Sessions joining and leaving at a rate while pairs relay.
    Churn {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        relay: RelayArgs,
        /// Join/leave operations started per second.
        #[arg(long, default_value_t = 100.0)]
        churn_rate: f64,
        /// Shared rooms the churning sessions join.
        #[arg(long, default_value_t = 20)]
        churn_rooms: usize,
    },
    /// Rooms of WebRTC endpoints through the server's SFU: forwarded datagrams per server
    /// CPU-second, egress and one-way frame latency.
    ///
    /// Each endpoint is a str0m peer on its own UDP socket on 127.0.0.1 signaling over
    /// WebSocket; the server needs `media_mode = "sfu"` and the SFU on loopback
    /// (`SWITCHBOARD_MEDIA_MODE=sfu SWITCHBOARD_SFU__UDP_PORT=0 SWITCHBOARD_SFU__BIND=127.0.0.1`).
    /// One publisher to 50: `--publishers 1 --subscribers 50`; a ten-person room:
    /// `--publishers 10 --subscribers 0 --audio`.
    Sfu {
        #[command(flatten)]
        common: Common,
        /// Rooms.
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        /// Members per room that publish video (and audio with --audio) and receive the others.
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        /// Members per room that only receive.
        #[arg(long, default_value_t = 10)]
        subscribers: usize,
        /// Video frames per second per publisher.
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        /// Bytes of a video frame (one datagram up to about 1,100).
        #[arg(long, default_value_t = 900)]
        frame_size: usize,
        /// Bytes of a keyframe.
        #[arg(long, default_value_t = 3000)]
        keyframe_size: usize,
        /// Seconds between keyframes (one is also sent when the SFU asks).
        #[arg(long, default_value_t = 1.0)]
        keyframe_every: f64,
        /// Publishers also send 80-byte Opus frames every 20 ms.
        #[arg(long)]
        audio: bool,
    },
    /// The control API at a fixed request rate, open loop: p95 latency from each request's due
    /// time, for one operation (`docs/benchmarks.md`, "Control API").
    ///
    /// The server's per-address budgets for logins, registrations and share codes must be raised
    /// for the run (`scripts/bench-api` does it).
    Api(ApiArgs),
    /// Serves the bare reference relay (`ws://ADDR/<room>`, frames forwarded verbatim).
    BareRelay {
        /// Address to listen on (loopback only).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Reads JSON lines of runs and prints the comparison tables and the verdicts on the targets.
    Report {
        /// Files of JSON lines (`-` for stdin).
        files: Vec<PathBuf>,
        /// The label every row is compared with.
        #[arg(long, default_value = "bare")]
        baseline: String,
        /// The open-loop rate the latency targets are checked at.
        #[arg(long, default_value_t = 20_000.0)]
        rate: f64,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// The server's protocol.
    #[arg(long, value_enum, default_value = "switchboard")]
    target: Target,
    /// The server's address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// switchboard in cluster mode: another node's address (loopback only); the second member of
    /// each pair connects there, so every relay crosses nodes.
    #[arg(long)]
    peer_addr: Option<SocketAddr>,
    /// switchboard's transport.
    #[arg(long, value_enum, default_value = "ws")]
    transport: Transport,
    /// switchboard's HS256 secret (the server's `SWITCHBOARD_SECRET`).
    #[arg(long, env = "SWITCHBOARD_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The server's name in the report.
    #[arg(long)]
    label: Option<String>,
    /// The server's process id, for its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Warm-up seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Connections set up at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// First client source address.
    #[arg(long, default_value = "127.0.0.2")]
    source_start: Ipv4Addr,
    /// Connections per source address.
    #[arg(long, default_value_t = 500)]
    per_address: u32,
    /// Seconds allowed for connecting and joining.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Soak: read the server's memory, open files and tasks this often, in seconds (needs
    /// --server-pid); the report gets the samples and whether they stayed flat.
    #[arg(long)]
    sample_every: Option<f64>,
    /// Runtime worker threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// switchboard: acknowledge after this many server messages, as the browser SDK does (0: never).
    #[arg(long, default_value_t = switchboard_bench::proto::DEFAULT_ACK_EVERY)]
    ack_every: u32,
}

#[derive(Debug, Args)]
struct ApiArgs {
    /// The request.
    #[arg(long, value_enum)]
    op: ApiOp,
    /// The server's address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Requests per second offered.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Keep-alive connections (the most requests in flight).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Share codes made for `redeem`, used in turn.
    #[arg(long, default_value_t = 200)]
    codes: usize,
    /// Rooms the share codes are spread over.
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// The account's username (registered when missing).
    #[arg(long, default_value = "bench")]
    username: String,
    /// The account's password.
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// The run's name in the report.
    #[arg(long, default_value = "api")]
    label: String,
    /// The server's process id, for its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Warm-up seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// First client source address.
    #[arg(long, default_value = "127.0.0.2")]
    source_start: Ipv4Addr,
    /// Connections per source address.
    #[arg(long, default_value_t = 500)]
    per_address: u32,
    /// Runtime worker threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, Args)]
struct RelayArgs {
    /// Pairs.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Messages in flight per pair (closed loop).
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Open loop: offered relays per second over all pairs (a round trip is two relays).
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: how the sends are timed.
    #[arg(long, value_enum, default_value = "tick")]
    pacing: Pacing,
}

impl RelayArgs {
    fn params(&self) -> RelayParams {
        RelayParams {
            pairs: self.pairs,
            window: self.window,
            size: self.size,
            rate: self.rate,
            pacing: self.pacing,
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 24.0 * 3600.0))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Report {
            files,
            baseline,
            rate,
        } => report_command(&files, &baseline, rate),
        Command::BareRelay { listen } => bare_relay(listen),
        Command::Api(args) => api(args),
        Command::Relay { common, relay } => run(common, Scenario::Relay(relay.params())),
        Command::Fanout {
            common,
            rooms,
            room_size,
            window,
            size,
        } => run(
            common,
            Scenario::Fanout(FanoutParams {
                rooms,
                room_size,
                window,
                size,
            }),
        ),
        Command::Connect {
            common,
            sessions,
            settle,
            probes,
        } => run(
            common,
            Scenario::Connect(ConnectParams {
                sessions,
                settle: secs(settle),
                probes,
            }),
        ),
        Command::Churn {
            common,
            relay,
            churn_rate,
            churn_rooms,
        } => run(
            common,
            Scenario::Churn(ChurnParams {
                relay: relay.params(),
                churn_rate,
                churn_rooms,
            }),
        ),
        Command::Sfu {
            common,
            rooms,
            publishers,
            subscribers,
            fps,
            frame_size,
            keyframe_size,
            keyframe_every,
            audio,
        } => run(
            common,
            Scenario::Sfu(SfuParams {
                rooms,
                publishers,
                subscribers,
                fps,
                frame_size,
                keyframe_size,
                keyframe_every: secs(keyframe_every),
                audio,
            }),
        ),
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

fn run(common: Common, scenario: Scenario) -> ExitCode {
    for addr in std::iter::once(common.addr).chain(common.peer_addr) {
        if let Err(e) = check_loopback(addr) {
            eprintln!("switchboard-bench: {e}");
            return ExitCode::from(2);
        }
    }
    let sources = match Sources::new(common.source_start, common.per_address) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            return ExitCode::from(2);
        }
    };
    if common.target == Target::Switchboard && common.secret.is_none() {
        eprintln!("switchboard-bench: switchboard needs --secret or SWITCHBOARD_SECRET");
        return ExitCode::from(2);
    }
    let transport = if common.target == Target::Switchboard {
        common.transport
    } else {
        Transport::Ws
    };
    let files = switchboard_bench::raise_open_files_limit();
    let mut ep = Endpoint::new(
        common.target,
        transport,
        common.addr,
        common.secret.as_deref().map(str::as_bytes),
    );
    ep.sources = sources;
    ep.connect_timeout = secs(common.connect_timeout);
    ep.ack_every = common.ack_every;
    ep.peer_addr = common.peer_addr;
    let opts = RunOptions {
        label: common.label.clone(),
        server_pid: common.server_pid,
        warmup: secs(common.warmup),
        duration: secs(common.duration),
        concurrency: common.concurrency,
        sample_every: common.sample_every.map(secs),
        metrics: (common.target == Target::Switchboard).then_some(common.addr),
    };
    let rt = match runtime(common.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report: Report = rt.block_on(scenario::run(&ep, &opts, &scenario));
    // Leftover tasks (abandoned connections) must not keep the process alive.
    rt.shutdown_timeout(Duration::from_secs(1));
    println!("{}", report.json_line());
    eprintln!(
        "{}",
        report::markdown(std::slice::from_ref(&report), "bare")
    );
    if report.errors > 0 {
        eprintln!(
            "switchboard-bench: {} errors (open files limit {files}); first: {:?}",
            report.errors, report.error_samples
        );
    }
    if report.sessions_ok == 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn api(args: ApiArgs) -> ExitCode {
    if let Err(e) = check_loopback(args.addr) {
        eprintln!("switchboard-bench: {e}");
        return ExitCode::from(2);
    }
    let sources = match Sources::new(args.source_start, args.per_address) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            return ExitCode::from(2);
        }
    };
    if !(args.rate > 0.0 && args.rate.is_finite()) || args.connections == 0 {
        eprintln!("switchboard-bench: --rate and --connections must be positive");
        return ExitCode::from(2);
    }
    let params = ApiParams {
        addr: args.addr,
        sources,
        op: args.op,
        rate: args.rate,
        connections: args.connections,
        codes: args.codes,
        rooms: args.rooms,
        username: args.username,
        password: args.password,
        warmup: secs(args.warmup),
        duration: secs(args.duration),
        server_pid: args.server_pid,
        label: args.label,
    };
    let rt = match runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(scenario::api::run(&params));
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            let lat = report.latency.clone().unwrap_or_default();
            eprintln!(
                "{} {} at {}/s: {:.0} ok/s, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
                 statuses {:?}, failed {}, skipped {}, server CPU {:.2}",
                report.label,
                report.op,
                report.rate,
                report.ok_per_s,
                lat.p50 / 1e3,
                report.p95_us.unwrap_or_default() / 1e3,
                lat.p99 / 1e3,
                lat.max / 1e3,
                report.statuses,
                report.failed,
                report.skipped,
                report.server_cpu_util.unwrap_or_default(),
            );
            if !report.error_samples.is_empty() {
                eprintln!("first failures: {:?}", report.error_samples);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard-bench: api set-up: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bare_relay(listen: SocketAddr) -> ExitCode {
    if let Err(e) = check_loopback(listen) {
        eprintln!("switchboard-bench: {e}");
        return ExitCode::from(2);
    }
    switchboard_bench::raise_open_files_limit();
    let rt = match runtime(1) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!(
            "bare relay listening on ws://{}/<room>",
            listener.local_addr()?
        );
        tokio::select! {
            r = switchboard_bench::bare::serve(listener) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-bench: bare relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report_command(files: &[PathBuf], baseline: &str, rate: f64) -> ExitCode {
    let mut reports = Vec::new();
    let mut text = String::new();
    for file in files {
        let read = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(file)
        };
        match read {
            Ok(t) => text.push_str(&t),
            Err(e) => {
                eprintln!("switchboard-bench: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
        text.push('\n');
    }
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        match serde_json::from_str::<Report>(line) {
            Ok(r) => reports.push(r),
            Err(e) => eprintln!("switchboard-bench: skipping a line: {e}"),
        }
    }
    let reports = report::medians(&reports);
    print!("{}", report::markdown(&reports, baseline));
    println!("### Targets (issue 6)\n");
    print!(
        "{}",
        report::verdict_table(&report::verdicts(&reports, rate))
    );
    ExitCode::SUCCESS
}

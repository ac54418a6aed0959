//! Measurements: latency histograms, counters, the clock every timestamp is read from, and what
//! `/proc` says about a process (CPU time, resident memory).

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

static START: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the first call in this process: the clock of every payload timestamp, so a
/// receiver in the same process can tell how long a message took.
pub fn now_ns() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

/// A latency histogram shared by the tasks of one run (values in nanoseconds, 3 significant
/// digits, up to 60 s; larger values are clamped).
pub struct Latencies(Mutex<Histogram<u64>>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(Mutex::new(
            Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("histogram bounds"),
        ))
    }
}

impl Latencies {
    /// Records one sample of `ns` nanoseconds.
    pub fn record(&self, ns: u64) {
        self.0.lock().saturating_record(ns.max(1_000));
    }

    /// Forgets every sample.
    pub fn reset(&self) {
        self.0.lock().reset();
    }

    /// The percentiles so far, or `None` without samples.
    pub fn percentiles(&self) -> Option<Percentiles> {
        let h = self.0.lock();
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Some(Percentiles {
            count: h.len(),
            mean: h.mean() / 1_000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

/// Where a run is: tasks record only while measuring, and stop starting work after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Connections are being set up.
    Setup = 0,
    /// Traffic flows but is not counted.
    Warmup = 1,
    /// Traffic is counted.
    Measure = 2,
    /// No new work; in-flight messages drain.
    Drain = 3,
}

/// What the tasks of one run share.
pub struct Shared {
    phase: AtomicU8,
    /// Messages delivered by the server to a client while measuring.
    pub relays: AtomicU64,
    /// Messages sent by clients while measuring.
    pub sent: AtomicU64,
    /// Errors (refusals, `error` messages, broken connections) at any phase.
    pub errors: AtomicU64,
    /// Open-loop sends skipped because too many were outstanding.
    pub skipped: AtomicU64,
    /// The main latency of the scenario (round trip, or one way for `fanout`).
    pub latency: Latencies,
    /// A second latency: joining (connect, churn).
    pub join: Latencies,
    /// Open loop: how late each send went out after it was due (the generator's own lag).
    pub lag: Latencies,
    /// A few error texts, for the report.
    pub error_samples: Mutex<Vec<String>>,
    /// Fires when every task should wind down.
    pub stop: tokio_util::sync::CancellationToken,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            phase: AtomicU8::new(Phase::Setup as u8),
            relays: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            latency: Latencies::default(),
            join: Latencies::default(),
            lag: Latencies::default(),
            error_samples: Mutex::new(Vec::new()),
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }
}

impl Shared {
    /// A fresh shared state.
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared::default())
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Setup,
            1 => Phase::Warmup,
            2 => Phase::Measure,
            _ => Phase::Drain,
        }
    }

    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Whether samples count now.
    pub fn measuring(&self) -> bool {
        self.phase() == Phase::Measure
    }

    /// Whether clients should stop starting new work.
    pub fn draining(&self) -> bool {
        self.phase() == Phase::Drain
    }

    /// A connection ended: an error, unless the run is draining (then servers close on purpose).
    pub fn connection_ended(&self, what: impl Into<String>) {
        if !self.draining() {
            self.error(what);
        }
    }

    /// Counts an error and keeps its text if it is among the first few.
    pub fn error(&self, what: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.error_samples.lock();
        if samples.len() < 8 {
            samples.push(what.into());
        }
    }

    /// Counts one delivered message (while measuring).
    pub fn relayed(&self) {
        if self.measuring() {
            self.relays.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// CPU time (user + system) of a process, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields count from after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open file descriptors of a process (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The 1-, 5- and 15-minute load averages of the machine.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// CPU time all processes of the machine used so far (every core: `/proc/stat` minus idle and
/// iowait).
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_nanos(busy * 1_000_000_000 / hz))
}

/// CPU time of a process between two points.
pub struct CpuMeter {
    pid: Option<u32>,
    start: Option<Duration>,
    wall: Instant,
}

/// CPU time the whole machine used between two points.
pub struct MachineMeter(Option<Duration>);

impl MachineMeter {
    /// Starts measuring.
    pub fn start() -> Self {
        MachineMeter(machine_busy())
    }

    /// CPU seconds used by every process since the start.
    pub fn stop(&self) -> Option<f64> {
        Some(machine_busy()?.saturating_sub(self.0?).as_secs_f64())
    }
}

impl CpuMeter {
    /// Starts measuring `pid` (nothing is measured without one).
    pub fn start(pid: Option<u32>) -> Self {
        CpuMeter {
            pid,
            start: pid.and_then(cpu_time),
            wall: Instant::now(),
        }
    }

    /// CPU seconds used since the start, and the wall seconds elapsed.
    pub fn stop(&self) -> (Option<f64>, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.pid.and_then(cpu_time), self.start) {
            (Some(end), Some(start)) => Some(end.saturating_sub(start).as_secs_f64()),
            _ => None,
        };
        (cpu, wall)
    }
}

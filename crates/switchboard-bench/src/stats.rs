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

    /// The value at quantile `q` (0 to 1) so far, in microseconds, or `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let h = self.0.lock();
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1_000.0)
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

/// A process's CPU time at one moment, read two ways: `/proc/PID/stat`'s user + system time, in
/// clock ticks (10 ms) and counting threads that have ended, and each live thread's time on a CPU
/// in nanoseconds (`/proc/PID/task/TID/schedstat`).
///
/// The ticks alone are too coarse for a server that is busy for well under a second of a run (at
/// 20,000 relays/s it used 0.6–0.75 CPU-seconds in 6 s, so two readings 10 ms apiece made ±1.5%
/// of noise in every relays-per-CPU-second figure). Both count the same time: the kernel scales
/// the ticks to the scheduler's nanoseconds before reporting them.
#[derive(Debug)]
pub struct CpuSample {
    ticks: Duration,
    /// Nanoseconds on a CPU per live thread, sorted by thread id; `None` where the kernel keeps no
    /// scheduler statistics (its file then reads zeros).
    threads: Option<Vec<(u32, u64)>>,
}

impl CpuSample {
    /// Reads `pid`'s CPU time now.
    pub fn read(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(CpuSample {
            ticks: ticks_from_stat(&stat)?,
            threads: threads_on_cpu(pid),
        })
    }

    /// The CPU time used between `earlier` and this sample: from the threads' nanoseconds when
    /// every thread of `earlier` is still alive (threads born since count whole), otherwise from
    /// the ticks, which keep the time of threads that ended.
    pub fn since(&self, earlier: &CpuSample) -> Duration {
        if let (Some(now), Some(then)) = (&self.threads, &earlier.threads) {
            let mut used = 0u64;
            let mut alive = 0;
            for &(tid, ns) in now {
                let before = match then.binary_search_by_key(&tid, |&(t, _)| t) {
                    Ok(i) => {
                        alive += 1;
                        then[i].1
                    }
                    Err(_) => 0,
                };
                used += ns.saturating_sub(before);
            }
            if alive == then.len() {
                return Duration::from_nanos(used);
            }
        }
        self.ticks.saturating_sub(earlier.ticks)
    }
}

/// User + system time from the text of `/proc/PID/stat`.
fn ticks_from_stat(stat: &str) -> Option<Duration> {
    // The command name may contain spaces; fields count from after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Each live thread of `pid` with its nanoseconds on a CPU (the first field of its
/// `schedstat`), sorted by thread id. A thread that ends while the list is read is left out.
fn threads_on_cpu(pid: u32) -> Option<Vec<(u32, u64)>> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Some(tid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")) else {
            continue;
        };
        threads.push((tid, text.split_whitespace().next()?.parse().ok()?));
    }
    threads.sort_unstable();
    threads.iter().any(|&(_, ns)| ns > 0).then_some(threads)
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
    start: Option<CpuSample>,
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
            start: pid.and_then(CpuSample::read),
            wall: Instant::now(),
        }
    }

    /// CPU seconds used since the start, and the wall seconds elapsed.
    pub fn stop(&self) -> (Option<f64>, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.pid.and_then(CpuSample::read), &self.start) {
            (Some(end), Some(start)) => Some(end.since(start).as_secs_f64()),
            _ => None,
        };
        (cpu, wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ticks_ms: u64, threads: Option<&[(u32, u64)]>) -> CpuSample {
        CpuSample {
            ticks: Duration::from_millis(ticks_ms),
            threads: threads.map(<[_]>::to_vec),
        }
    }

    #[test]
    fn the_threads_nanoseconds_count_while_every_thread_lives() {
        let then = sample(600, Some(&[(10, 5_000_000), (11, 1_000)]));
        // Thread 12 was born meanwhile: all of its time is in the window.
        let now = sample(
            1_300,
            Some(&[(10, 655_123_456), (11, 2_000), (12, 40_000_000)]),
        );
        assert_eq!(now.since(&then), Duration::from_nanos(690_124_456));
    }

    #[test]
    fn a_thread_that_ended_sends_the_measure_back_to_the_ticks() {
        let then = sample(600, Some(&[(10, 5_000_000), (11, 1_000)]));
        let now = sample(1_300, Some(&[(10, 655_123_456)]));
        assert_eq!(now.since(&then), Duration::from_millis(700));
    }

    #[test]
    fn without_scheduler_statistics_the_ticks_count() {
        let then = sample(600, None);
        let now = sample(1_300, Some(&[(10, 655_123_456)]));
        assert_eq!(now.since(&then), Duration::from_millis(700));
        assert_eq!(then.since(&now), Duration::ZERO);
    }

    #[test]
    fn stat_ticks_are_read_after_a_command_name_with_spaces() {
        let hz = rustix::param::clock_ticks_per_second();
        let stat = format!(
            "42 (a b) c) S 1 42 42 0 -1 4194560 10 0 0 0 {hz} {} 0 0 20 0 1",
            2 * hz
        );
        assert_eq!(ticks_from_stat(&stat), Some(Duration::from_secs(3)));
    }

    #[test]
    fn this_process_is_read_with_its_threads() {
        let pid = std::process::id();
        let start = CpuSample::read(pid).expect("/proc/self/stat");
        let threads = start
            .threads
            .as_ref()
            .expect("schedstat of this test's threads");
        // The main thread's id is the process's.
        assert!(threads.iter().any(|&(tid, _)| tid == pid));
        // A bounded amount of work, so the scheduler has something to count.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(CpuSample::read(pid).unwrap().since(&start) > Duration::ZERO);
    }
}

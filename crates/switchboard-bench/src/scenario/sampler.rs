//! Soak sampling (`--sample-every`): while a run goes on, the server process is read at a fixed
//! period (resident memory and open files from `/proc`, its live tasks and sessions from
//! `/metrics`), so a long `churn` run shows whether the server stays flat after warm-up or grows.
//! The verdict compares the last quarter of the samples with the first sample after warm-up.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{
    h1::HttpConn,
    stats::{Phase, Shared, open_fds, rss_kib},
};

/// One reading of the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Resident memory, KiB.
    pub rss_kib: Option<u64>,
    /// Open file descriptors.
    pub fds: Option<u64>,
    /// Tasks alive in the server's runtime (`runtime_tasks_gauge`).
    pub tasks: Option<u64>,
    /// Live sessions (`sessions_gauge`).
    pub sessions: Option<u64>,
    /// Whether the run was past its warm-up.
    pub measured: bool,
}

/// How the measured samples moved: the median of the last quarter minus the first measured
/// sample. Flat means memory within 5% or 2 MiB (whichever is more), and open files and tasks
/// within what the sessions alive at either moment explain.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Drift {
    /// Resident memory, KiB.
    pub rss_kib: i64,
    /// Resident memory, percent of the first measured sample.
    pub rss_pct: f64,
    /// Open file descriptors.
    pub fds: i64,
    /// Runtime tasks.
    pub tasks: i64,
    /// Live sessions (churn makes them vary; the others are judged against it).
    pub sessions: i64,
    /// Whether the server stayed flat.
    pub flat: bool,
}

/// Samples `pid` (and `/metrics` at `metrics`) every `every` until the run drains; prints each
/// sample to stderr as it is taken, for runs of half an hour.
pub async fn run(
    pid: u32,
    metrics: Option<SocketAddr>,
    every: Duration,
    shared: &Shared,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shared.draining() {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.stop.cancelled() => break,
        }
        let scraped = match metrics {
            Some(addr) => scrape(addr).await,
            None => None,
        };
        let gauge = |name: &str| scraped.as_deref().and_then(|text| gauge(text, name));
        let sample = Sample {
            t_s: started.elapsed().as_secs_f64(),
            rss_kib: rss_kib(pid),
            fds: open_fds(pid),
            tasks: gauge("runtime_tasks_gauge"),
            sessions: gauge("sessions_gauge"),
            measured: shared.phase() >= Phase::Measure,
        };
        eprintln!(
            "sample t={:.0}s rss={}KiB fds={} tasks={} sessions={}",
            sample.t_s,
            show(sample.rss_kib),
            show(sample.fds),
            show(sample.tasks),
            show(sample.sessions),
        );
        samples.push(sample);
    }
    samples
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The drift of the measured samples; `None` with fewer than four.
pub fn drift(samples: &[Sample]) -> Option<Drift> {
    let measured: Vec<&Sample> = samples.iter().filter(|s| s.measured).collect();
    if measured.len() < 4 {
        return None;
    }
    let first = measured[0];
    let last = &measured[measured.len() - measured.len() / 4..];
    let moved = |f: fn(&Sample) -> Option<u64>| -> i64 {
        let mut tail: Vec<u64> = last.iter().filter_map(|s| f(s)).collect();
        tail.sort_unstable();
        match (tail.get(tail.len() / 2), f(first)) {
            (Some(&end), Some(start)) => end as i64 - start as i64,
            _ => 0,
        }
    };
    let rss_kib = moved(|s| s.rss_kib);
    let start_rss = first.rss_kib.unwrap_or(1).max(1) as f64;
    let sessions = moved(|s| s.sessions);
    let fds = moved(|s| s.fds);
    let tasks = moved(|s| s.tasks);
    // Each session holds at most one socket and a few tasks: more than the sessions explain is a
    // leak.
    let explained = sessions.max(0) + 16;
    let flat = (rss_kib as f64) < (start_rss * 0.05).max(2.0 * 1024.0)
        && fds <= explained
        && tasks <= 4 * explained;
    Some(Drift {
        rss_kib,
        rss_pct: 100.0 * rss_kib as f64 / start_rss,
        fds,
        tasks,
        sessions,
        flat,
    })
}

/// `GET /metrics` over a fresh connection; `None` if it fails (a sample without those figures).
async fn scrape(addr: SocketAddr) -> Option<String> {
    let read = async {
        let mut conn = HttpConn::open(Ipv4Addr::LOCALHOST, addr).await.ok()?;
        // `/metrics` takes no token; the client always names one.
        let (status, body) = conn.call("GET", "/metrics", "", None).await.ok()?;
        (status == 200).then(|| String::from_utf8(body).ok())?
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

/// The value of an unlabelled gauge in OpenMetrics text.
fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rss: u64, fds: u64, tasks: u64, sessions: u64) -> Sample {
        Sample {
            rss_kib: Some(rss),
            fds: Some(fds),
            tasks: Some(tasks),
            sessions: Some(sessions),
            measured: true,
            ..Sample::default()
        }
    }

    #[test]
    fn a_server_that_stays_put_is_flat_and_one_that_leaks_is_not() {
        let flat: Vec<_> = (0..20)
            .map(|i| sample(50_000 + i % 3, 200, 400, 100))
            .collect();
        assert!(drift(&flat).unwrap().flat);
        let leaking: Vec<_> = (0..20)
            .map(|i| sample(50_000 + i * 1_000, 200, 400, 100))
            .collect();
        let d = drift(&leaking).unwrap();
        assert!(!d.flat && d.rss_kib > 10_000, "{d:?}");
        let fd_leak: Vec<_> = (0..20)
            .map(|i| sample(50_000, 200 + i * 10, 400, 100))
            .collect();
        assert!(!drift(&fd_leak).unwrap().flat);
    }

    #[test]
    fn gauges_are_read_from_openmetrics_text() {
        let text = "# TYPE sessions gauge\nsessions_gauge 12\nruntime_tasks_gauge 40\n";
        assert_eq!(gauge(text, "sessions_gauge"), Some(12));
        assert_eq!(gauge(text, "runtime_tasks_gauge"), Some(40));
        assert_eq!(gauge(text, "rooms_gauge"), None);
    }
}

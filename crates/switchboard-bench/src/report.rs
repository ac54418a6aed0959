//! Results: one JSON line per run, and Markdown tables comparing runs.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

use crate::{scenario::Pacing, stats::Percentiles};

/// Everything one run measured. Absent values are left out of the JSON line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// `relay`, `fanout`, `connect` or `churn`.
    pub scenario: String,
    /// The server's name in tables (`switchboard`, `matchbox`, `peerjs`, `bare`, ...).
    pub label: String,
    /// The protocol spoken.
    pub target: String,
    /// `ws`, `sse` or `poll`.
    pub transport: String,
    /// Pairs (relay, churn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<usize>,
    /// Messages in flight per pair or room (closed loop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// Application payload size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Offered load in relays per second (open loop); absent in closed loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Open loop: how the sends were timed (`tick` or `even`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing: Option<Pacing>,
    /// switchboard over WebSocket or SSE: the clients acknowledged after this many messages (0:
    /// never); long-poll acknowledges with each poll.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_every: Option<u32>,
    /// Rooms (fanout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<usize>,
    /// Members per room (fanout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_size: Option<usize>,
    /// Sessions asked for (connect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    /// Join/leave operations per second asked for (churn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn_rate: Option<f64>,
    /// `sfu`: its own figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfu: Option<crate::scenario::sfu::SfuFigures>,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measured period, seconds.
    pub duration_s: f64,
    /// Messages the server delivered to clients while measuring.
    pub relays: u64,
    /// `relays / duration_s`.
    pub relays_per_s: f64,
    /// Messages the clients sent while measuring.
    pub sent: u64,
    /// Open loop: sends skipped because too many were outstanding.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_sends: u64,
    /// What `latency_us` measures: `rtt` (send to echo back) or `one_way` (send to delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_kind: Option<String>,
    /// Latency percentiles, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Percentiles>,
    /// Open loop: how late sends left after they were due, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_us: Option<Percentiles>,
    /// Time from the first byte of a connection to the confirmed join, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_us: Option<Percentiles>,
    /// Server CPU seconds (user + system) while measuring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s / duration_s` (1.0 = one core busy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_util: Option<f64>,
    /// `relays / server_cpu_s`: the fair throughput when the load generator is the bottleneck.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relays_per_server_cpu_s: Option<f64>,
    /// The load generator's own CPU use, as a share of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_util: Option<f64>,
    /// CPU used by other processes of the machine while measuring, as a share of one core (a
    /// run with much of it is not comparable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_cpu_util: Option<f64>,
    /// Server resident memory before the sessions were opened, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_before_kib: Option<u64>,
    /// Server resident memory with every session open and idle, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after_kib: Option<u64>,
    /// `(rss_after - rss_before) / sessions_ok`, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_session: Option<f64>,
    /// The server's CPU while every session sat idle (the settle window), percent of one CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_cpu_pct: Option<f64>,
    /// Server open file descriptors with every session open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_fds: Option<u64>,
    /// Sessions (or connections) set up.
    pub sessions_ok: u64,
    /// Set-ups refused with an HTTP status.
    #[serde(skip_serializing_if = "is_zero")]
    pub refused: u64,
    /// Set-ups that timed out.
    #[serde(skip_serializing_if = "is_zero")]
    pub timeouts: u64,
    /// Set-ups that failed otherwise.
    #[serde(skip_serializing_if = "is_zero")]
    pub failed: u64,
    /// Connect: round trips through sampled existing sessions after the ramp that worked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes_ok: Option<u64>,
    /// Connect: sampled round trips that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes_failed: Option<u64>,
    /// Seconds the connect ramp took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp_s: Option<f64>,
    /// Churn: join/leave operations completed while measuring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn_ops: Option<u64>,
    /// Errors: broken connections, `error` messages, refused posts.
    pub errors: u64,
    /// The first few error texts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// `/proc/loadavg` (1, 5, 15 min) when the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_avg: Option<String>,
    /// Distinct client source addresses used.
    pub source_addresses: u32,
    /// Soak: the server read every `--sample-every` seconds during the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<crate::scenario::sampler::Sample>,
    /// Soak: how the measured samples moved, and whether that is flat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<crate::scenario::sampler::Drift>,
    /// Runs this report is the median of ([`medians`]); 0 or 1 for a single run.
    #[serde(skip_serializing_if = "is_zero")]
    pub runs: u64,
}

/// Collapses repeated runs of one configuration (same label, transport and parameters) into one
/// report per configuration, in the order each first appears. Every figure is the median of the
/// runs' figures, taken on its own (so p50 and p99 may come from different runs), and `runs`
/// counts them: this machine's run-to-run noise is larger than most differences measured, so the
/// targets are judged on medians of interleaved repeats.
pub fn medians(reports: &[Report]) -> Vec<Report> {
    let mut order: Vec<String> = Vec::new();
    let mut runs: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for r in reports {
        let key = format!("{} {} {}", r.label, r.transport, r.group());
        if !runs.contains_key(&key) {
            order.push(key.clone());
        }
        runs.entry(key)
            .or_default()
            .push(serde_json::to_value(r).unwrap_or_default());
    }
    order
        .iter()
        .filter_map(|key| {
            let values = &runs[key];
            let mut report: Report = serde_json::from_value(median(values)).ok()?;
            report.runs = values.len() as u64;
            Some(report)
        })
        .collect()
}

/// The median of each number in `values` (all shaped alike), field by field; anything else is
/// taken from the first. The middle element is taken, not an average, so integers stay integers.
fn median(values: &[serde_json::Value]) -> serde_json::Value {
    use serde_json::Value;
    match &values[0] {
        Value::Number(_) => {
            let mut numbers: Vec<&Value> = values.iter().filter(|v| v.is_number()).collect();
            numbers.sort_by(|a, b| {
                let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                a.total_cmp(&b)
            });
            numbers[(numbers.len() - 1) / 2].clone()
        }
        Value::Object(first) => Value::Object(
            first
                .keys()
                .map(|k| {
                    let field: Vec<Value> =
                        values.iter().filter_map(|v| v.get(k).cloned()).collect();
                    (k.clone(), median(&field))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Report {
    /// The one JSON line of this run.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Runs compared with each other share this key (the transport and server are not in it).
    fn group(&self) -> String {
        let mut key = self.scenario.clone();
        let mut add = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                let _ = write!(key, " {name}={v}");
            }
        };
        add("rate", self.rate.map(|r| format!("{r}")));
        // Runs before pacing was a choice were paced on the timer's ticks.
        add(
            "pacing",
            self.pacing
                .filter(|&p| p != Pacing::Tick)
                .map(|p| p.name().to_owned()),
        );
        add("pairs", self.pairs.map(|v| v.to_string()));
        add(
            "window",
            self.window
                .filter(|_| self.rate.is_none())
                .map(|v| v.to_string()),
        );
        add("size", self.size.map(|v| v.to_string()));
        add("rooms", self.rooms.map(|v| v.to_string()));
        add("room_size", self.room_size.map(|v| v.to_string()));
        add("sessions", self.sessions.map(|v| v.to_string()));
        add("churn_rate", self.churn_rate.map(|v| format!("{v}")));
        if let Some(f) = &self.sfu {
            add("publishers", Some(f.publishers.to_string()));
            add("fps", Some(f.fps.to_string()));
            add("audio", Some(f.audio.to_string()));
        }
        key
    }
}

fn f0(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "–".into())
}

fn f2(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

fn us(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v >= 10_000.0 => format!("{:.1} ms", v / 1000.0),
        Some(v) => format!("{v:.0} µs"),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The Markdown tables of `reports`: one per scenario and parameter set, each row compared with
/// the run labelled `baseline` (its WebSocket run) of the same group.
pub fn markdown(reports: &[Report], baseline: &str) -> String {
    let mut groups: BTreeMap<String, Vec<&Report>> = BTreeMap::new();
    for r in reports {
        groups.entry(r.group()).or_default().push(r);
    }
    let mut out = String::new();
    for (key, rows) in &groups {
        let base = rows
            .iter()
            .find(|r| r.label == baseline && r.transport == "ws")
            .copied();
        let _ = writeln!(out, "### {key}\n");
        if let Some(n) = rows.iter().map(|r| r.runs).max().filter(|&n| n > 1) {
            let _ = writeln!(
                out,
                "Each figure is the median over the configuration's runs ({n} each).\n"
            );
        }
        let scenario = rows[0].scenario.as_str();
        match scenario {
            "sfu" => out.push_str(&crate::scenario::sfu::markdown(rows)),
            "connect" => {
                let _ = writeln!(
                    out,
                    "| server | transport | sessions | refused / timeout / failed | RSS before | RSS after | memory per session | CPU at rest | ready p50 | ready p99 | probes ok | ramp |"
                );
                let _ = writeln!(
                    out,
                    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                );
                for r in rows {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        r.label,
                        r.transport,
                        r.sessions_ok,
                        r.refused,
                        r.timeouts,
                        r.failed,
                        r.rss_before_kib
                            .map(|v| format!("{:.1} MiB", v as f64 / 1024.0))
                            .unwrap_or("–".into()),
                        r.rss_after_kib
                            .map(|v| format!("{:.1} MiB", v as f64 / 1024.0))
                            .unwrap_or("–".into()),
                        r.bytes_per_session
                            .map(|v| format!("{:.2} KiB", v / 1024.0))
                            .unwrap_or("–".into()),
                        r.idle_cpu_pct
                            .map(|v| format!("{v:.2}%"))
                            .unwrap_or("–".into()),
                        us(r.join_us.as_ref().map(|p| p.p50)),
                        us(r.join_us.as_ref().map(|p| p.p99)),
                        match (r.probes_ok, r.probes_failed) {
                            (Some(ok), Some(bad)) => format!("{ok}/{}", ok + bad),
                            _ => "–".into(),
                        },
                        r.ramp_s.map(|s| format!("{s:.1} s")).unwrap_or("–".into()),
                    );
                }
            }
            _ => {
                let latency = match rows[0].latency_kind.as_deref() {
                    Some("one_way") => "one-way",
                    _ => "RTT",
                };
                let churn = scenario == "churn";
                let open = rows[0].rate.is_some();
                let (extra, extra_align) = match (churn, open) {
                    (true, _) => (" churn ops/s | join p50 | join p99 |", "---:|---:|---:|"),
                    (false, true) => (" send lag p99 |", "---:|"),
                    _ => ("", ""),
                };
                let _ = writeln!(
                    out,
                    "| server | transport | relays/s | server CPU | relays per server CPU-s | × {baseline} | {latency} p50 | p90 | p99 | p99.9 | p99 ÷ {baseline} |{extra} client CPU | other CPU | errors |",
                );
                let _ = writeln!(
                    out,
                    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{extra_align}---:|---:|---:|",
                );
                for r in rows {
                    let lat = r.latency_us.as_ref();
                    let base_lat = base.and_then(|b| b.latency_us.as_ref());
                    let churn_cols = if churn {
                        format!(
                            " {} | {} | {} |",
                            f0(r.churn_ops.map(|n| n as f64 / r.duration_s.max(1e-9))),
                            us(r.join_us.as_ref().map(|p| p.p50)),
                            us(r.join_us.as_ref().map(|p| p.p99)),
                        )
                    } else if open {
                        format!(" {} |", us(r.send_lag_us.as_ref().map(|p| p.p99)))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{} {} | {} | {} |",
                        r.label,
                        r.transport,
                        f0(Some(r.relays_per_s)),
                        r.server_cpu_util
                            .map(|u| format!("{:.0}%", u * 100.0))
                            .unwrap_or("–".into()),
                        f0(r.relays_per_server_cpu_s),
                        f2(ratio(
                            r.relays_per_server_cpu_s,
                            base.and_then(|b| b.relays_per_server_cpu_s)
                        )),
                        us(lat.map(|p| p.p50)),
                        us(lat.map(|p| p.p90)),
                        us(lat.map(|p| p.p99)),
                        us(lat.map(|p| p.p999)),
                        f2(ratio(lat.map(|p| p.p99), base_lat.map(|p| p.p99))),
                        churn_cols,
                        r.client_cpu_util
                            .map(|u| format!("{:.0}%", u * 100.0))
                            .unwrap_or("–".into()),
                        r.other_cpu_util
                            .map(|u| format!("{:.0}%", u * 100.0))
                            .unwrap_or("–".into()),
                        r.errors + r.refused + r.timeouts + r.failed,
                    );
                }
            }
        }
        out.push('\n');
    }
    out
}

/// One verdict on a target of issue 6.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// What is compared.
    pub what: String,
    /// The measured value, formatted.
    pub measured: String,
    /// The target, formatted.
    pub target: String,
    /// Whether it is met (`None` when a run is missing).
    pub met: Option<bool>,
}

/// The targets of issue 6 checked against `reports` (runs labelled `switchboard`, `matchbox`,
/// `peerjs` and `bare`; the open-loop comparisons use the rate `rate`).
pub fn verdicts(reports: &[Report], rate: f64) -> Vec<Verdict> {
    let find = |label: &str, scenario: &str, transport: &str, open: Option<f64>| {
        reports.iter().find(|r| {
            r.label == label
                && r.scenario == scenario
                && r.transport == transport
                && match open {
                    None => r.rate.is_none(),
                    Some(rate) => r.rate.is_some_and(|x| (x - rate).abs() < 0.5),
                }
        })
    };
    let eff = |r: Option<&Report>| r.and_then(|r| r.relays_per_server_cpu_s);
    let p99 = |r: Option<&Report>| r.and_then(|r| r.latency_us.as_ref().map(|p| p.p99));
    let mut out = Vec::new();
    let mut check = |what: String, measured: Option<f64>, target: f64, higher: bool, unit: &str| {
        out.push(Verdict {
            what,
            measured: measured
                .map(|m| format!("{m:.2}{unit}"))
                .unwrap_or_else(|| "missing".into()),
            target: format!("{} {target}{unit}", if higher { ">=" } else { "<=" }),
            met: measured.map(|m| if higher { m >= target } else { m <= target }),
        });
    };
    for (name, open) in [("closed loop", None), ("open loop", Some(rate))] {
        let sb = eff(find("switchboard", "relay", "ws", open));
        for (peer, target) in [("bare", 0.9), ("matchbox", 1.2), ("peerjs", 2.0)] {
            check(
                format!("relays per server CPU-s, {name}: switchboard ÷ {peer}"),
                ratio(sb, eff(find(peer, "relay", "ws", open))),
                target,
                true,
                "×",
            );
        }
    }
    let sb = p99(find("switchboard", "relay", "ws", Some(rate)));
    for (peer, target) in [("matchbox", 1.0), ("peerjs", 1.0), ("bare", 1.5)] {
        check(
            format!("RTT p99 at {rate:.0} relays/s: switchboard ÷ {peer}"),
            ratio(sb, p99(find(peer, "relay", "ws", Some(rate)))),
            target,
            false,
            "×",
        );
    }
    let idle = reports
        .iter()
        .filter(|r| r.label == "switchboard" && r.scenario == "connect" && r.transport == "ws")
        .max_by_key(|r| r.sessions_ok)
        .and_then(|r| r.bytes_per_session.map(|b| (b, r.sessions_ok)));
    check(
        format!(
            "memory per idle WebSocket session ({} sessions)",
            idle.map(|i| i.1).unwrap_or(0)
        ),
        idle.map(|i| i.0 / 1024.0),
        4.0,
        false,
        " KiB",
    );
    // SSE and long-poll against WebSocket at the same offered rate (whichever rate has all three).
    let rates: Vec<f64> = reports
        .iter()
        .filter(|r| r.label == "switchboard" && r.scenario == "relay" && r.transport != "ws")
        .filter_map(|r| r.rate)
        .collect();
    for transport in ["sse", "poll"] {
        let same = rates.iter().copied().find(|&x| {
            find("switchboard", "relay", transport, Some(x)).is_some()
                && find("switchboard", "relay", "ws", Some(x)).is_some()
        });
        let measured = same.and_then(|x| {
            ratio(
                p99(find("switchboard", "relay", transport, Some(x))),
                p99(find("switchboard", "relay", "ws", Some(x))),
            )
        });
        check(
            format!(
                "{transport} RTT p99 ÷ WebSocket RTT p99 at {} relays/s",
                same.map(|x| format!("{x:.0}")).unwrap_or("the same".into())
            ),
            measured,
            3.0,
            false,
            "×",
        );
    }
    out
}

/// `verdicts` as a Markdown table.
pub fn verdict_table(verdicts: &[Verdict]) -> String {
    let mut out = String::from("| target | measured | goal | met |\n|---|---:|---:|:---:|\n");
    for v in verdicts {
        let met = match v.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {met} |",
            v.what, v.measured, v.target
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, relays: u64, per_cpu: f64, p99: f64) -> Report {
        Report {
            scenario: "relay".into(),
            label: label.into(),
            target: label.into(),
            transport: "ws".into(),
            pairs: Some(50),
            relays,
            relays_per_server_cpu_s: Some(per_cpu),
            latency_us: Some(Percentiles {
                p99,
                ..Percentiles::default()
            }),
            ..Report::default()
        }
    }

    #[test]
    fn repeated_runs_collapse_into_the_median_of_each_figure() {
        let reports = [
            run("switchboard", 10, 3.0, 900.0),
            run("bare", 7, 1.0, 100.0),
            run("switchboard", 30, 1.0, 400.0),
            run("switchboard", 20, 2.0, 500.0),
        ];
        let collapsed = medians(&reports);
        assert_eq!(collapsed.len(), 2);
        let sb = &collapsed[0];
        assert_eq!((sb.label.as_str(), sb.runs), ("switchboard", 3));
        assert_eq!(sb.relays, 20);
        assert_eq!(sb.relays_per_server_cpu_s, Some(2.0));
        assert_eq!(sb.latency_us.as_ref().map(|p| p.p99), Some(500.0));
        assert_eq!(
            (collapsed[1].label.as_str(), collapsed[1].runs),
            ("bare", 1)
        );
        assert_eq!(collapsed[1].relays, 7);
    }
}

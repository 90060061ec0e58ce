//! What the benchmark programs share: the confluent-kafka workload, CPU
//! and memory readings from `/proc`, medians and spreads.

use std::{path::Path, process::Command};

use serde_json::Value;

/// The workload script (`acceptance/clients/bench_workload.py`).
pub const WORKLOAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/bench_workload.py");

/// Runs the workload against `bootstrap` (over TLS trusting `ca` when
/// given); its JSON result. Panics if the workload fails.
pub fn workload(
    bootstrap: &str,
    topic: &str,
    records: usize,
    samples: usize,
    ca: Option<&Path>,
) -> Value {
    let mut command = Command::new("python3");
    command.args([
        WORKLOAD,
        bootstrap,
        topic,
        &records.to_string(),
        &samples.to_string(),
    ]);
    if let Some(ca) = ca {
        command.arg(ca);
    }
    let out = command.output().expect("python3");
    assert!(
        out.status.success(),
        "workload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("workload JSON")
}

/// The kernel's clock ticks per second (`/proc/<pid>/stat` counts in them).
fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(ticks > 0, "sysconf(_SC_CLK_TCK) failed");
    ticks as f64
}

/// (user + system CPU seconds, peak RSS MiB) of a process; panics if
/// `/proc` cannot be read or parsed (a zero would look like a result).
pub fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/stat: {e}"));
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_else(|| panic!("/proc/{pid}/stat has no command name: {stat}"));
    let ticks = |i: usize| -> f64 {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("/proc/{pid}/stat field {i} unreadable: {stat}"))
    };
    // After the command name: state is field 0, utime 11, stime 12.
    let cpu = (ticks(11) + ticks(12)) / clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no VmHWM"));
    (cpu, hwm / 1024.0)
}

/// The median of `v` (NaN-free).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// (min, max) of `v`.
pub fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// One sample of the throughput workload against one target: produce
/// r/s, consume r/s, p50 ms and the proxy's CPU seconds per GB moved.
pub type Sample = [f64; 4];

/// Warms up, then runs `records` records of the workload against
/// `bootstrap` (topic `bench`), reading the proxy `pid`'s CPU around it;
/// prints and returns the sample (`gigabytes`: what the run moves).
pub fn measure(
    round: usize,
    name: &str,
    bootstrap: &str,
    pid: u32,
    records: usize,
    gigabytes: f64,
) -> Sample {
    workload(bootstrap, "warm-up", 5_000, 50, None);
    let before = usage(pid);
    let v = workload(bootstrap, "bench", records, 500, None);
    let after = usage(pid);
    let f = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("workload printed no {k}: {v}"))
    };
    let sample = [
        f("produce_rps"),
        f("consume_rps"),
        f("p50_ms"),
        (after.0 - before.0) / gigabytes,
    ];
    println!(
        "round {} {:<11} produce {:>9.0} r/s  consume {:>9.0} r/s  p50 {:.3} ms  CPU {:.2} s/GB",
        round + 1,
        name,
        sample[0],
        sample[1],
        sample[2],
        sample[3]
    );
    sample
}

/// Prints each target's medians (with the produce and consume spreads)
/// and returns them, in the order of `names`.
pub fn summarize(names: &[&str], samples: &[Vec<Sample>]) -> Vec<Sample> {
    println!(
        "\n{:<11} {:>24} {:>24} {:>8} {:>9}",
        "target", "produce r/s (min-max)", "consume r/s (min-max)", "p50 ms", "CPU s/GB"
    );
    names
        .iter()
        .zip(samples)
        .map(|(name, samples)| {
            let column = |k: usize| samples.iter().map(|s| s[k]).collect::<Vec<f64>>();
            let m = [0, 1, 2, 3].map(|k| median(column(k)));
            let (pl, ph) = spread(&column(0));
            let (cl, ch) = spread(&column(1));
            println!(
                "{:<11} {:>9.0} ({:.0}-{:.0}) {:>9.0} ({:.0}-{:.0}) {:>8.3} {:>9.2}",
                name, m[0], pl, ph, m[1], cl, ch, m[2], m[3]
            );
            m
        })
        .collect()
}

/// A benchmark setting from the environment (`SLUICE_BENCH_RECORDS`,
/// say), or `default` when unset or not a number.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

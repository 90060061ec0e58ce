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

//! Throughput and latency benchmark (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench throughput`
//!
//! Runs one workload (`acceptance/clients/bench_workload.py`: 1 KiB
//! records, acks=1, 3 partitions, a fixed record count produced and
//! consumed with confluent-kafka, then sequential single-record produce
//! round trips) against (a) tansu directly, (b) HAProxy in TCP mode
//! (Debian's `haproxy`, the L4 limit) and (c) a Sluice passthrough virtual
//! cluster, side by side in one invocation.
//!
//! To measure the targets rather than the run order: every round starts a
//! fresh broker of the same build for each target, warms each target up
//! the same way, and runs the targets in a rotated order (round r starts
//! with target r mod 3). `SLUICE_BENCH_ROUNDS` rounds (default 3, at least
//! 3) are reported one by one and as median and spread; ratios are taken
//! of the medians. An extra hop measured faster than direct is flagged as
//! noise, not reported as a result. CPU comes from `/proc` with the real
//! clock-tick rate; a reading that fails stops the benchmark.
//! `SLUICE_BENCH_RECORDS` sets the record count (default 100000).

use serde_json::Value;
use sluice_acceptance::{
    bench::{median, spread, usage, workload},
    targets::Target,
};

/// Records each target is warmed up with before it is measured.
const WARM_UP: usize = 5_000;

fn run(bootstrap: &str, topic: &str, records: usize, samples: usize) -> Value {
    workload(bootstrap, topic, records, samples, None)
}

/// One measurement.
struct Sample {
    produce_rps: f64,
    produce_mbps: f64,
    consume_rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_s_per_gb: Option<f64>,
    rss_mib: Option<f64>,
}

#[tokio::main]
async fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let records = env("SLUICE_BENCH_RECORDS", 100_000);
    let rounds = env("SLUICE_BENCH_ROUNDS", 3).max(3);
    let gigabytes = (records * 1024 * 2) as f64 / 1e9;
    println!(
        "sluice throughput benchmark: {records} records of 1 KiB, acks=1, 3 partitions; \
         500 sequential produce round trips; {rounds} rounds, fresh brokers, rotated order"
    );
    let mut samples: [Vec<Sample>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        for step in 0..3 {
            let i = (round + step) % 3;
            let target = Target::start(i).await;
            let bootstrap = target.bootstrap();
            run(&bootstrap, "warm-up", WARM_UP, 50);
            let before = target.proxy_pid().map(usage);
            let v = run(&bootstrap, "bench", records, 500);
            let after = target.proxy_pid().map(usage);
            let f = |k: &str| {
                v[k].as_f64()
                    .unwrap_or_else(|| panic!("workload printed no {k}: {v}"))
            };
            let sample = Sample {
                produce_rps: f("produce_rps"),
                produce_mbps: f("produce_mbps"),
                consume_rps: f("consume_rps"),
                p50_ms: f("p50_ms"),
                p99_ms: f("p99_ms"),
                cpu_s_per_gb: before.zip(after).map(|(b, a)| (a.0 - b.0) / gigabytes),
                rss_mib: after.map(|a| a.1),
            };
            println!(
                "round {} {:<8} produce {:>9.0} r/s {:>7.1} MB/s  consume {:>8.0} r/s  p50 {:.3} ms  p99 {:.3} ms  CPU {}  RSS {}",
                round + 1,
                Target::NAMES[i],
                sample.produce_rps,
                sample.produce_mbps,
                sample.consume_rps,
                sample.p50_ms,
                sample.p99_ms,
                sample
                    .cpu_s_per_gb
                    .map_or("-".into(), |c| format!("{c:.2} s/GB")),
                sample.rss_mib.map_or("-".into(), |r| format!("{r:.1} MiB")),
            );
            samples[i].push(sample);
            drop(target);
        }
    }

    println!(
        "\n{:<8} {:>22} {:>22} {:>16} {:>16} {:>10} {:>9}",
        "target",
        "produce r/s (min-max)",
        "consume r/s (min-max)",
        "p50 ms",
        "p99 ms",
        "CPU s/GB",
        "peak RSS"
    );
    let mut medians = [[0.0f64; 4]; 3];
    for (i, name) in Target::NAMES.iter().enumerate() {
        let column = |get: fn(&Sample) -> f64| samples[i].iter().map(get).collect::<Vec<f64>>();
        let produce = column(|s| s.produce_rps);
        let consume = column(|s| s.consume_rps);
        let p50 = column(|s| s.p50_ms);
        let p99 = column(|s| s.p99_ms);
        let cpu: Vec<f64> = samples[i].iter().filter_map(|s| s.cpu_s_per_gb).collect();
        let rss: Vec<f64> = samples[i].iter().filter_map(|s| s.rss_mib).collect();
        medians[i] = [
            median(produce.clone()),
            median(consume.clone()),
            median(p50.clone()),
            median(p99.clone()),
        ];
        let (pl, ph) = spread(&produce);
        let (cl, ch) = spread(&consume);
        println!(
            "{:<8} {:>8.0} ({:.0}-{:.0}) {:>8.0} ({:.0}-{:.0}) {:>6.3} ({:.3}-{:.3}) {:>6.3} ({:.3}-{:.3}) {:>10} {:>9}",
            name,
            medians[i][0],
            pl,
            ph,
            medians[i][1],
            cl,
            ch,
            medians[i][2],
            spread(&p50).0,
            spread(&p50).1,
            medians[i][3],
            spread(&p99).0,
            spread(&p99).1,
            if cpu.is_empty() {
                "-".into()
            } else {
                format!("{:.2}", median(cpu))
            },
            if rss.is_empty() {
                "-".into()
            } else {
                format!("{:.1} MiB", spread(&rss).1)
            },
        );
    }
    let [direct, haproxy, sluice] = medians;
    let ratio = |a: f64, b: f64| a / b.max(1e-9);
    for (name, hop) in [("haproxy", haproxy), ("sluice", sluice)] {
        for (what, k) in [("produce", 0), ("consume", 1)] {
            if hop[k] > direct[k] {
                println!(
                    "noise: {name} {what} median is {:.2}x direct; an extra hop cannot be faster, so this ratio is not a result",
                    ratio(hop[k], direct[k])
                );
            }
        }
    }
    println!(
        "medians, sluice/direct:  produce {:.2}x  consume {:.2}x  p99 {:+.3} ms",
        ratio(sluice[0], direct[0]),
        ratio(sluice[1], direct[1]),
        sluice[3] - direct[3]
    );
    println!(
        "medians, sluice/haproxy: produce {:.2}x  consume {:.2}x  p99 {:+.3} ms",
        ratio(sluice[0], haproxy[0]),
        ratio(sluice[1], haproxy[1]),
        sluice[3] - haproxy[3]
    );
}

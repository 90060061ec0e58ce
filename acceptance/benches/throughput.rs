//! Throughput and latency benchmark (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench throughput`
//!
//! Runs one workload (`acceptance/clients/bench_workload.py`: 1 KiB
//! records, acks=1, 3 partitions, a fixed record count produced and
//! consumed with confluent-kafka, then sequential single-record produce
//! round trips) side by side in one invocation against (a) tansu directly,
//! (b) HAProxy in TCP mode (Debian's `haproxy`, the L4 limit) and (c) a
//! Sluice passthrough virtual cluster, and prints records/s, MB/s, produce
//! latency p50/p99, the proxies' CPU seconds per GB and peak RSS, and the
//! ratios Sluice/direct and Sluice/HAProxy. `SLUICE_BENCH_RECORDS` sets the
//! record count (default 100000).

use std::process::Command;

use serde_json::Value;
use sluice_acceptance::{
    broker::{Tansu, free_port},
    process::Process,
    stack::Stack,
};

const WORKLOAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/bench_workload.py");

fn run(bootstrap: &str, topic: &str, records: usize) -> Value {
    let out = Command::new("python3")
        .args([WORKLOAD, bootstrap, topic, &records.to_string(), "500"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "workload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("workload JSON")
}

/// (user + system CPU seconds, peak RSS MiB) of a process.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks of 1/100 s).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

#[tokio::main]
async fn main() {
    let records: usize = std::env::var("SLUICE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let gigabytes = (records * 1024 * 2) as f64 / 1e9;

    // (a) and (c): one tansu, reached directly and through Sluice.
    let stack = Stack::start(&["bench-direct", "bench-sluice"]).await;
    // (b): a second tansu that advertises HAProxy's address.
    let haproxy_port = free_port("127.0.0.1");
    let behind = Tansu::start_advertised("127.0.0.3", Some(&format!("127.0.0.1:{haproxy_port}")));
    behind.create_topic("bench-haproxy", 3);
    let config = stack.dir.path().join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\n\
             frontend kafka\n  bind 127.0.0.1:{haproxy_port}\n  default_backend tansu\n\
             backend tansu\n  server tansu {}\n",
            behind.address
        ),
    )
    .expect("haproxy.cfg");
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&config);
    let haproxy = Process::spawn(command, "haproxy");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", haproxy_port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let direct = run(&stack.tansu.address, "bench-direct", records);
    let before = usage(haproxy.pid());
    let l4 = run(
        &format!("127.0.0.1:{haproxy_port}"),
        "bench-haproxy",
        records,
    );
    let (l4_cpu, l4_rss) = usage(haproxy.pid());
    let before_sluice = usage(stack.proxy.pid());
    let sluice = run(&stack.bootstrap(), "bench-sluice", records);
    let (sluice_cpu, sluice_rss) = usage(stack.proxy.pid());

    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    println!(
        "sluice throughput benchmark: {records} records of 1 KiB, acks=1, 3 partitions; 500 sequential produce round trips"
    );
    println!(
        "{:<10} {:>12} {:>9} {:>12} {:>9} {:>8} {:>8} {:>10} {:>9}",
        "target",
        "produce r/s",
        "MB/s",
        "consume r/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "CPU s/GB",
        "peak RSS"
    );
    let row = |name: &str, v: &Value, cpu: Option<f64>, rss: Option<f64>| {
        println!(
            "{:<10} {:>12.0} {:>9.1} {:>12.0} {:>9.1} {:>8.3} {:>8.3} {:>10} {:>9}",
            name,
            f(v, "produce_rps"),
            f(v, "produce_mbps"),
            f(v, "consume_rps"),
            f(v, "consume_mbps"),
            f(v, "p50_ms"),
            f(v, "p99_ms"),
            cpu.map_or("-".to_string(), |c| format!("{:.2}", c / gigabytes)),
            rss.map_or("-".to_string(), |r| format!("{r:.1} MiB")),
        );
    };
    row("direct", &direct, None, None);
    row("haproxy", &l4, Some(l4_cpu - before.0), Some(l4_rss));
    row(
        "sluice",
        &sluice,
        Some(sluice_cpu - before_sluice.0),
        Some(sluice_rss),
    );
    let ratio = |k: &str, base: &Value| f(&sluice, k) / f(base, k).max(1e-9);
    println!(
        "sluice/direct:  produce {:.2}x  consume {:.2}x  p99 +{:.3} ms",
        ratio("produce_rps", &direct),
        ratio("consume_rps", &direct),
        f(&sluice, "p99_ms") - f(&direct, "p99_ms")
    );
    println!(
        "sluice/haproxy: produce {:.2}x  consume {:.2}x  p99 +{:.3} ms",
        ratio("produce_rps", &l4),
        ratio("consume_rps", &l4),
        f(&sluice, "p99_ms") - f(&l4, "p99_ms")
    );
    drop(haproxy);
    drop(behind);
}

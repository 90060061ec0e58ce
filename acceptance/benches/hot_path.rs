//! Hot-path benchmark with a compiled client (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench hot_path`
//!
//! The load comes from librdkafka through the `rdkafka` crate, in this
//! process (no Python competing for the two cores), against tansu
//! directly, HAProxy in TCP mode and a Sluice passthrough virtual cluster,
//! side by side in one run (rotated order, a fresh broker per target and
//! round). For each target it measures:
//! - a matrix of 1, 16 and 128 producers (each its own client and
//!   connections) × 100 B, 1 KiB and 64 KiB records, acks=1, linger 5 ms:
//!   records/s, MB/s and the proxy's CPU seconds per GB produced;
//! - one consumer reading the 1 KiB cell back: records/s and CPU s/GB;
//! - connection setup: new connections per second to a first ApiVersions
//!   answer (64 at a time).
//!
//! Produce latency stays with the `throughput` benchmark: librdkafka's
//! delivery reports reach this process in 100 ms steps whatever the
//! broker's round trip, so they cannot time one.
//!
//! `SLUICE_BENCH_MIB` (default 128) is the data each matrix cell produces;
//! `SLUICE_BENCH_ROUNDS` (default 1) how many rounds. With
//! `SLUICE_BENCH_PERF=FILE`, `perf record` (cpu-clock, 999 Hz) samples
//! `sluice-proxy` through its target's whole measurement into FILE and the
//! hottest symbols are printed (`perf report --no-children`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rdkafka::{
    ClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    error::{KafkaError, RDKafkaErrorCode},
    producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext},
    util::Timeout,
};
use sluice_acceptance::{
    bench::{median, setting, usage},
    targets::Target,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const CONNECTIONS: [usize; 3] = [1, 16, 128];
const SIZES: [usize; 3] = [100, 1024, 65536];
/// Connections opened for the setup rate, and how many at a time.
const SETUPS: usize = 2000;
const SETUP_PARALLEL: usize = 64;
/// ApiVersions v0 (header v1, client id "bench"), correlation id 1.
const API_VERSIONS: [u8; 19] = [
    0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 1, 0, 5, b'b', b'e', b'n', b'c', b'h',
];

/// Counts what the broker acknowledged.
#[derive(Default)]
struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = match result {
            Ok(_) => &self.delivered,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn producer(bootstrap: &str, linger_ms: u32) -> BaseProducer<Counting> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", linger_ms.to_string())
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.kbytes", "65536")
        .set("message.max.bytes", "1048576")
        .create_with_context(Counting::default())
        .expect("create producer")
}

/// Sends `count` records of `payload` to `topic`, waiting out full queues.
fn send_all(p: &BaseProducer<Counting>, topic: &str, payload: &[u8], count: usize) {
    for _ in 0..count {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(payload);
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    p.poll(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("produce failed: {e}"),
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Timeout::After(Duration::from_secs(120)))
        .expect("flush");
}

/// `producers` clients produce `bytes` in records of `size` together,
/// once connected; (seconds, records delivered, the proxy's CPU seconds
/// meanwhile).
fn produce(
    bootstrap: &str,
    topic: &str,
    (producers, size, bytes): (usize, usize, usize),
    cpu: &dyn Fn() -> Option<f64>,
) -> (f64, u64, Option<f64>) {
    let per = (bytes / size / producers).max(1);
    let clients: Vec<_> = (0..producers).map(|_| producer(bootstrap, 5)).collect();
    // Connected and knowing the topic before the clock starts.
    for c in &clients {
        c.client()
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .expect("metadata");
    }
    let payload = vec![b'x'; size];
    // The proxy's CPU from here: connecting the clients is not the hot path.
    let before = cpu();
    let started = Instant::now();
    std::thread::scope(|s| {
        for c in &clients {
            let payload = &payload;
            s.spawn(move || send_all(c, topic, payload, per));
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let spent = before.zip(cpu()).map(|(b, a)| a - b);
    let (delivered, failed) = clients.iter().fold((0, 0), |(d, f), c| {
        let ctx = c.context();
        (
            d + ctx.delivered.load(Ordering::Relaxed),
            f + ctx.failed.load(Ordering::Relaxed),
        )
    });
    assert_eq!(failed, 0, "{failed} records failed");
    assert_eq!(
        delivered,
        (per * producers) as u64,
        "not every record was delivered"
    );
    (secs, delivered, spent)
}

/// Reads `count` records of `topic` from the start; seconds.
fn consume(bootstrap: &str, topic: &str, count: u64) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut seen = 0u64;
    while seen < count {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "consumed {seen} of {count}"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.expect("consume");
            seen += 1;
        }
    }
    started.elapsed().as_secs_f64()
}

/// New connections per second to a first ApiVersions answer.
async fn setup_rate(bootstrap: &str) -> f64 {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..SETUP_PARALLEL {
        let (bootstrap, next) = (bootstrap.to_string(), next.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < SETUPS as u64 {
                let mut s = TcpStream::connect(&bootstrap).await.expect("connect");
                s.write_all(&API_VERSIONS).await.expect("ask");
                let mut len = [0u8; 4];
                s.read_exact(&mut len).await.expect("answer");
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                s.read_exact(&mut body).await.expect("answer body");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("setup task");
    }
    SETUPS as f64 / started.elapsed().as_secs_f64()
}

/// One target's figures.
#[derive(Default, Clone)]
struct Figures {
    /// (records/s, MB/s, proxy CPU s/GB) per matrix cell, in matrix order.
    cells: Vec<(f64, f64, Option<f64>)>,
    consume_rps: f64,
    consume_cpu: Option<f64>,
    setups: f64,
}

async fn measure(target: &Target, mib: usize) -> Figures {
    let bootstrap = target.bootstrap();
    let cpu = || target.proxy_pid().map(|pid| usage(pid).0);
    let mut f = Figures::default();
    for (c, producers) in CONNECTIONS.iter().enumerate() {
        for (s, size) in SIZES.iter().enumerate() {
            let topic = format!("cell-{c}-{s}");
            target.broker().create_topic(&topic, 3);
            let (secs, records, spent) =
                produce(&bootstrap, &topic, (*producers, *size, mib << 20), &cpu);
            let bytes = records as f64 * *size as f64;
            let cpu_per_gb = spent.map(|s| s / (bytes / 1e9));
            f.cells
                .push((records as f64 / secs, bytes / secs / 1e6, cpu_per_gb));
            if *producers == 1 && *size == 1024 {
                let before = cpu();
                let secs = consume(&bootstrap, &topic, records);
                f.consume_rps = records as f64 / secs;
                f.consume_cpu = before.zip(cpu()).map(|(b, a)| (a - b) / (bytes / 1e9));
            }
        }
    }
    f.setups = setup_rate(&bootstrap).await;
    f
}

/// Starts `perf record` on `pid` (cpu-clock: works without hardware
/// counters, as in most VMs).
fn profile(pid: u32, file: &str) -> std::process::Child {
    std::process::Command::new("perf")
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "999",
            "-g",
            "-o",
            file,
            "-p",
        ])
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("perf record (Debian: linux-perf)")
}

/// Stops the recording and prints the hottest symbols.
fn report(mut recorder: std::process::Child, file: &str) {
    // SAFETY: signals a child this process started and still owns.
    unsafe {
        libc::kill(recorder.id() as i32, libc::SIGINT);
    }
    let _ = recorder.wait();
    let out = std::process::Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "dso,symbol",
            "-g",
            "none",
            "-i",
            file,
        ])
        .output()
        .expect("perf report");
    println!("\nsluice-proxy profile (self time, top 30):");
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(30)
    {
        println!("  {line}");
    }
}

fn cpu_text(c: Option<f64>) -> String {
    c.map_or("-".into(), |c| format!("{c:.2}"))
}

#[tokio::main]
async fn main() {
    let mib = setting("SLUICE_BENCH_MIB", 128);
    let rounds = setting("SLUICE_BENCH_ROUNDS", 1).max(1);
    println!(
        "sluice hot-path benchmark (librdkafka {}): {mib} MiB per cell, acks=1, linger 5 ms, 3 partitions; {rounds} round(s)",
        rdkafka::util::get_rdkafka_version().1
    );
    let mut all: [Vec<Figures>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        for step in 0..3 {
            let i = (round + step) % 3;
            let target = Target::start(i).await;
            let perf = std::env::var("SLUICE_BENCH_PERF")
                .ok()
                .filter(|_| i == 2 && round == 0)
                .and_then(|file| Some((profile(target.proxy_pid()?, &file), file)));
            let f = measure(&target, mib).await;
            if let Some((recorder, file)) = perf {
                report(recorder, &file);
            }
            println!("round {} {} done", round + 1, Target::NAMES[i]);
            all[i].push(f);
        }
    }
    // Medians over rounds, cell by cell.
    let med = |i: usize, get: &dyn Fn(&Figures) -> f64| median(all[i].iter().map(get).collect());
    let med_opt = |i: usize, get: &dyn Fn(&Figures) -> Option<f64>| {
        let v: Vec<f64> = all[i].iter().filter_map(get).collect();
        (!v.is_empty()).then(|| median(v))
    };
    println!(
        "\n{:<11} {:<7} | {:>21} | {:>21} | {:>21} | {:>16}",
        "producers",
        "record",
        "direct MB/s",
        "haproxy MB/s CPU s/GB",
        "sluice MB/s CPU s/GB",
        "sluice/haproxy"
    );
    for (c, producers) in CONNECTIONS.iter().enumerate() {
        for (s, size) in SIZES.iter().enumerate() {
            let k = c * SIZES.len() + s;
            let mbps = |i| med(i, &|f: &Figures| f.cells[k].1);
            let cpu = |i| med_opt(i, &|f: &Figures| f.cells[k].2);
            let (h, l) = (mbps(1), mbps(2));
            println!(
                "{:<11} {:<7} | {:>21.1} | {:>12.1} {:>8} | {:>12.1} {:>8} | {:>7.2}x {:>7}",
                producers,
                size,
                mbps(0),
                h,
                cpu_text(cpu(1)),
                l,
                cpu_text(cpu(2)),
                l / h,
                match (cpu(2), cpu(1)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x cpu", a / b),
                    _ => "-".into(),
                }
            );
        }
    }
    println!();
    for (i, name) in Target::NAMES.iter().enumerate() {
        println!(
            "{name:<8} consume {:>9.0} r/s (CPU {} s/GB)  setup {:>7.0} conn/s",
            med(i, &|f| f.consume_rps),
            cpu_text(med_opt(i, &|f| f.consume_cpu)),
            med(i, &|f| f.setups),
        );
    }
}

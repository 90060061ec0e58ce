//! TLS termination benchmark (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench tls`
//!
//! Side by side in one invocation, each round with fresh brokers and the
//! targets in a rotated order: (a) HAProxy terminating TLS in TCP mode
//! (`bind ... ssl crt`, Debian's `haproxy`) in front of tansu, (b) a
//! Sluice listener terminating TLS (`listener_policy_tls_server`) and
//! (c) the same Sluice stack in plaintext. The workload is
//! `acceptance/clients/bench_workload.py` (confluent-kafka, 1 KiB
//! records; TLS trusting the test CA). Then TLS handshakes per second:
//! `SLUICE_BENCH_HANDSHAKES` (default 2000) full handshakes (no session
//! resumption), 8 at a time, from a rustls client in this process, and
//! the terminator's CPU per 1,000 handshakes. `SLUICE_BENCH_RECORDS`
//! (default 100000) and `SLUICE_BENCH_ROUNDS` (default 3) as in the
//! throughput benchmark.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use sluice_acceptance::{
    bench::{median, spread, usage, workload},
    broker::{Tansu, free_port},
    haproxy::Haproxy,
    pki::{Ca, Usage},
    stack::{Stack, create},
};
use sluice_proto::admin::v1::{Kind, ListEntitiesRequest, ListenerPolicyTlsServer, entity::Spec};

const WARM_UP: usize = 5_000;
const NAMES: [&str; 3] = ["haproxy-tls", "sluice-tls", "sluice-plain"];

/// One target of one round (dropping it stops its processes).
enum Target {
    Haproxy {
        _broker: Tansu,
        haproxy: Haproxy,
        port: u16,
    },
    Sluice(Box<Stack>),
}

impl Target {
    fn bootstrap(&self) -> String {
        match self {
            Target::Haproxy { port, .. } => format!("127.0.0.1:{port}"),
            Target::Sluice(stack) => stack.bootstrap(),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Target::Haproxy { haproxy, .. } => haproxy.pid(),
            Target::Sluice(stack) => stack.proxy.pid(),
        }
    }
}

async fn start(i: usize, dir: &Path, server: &sluice_acceptance::pki::Pair) -> Target {
    match i {
        0 => {
            let port = free_port("127.0.0.1");
            let tansu = Tansu::start_advertised("127.0.0.3", Some(&format!("127.0.0.1:{port}")));
            tansu.create_topic("bench", 3);
            tansu.create_topic("warm-up", 3);
            let pem = server.write_combined(dir, "haproxy");
            let haproxy = Haproxy::start(
                dir,
                "haproxy",
                &format!("127.0.0.1:{port} ssl crt {}", pem.display()),
                &tansu.address,
            );
            Target::Haproxy {
                _broker: tansu,
                haproxy,
                port,
            }
        }
        1 => {
            let mut stack = Stack::start(&["bench", "warm-up"]).await;
            let gw = stack.gateway.id.clone();
            let listener = stack
                .admin
                .list_entities(ListEntitiesRequest {
                    kind: Kind::Listener as i32,
                    gateway_id: gw.clone(),
                    ..Default::default()
                })
                .await
                .expect("list listeners")
                .into_inner()
                .entities
                .into_iter()
                .next()
                .expect("the stack's listener");
            create(
                &mut stack.admin,
                &gw,
                "tls",
                Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
                    listener_id: listener.id,
                    certificates: vec![server.to_proto()],
                    ..Default::default()
                }),
            )
            .await;
            Target::Sluice(Box::new(stack))
        }
        _ => Target::Sluice(Box::new(Stack::start(&["bench", "warm-up"]).await)),
    }
}

/// A rustls client configuration trusting the test CA.
fn client_config(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("CA")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every handshake a full one: what a fleet of new clients costs.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One TLS handshake to `address`; Err while the target is not ready.
async fn handshake(config: &Arc<rustls::ClientConfig>, address: &str) -> std::io::Result<()> {
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map(drop)
}

/// Full handshakes per second, `count` of them, 8 at a time.
async fn handshakes(config: &Arc<rustls::ClientConfig>, address: &str, count: usize) -> f64 {
    let started = Instant::now();
    let per_task = count / 8;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (config, address) = (config.clone(), address.to_string());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                handshake(&config, &address).await.expect("handshake");
            }
        }));
    }
    for task in tasks {
        task.await.expect("handshake task");
    }
    (per_task * 8) as f64 / started.elapsed().as_secs_f64()
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
    let count = env("SLUICE_BENCH_HANDSHAKES", 2000).max(8);
    let gigabytes = (records * 1024 * 2) as f64 / 1e9;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("sluice bench CA");
    let ca_file: PathBuf = ca.write(dir.path(), "ca");
    let server = ca.issue("bench", &["127.0.0.1", "localhost"], Usage::Server);
    let tls = client_config(&ca.cert);
    println!(
        "sluice TLS benchmark: {records} records of 1 KiB, acks=1, 3 partitions; 500 sequential produce round trips; \
         {count} full TLS handshakes 8 at a time; {rounds} rounds, fresh brokers, rotated order"
    );
    // Per target: (produce MB/s, p99 ms, CPU s/GB, handshakes/s, CPU s per 1,000 handshakes).
    let mut results: [Vec<[f64; 5]>; 3] = Default::default();
    for round in 0..rounds {
        for step in 0..3 {
            let i = (round + step) % 3;
            let target = start(i, dir.path(), &server).await;
            let bootstrap = target.bootstrap();
            let over_tls = i < 2;
            if over_tls {
                // Ready once a handshake succeeds (the policy is applied).
                let ready = tokio::time::timeout(Duration::from_secs(30), async {
                    while handshake(&tls, &bootstrap).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                })
                .await;
                assert!(ready.is_ok(), "{}: no TLS handshake within 30 s", NAMES[i]);
            }
            let ca = over_tls.then_some(ca_file.as_path());
            workload(&bootstrap, "warm-up", WARM_UP, 50, ca);
            let before = usage(target.pid());
            let v = workload(&bootstrap, "bench", records, 500, ca);
            let after = usage(target.pid());
            let f = |k: &str| {
                v[k].as_f64()
                    .unwrap_or_else(|| panic!("workload printed no {k}: {v}"))
            };
            let (rate, per_thousand) = if over_tls {
                let before = usage(target.pid()).0;
                let rate = handshakes(&tls, &bootstrap, count).await;
                let cpu = usage(target.pid()).0 - before;
                (rate, cpu / (count as f64 / 1000.0))
            } else {
                (f64::NAN, f64::NAN)
            };
            let sample = [
                f("produce_mbps"),
                f("p99_ms"),
                (after.0 - before.0) / gigabytes,
                rate,
                per_thousand,
            ];
            println!(
                "round {} {:<12} produce {:>7.1} MB/s  p99 {:.3} ms  CPU {:.2} s/GB  handshakes {:>7.0}/s  CPU {:.3} s/1000 handshakes",
                round + 1,
                NAMES[i],
                sample[0],
                sample[1],
                sample[2],
                sample[3],
                sample[4]
            );
            results[i].push(sample);
            drop(target);
        }
    }
    println!(
        "\n{:<12} {:>22} {:>10} {:>10} {:>16} {:>18}",
        "target", "produce MB/s (min-max)", "p99 ms", "CPU s/GB", "handshakes/s", "CPU s/1000 hs"
    );
    let mut medians = [[0.0f64; 5]; 3];
    for (i, name) in NAMES.iter().enumerate() {
        for (k, m) in medians[i].iter_mut().enumerate() {
            *m = median(results[i].iter().map(|s| s[k]).collect());
        }
        let produce: Vec<f64> = results[i].iter().map(|s| s[0]).collect();
        let (lo, hi) = spread(&produce);
        println!(
            "{:<12} {:>8.1} ({:.1}-{:.1}) {:>10.3} {:>10.2} {:>16.0} {:>18.3}",
            name, medians[i][0], lo, hi, medians[i][1], medians[i][2], medians[i][3], medians[i][4]
        );
    }
    let [haproxy, sluice_tls, sluice_plain] = medians;
    println!(
        "medians, sluice-tls/haproxy-tls: produce {:.2}x  p99 {:+.3} ms  CPU/GB {:.2}x  handshakes/s {:.2}x  CPU/handshake {:.2}x",
        sluice_tls[0] / haproxy[0],
        sluice_tls[1] - haproxy[1],
        sluice_tls[2] / haproxy[2],
        sluice_tls[3] / haproxy[3],
        sluice_tls[4] / haproxy[4]
    );
    println!(
        "medians, sluice-tls/sluice-plain: produce {:.2}x  CPU/GB {:.2}x",
        sluice_tls[0] / sluice_plain[0],
        sluice_tls[2] / sluice_plain[2]
    );
}

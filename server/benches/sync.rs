//! Sync fan-out benchmark (a program, not a timed test):
//!
//! `cargo bench -p sluice-server --bench sync`
//!
//! Starts a real `sluice-server`, opens N node streams over mTLS (1, 100,
//! 1000) from this process, and for single-entity admin writes measures the
//! time until every node has received and ACKed the change. Then compares
//! the bytes of one delta with a full snapshot of a 1,000-entity gateway,
//! and reads the server's resident memory with 1,000 streams open.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use prost::Message;
use sluice_acceptance::{
    node::{self, Node, NodeCerts},
    server::{self, Admin, Server},
};
use sluice_proto::admin::v1::{
    BackendCluster, CreateEntityRequest, Entity, Gateway, UpdateEntityRequest, entity::Spec,
};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_sluice-server");

fn backend(gateway_id: &str, name: &str) -> Entity {
    Entity {
        gateway_id: gateway_id.into(),
        name: name.into(),
        spec: Some(Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec!["127.0.0.1:9092".into(), "127.0.0.1:9093".into()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn create(admin: &mut Admin, e: Entity) -> Entity {
    admin
        .create_entity(CreateEntityRequest { entity: Some(e) })
        .await
        .expect("create")
        .into_inner()
}

async fn gateway_with_cert(admin: &mut Admin, dir: &Path, name: &str) -> (Entity, NodeCerts) {
    let gw = create(
        admin,
        Entity {
            name: name.into(),
            spec: Some(Spec::Gateway(Gateway::default())),
            ..Default::default()
        },
    )
    .await;
    let certs = node::issue(Path::new(BIN), dir, name, &dir.join(name));
    (gw, certs)
}

/// Opens `n` nodes that ACK everything and report (node, revision).
async fn open_nodes(
    addr: &str,
    certs: &NodeCerts,
    n: usize,
) -> (
    Vec<tokio::task::JoinHandle<()>>,
    mpsc::UnboundedReceiver<(usize, i64)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let certs = Arc::new(NodeCerts {
        ca: certs.ca.clone(),
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        id: certs.id.clone(),
    });
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let tx = tx.clone();
        let certs = certs.clone();
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut node = None;
            for _ in 0..50 {
                match Node::connect(&addr, &certs, node::hello(&format!("bench-{i}"), 0)).await {
                    Ok(n) => {
                        node = Some(n);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            let mut node = node.expect("node could not connect");
            while let Ok(Some(update)) = node.next().await {
                node.ack(&update).await;
                if tx.send((i, update.revision)).is_err() {
                    break;
                }
            }
        }));
    }
    (tasks, rx)
}

/// How long every node together may go without reporting an ACK before
/// the benchmark fails (a node task that died would otherwise hang it).
const STALL: Duration = Duration::from_secs(60);

/// Waits until every one of `n` nodes reported `revision` or later.
async fn all_at(rx: &mut mpsc::UnboundedReceiver<(usize, i64)>, at: &mut [i64], revision: i64) {
    let mut done = at.iter().filter(|r| **r >= revision).count();
    while done < at.len() {
        let (i, r) = match tokio::time::timeout(STALL, rx.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) => panic!("every node task ended before revision {revision}"),
            Err(_) => panic!(
                "{} of {} nodes did not reach revision {revision} within {STALL:?} (a node task died or the server stalled)",
                at.len() - done,
                at.len()
            ),
        };
        if at[i] < revision && r >= revision {
            done += 1;
        }
        at[i] = at[i].max(r);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no VmRSS"));
    kb / 1024.0
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = server::create_token(Path::new(BIN), dir.path());
    let server = Server::start(Path::new(BIN), dir.path(), &[]);
    let mut admin = server.client(Some(&token)).await;
    println!(
        "sluice sync benchmark: admin write -> ACK by every node (mTLS streams, one server process)"
    );
    println!(
        "{:>8} {:>8} {:>10} {:>10} {:>10}",
        "streams", "writes", "p50 ms", "p99 ms", "server RSS"
    );
    // 200 writes at every stream count, so the 99th percentile is a
    // percentile (the second-slowest write), not the slowest one.
    for (n, samples) in [(1usize, 200usize), (100, 200), (1000, 200)] {
        let (gw, certs) = gateway_with_cert(&mut admin, dir.path(), &format!("bench-{n}")).await;
        let target = create(&mut admin, backend(&gw.id, "target")).await;
        let (tasks, mut rx) = open_nodes(&server.sync_addr, &certs, n).await;
        let mut at = vec![0i64; n];
        all_at(&mut rx, &mut at, target.revision).await;
        let mut latencies = Vec::with_capacity(samples);
        let mut current = target.clone();
        for s in 0..samples {
            current.description = format!("sample {s}");
            let start = Instant::now();
            current = admin
                .update_entity(UpdateEntityRequest {
                    entity: Some(current.clone()),
                    expected_revision: 0,
                })
                .await
                .expect("update")
                .into_inner();
            all_at(&mut rx, &mut at, current.revision).await;
            latencies.push(start.elapsed());
        }
        latencies.sort();
        let rss = rss_mib(server.pid());
        println!(
            "{:>8} {:>8} {:>10.2} {:>10.2} {:>8.1} MiB",
            n,
            samples,
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            rss
        );
        for t in tasks {
            t.abort();
        }
    }

    // Delta vs snapshot bytes for a gateway of 1,000 entities, and the delta
    // of the same change in a gateway of one entity.
    let mut delta_bytes = Vec::new();
    let mut snapshot_bytes = Vec::new();
    for size in [1usize, 1000] {
        let (gw, certs) = gateway_with_cert(&mut admin, dir.path(), &format!("size-{size}")).await;
        let mut last = None;
        for i in 0..size {
            last = Some(create(&mut admin, backend(&gw.id, &format!("b{i:04}"))).await);
        }
        let mut node = Node::connect(&server.sync_addr, &certs, node::hello("sizer", 0))
            .await
            .expect("connect");
        let snapshot = node.update().await;
        node.ack(&snapshot).await;
        let mut changed = last.expect("an entity");
        changed.description = "changed".into();
        admin
            .update_entity(UpdateEntityRequest {
                entity: Some(changed),
                expected_revision: 0,
            })
            .await
            .expect("update");
        let delta = node.update().await;
        snapshot_bytes.push((size, snapshot.encoded_len()));
        delta_bytes.push((size, delta.encoded_len()));
    }
    println!();
    println!(
        "{:>22} {:>14} {:>14}",
        "gateway entities", "snapshot bytes", "delta bytes"
    );
    for ((size, s), (_, d)) in snapshot_bytes.iter().zip(&delta_bytes) {
        println!("{:>22} {:>14} {:>14}", size + 1, s, d);
    }
    drop(admin);
    server.stop();
}

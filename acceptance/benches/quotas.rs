//! Quota accounting benchmark (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench quotas`
//!
//! The throughput workload (`acceptance/clients/bench_workload.py`: 1 KiB
//! JSON records, acks=1, 3 partitions, produced and consumed with
//! confluent-kafka, then sequential single-record produce round trips)
//! through two virtual clusters of one Sluice stack on one broker, side by
//! side: `passthrough` (no policy) and `quota` (a per-principal quota on
//! produce bytes, fetch bytes, requests and connections, far above the
//! load: every request and answer is counted, nothing is throttled).
//! Each round starts a fresh stack and runs both in a rotated order;
//! `SLUICE_BENCH_ROUNDS` rounds (default 3), `SLUICE_BENCH_RECORDS`
//! records (default 100000). Prints rates, the proxy's CPU per GB moved,
//! and the ratios to passthrough (the goal: within 3%).

use sluice_acceptance::{
    bench::{measure, setting, summarize},
    stack::{Stack, create, expose_virtual_cluster, two_ports},
};
use sluice_proto::admin::v1::{ClusterPolicyQuota, QuotaPer, VirtualCluster, entity::Spec};

const NAMES: [&str; 2] = ["passthrough", "quota"];

#[tokio::main]
async fn main() {
    let records = setting("SLUICE_BENCH_RECORDS", 100_000);
    let rounds = setting("SLUICE_BENCH_ROUNDS", 3).max(1);
    let gigabytes = (records * 1024 * 2) as f64 / 1e9;
    println!(
        "sluice quota benchmark: {records} JSON records of 1 KiB, acks=1, 3 partitions, 500 \
         produce round trips; passthrough vs a virtual cluster with a quota far above the load; \
         {rounds} rounds, rotated order"
    );
    let mut samples: [Vec<[f64; 4]>; 2] = Default::default();
    for round in 0..rounds {
        let mut stack = Stack::start(&["bench", "warm-up"]).await;
        let gw = stack.gateway.id.clone();
        let ports = two_ports();
        let vc = VirtualCluster {
            destination_id: stack.backend.id.clone(),
            dns_label: "quota".into(),
            ..Default::default()
        };
        let (vc, _) = expose_virtual_cluster(&mut stack.admin, &gw, "quota", vc, ports).await;
        let quota = ClusterPolicyQuota {
            virtual_cluster_id: vc.id.clone(),
            produce_bytes_per_second: 100_000_000_000,
            fetch_bytes_per_second: 100_000_000_000,
            requests_per_second: 100_000_000,
            max_connections: 100_000,
            per: QuotaPer::Principal as i32,
            ..Default::default()
        };
        let policy = create(
            &mut stack.admin,
            &gw,
            "far-above",
            Spec::ClusterPolicyQuota(quota),
        )
        .await;
        stack
            .wait_applied(policy.revision, std::time::Duration::from_secs(30))
            .await;
        let bootstraps = [stack.bootstrap(), format!("127.0.0.1:{}", ports.0)];
        let pid = stack.proxy.pid();
        for step in 0..NAMES.len() {
            let i = (round + step) % NAMES.len();
            samples[i].push(measure(
                round,
                NAMES[i],
                &bootstraps[i],
                pid,
                records,
                gigabytes,
            ));
        }
    }
    let medians = summarize(&NAMES, &samples);
    let (pass, quota) = (medians[0], medians[1]);
    println!(
        "medians, quota/passthrough: produce {:.3}x  consume {:.3}x  p50 {:+.3} ms  CPU {:.2} \
         s/GB ({:+.2} s/GB)",
        quota[0] / pass[0].max(1e-9),
        quota[1] / pass[1].max(1e-9),
        quota[2] - pass[2],
        quota[3],
        quota[3] - pass[3],
    );
}

//! Namespace benchmark (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench namespace`
//!
//! The throughput workload (`acceptance/clients/bench_workload.py`: 1 KiB
//! records, acks=1, 3 partitions, produced and consumed with
//! confluent-kafka, then sequential single-record produce round trips)
//! through two virtual clusters of one Sluice stack on one broker, side
//! by side: `passthrough` (no namespace: requests and responses pass as
//! opaque bytes) and `hide_prefix` (every request decoded, its topics
//! renamed, re-encoded; every answer likewise) and `gateway_acls` (no
//! namespace; every request decoded and each topic, group and
//! transactional id decided by gateway ACLs whose policy has a CEL
//! condition on the principal). Each round starts a fresh stack and runs
//! the three in a rotated order; `SLUICE_BENCH_ROUNDS`
//! rounds (default 3), `SLUICE_BENCH_RECORDS` records (default 100000).
//! Prints rates, the proxy's CPU per GB moved, and the ratios.

use sluice_acceptance::{
    bench::{median, spread, usage, workload},
    stack::{Stack, create, expose_virtual_cluster, two_ports},
};
use sluice_proto::admin::v1::{
    AclAction, AclMode, AclOperation, AclResourceType, AclRule, ClusterPolicyAcls, Namespace,
    NamespaceMode, VirtualCluster, entity::Spec,
};

const NAMES: [&str; 3] = ["passthrough", "hide_prefix", "gateway_acls"];
const WARM_UP: usize = 5_000;

#[tokio::main]
async fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let records = env("SLUICE_BENCH_RECORDS", 100_000);
    let rounds = env("SLUICE_BENCH_ROUNDS", 3).max(1);
    let gigabytes = (records * 1024 * 2) as f64 / 1e9;
    println!(
        "sluice namespace benchmark: {records} records of 1 KiB, acks=1, 3 partitions, \
         500 produce round trips; passthrough vs hide_prefix vs gateway_acls virtual \
         clusters of one stack; {rounds} rounds, rotated order"
    );
    // [target] -> (produce r/s, consume r/s, p50 ms, CPU s/GB)
    let mut samples: [Vec<[f64; 4]>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        let mut stack = Stack::start(&["bench", "warm-up"]).await;
        for topic in ["team-a.bench", "team-a.warm-up"] {
            stack.tansu.create_topic(topic, 3);
        }
        let gw = stack.gateway.id.clone();
        let ports = two_ports();
        let vc = VirtualCluster {
            destination_id: stack.backend.id.clone(),
            dns_label: "tenant-ns".into(),
            namespace: Some(Namespace {
                mode: NamespaceMode::HidePrefix as i32,
                prefix: "team-a.".into(),
                additional: None,
            }),
            ..Default::default()
        };
        expose_virtual_cluster(&mut stack.admin, &gw, "tenant-ns", vc, ports).await;
        let acl_ports = two_ports();
        let vc = VirtualCluster {
            destination_id: stack.backend.id.clone(),
            dns_label: "tenant-acls".into(),
            acl_mode: AclMode::EnforceOnGateway as i32,
            ..Default::default()
        };
        let (acl_vc, _) =
            expose_virtual_cluster(&mut stack.admin, &gw, "tenant-acls", vc, acl_ports).await;
        let allow = |resource_type: AclResourceType, name: &str| AclRule {
            resource_type: resource_type as i32,
            action: AclAction::Allow as i32,
            operations: vec![AclOperation::All as i32],
            resource_names: vec![name.into()],
        };
        create(
            &mut stack.admin,
            &gw,
            "bench-acls",
            Spec::ClusterPolicyAcls(ClusterPolicyAcls {
                virtual_cluster_id: acl_vc.id.clone(),
                condition: "principal == 'User:ANONYMOUS'".into(),
                rules: vec![
                    allow(AclResourceType::Topic, "*"),
                    allow(AclResourceType::Group, "*"),
                    allow(AclResourceType::Cluster, "kafka-cluster"),
                ],
                ..Default::default()
            }),
        )
        .await;
        let bootstraps = [
            stack.bootstrap(),
            format!("127.0.0.1:{}", ports.0),
            format!("127.0.0.1:{}", acl_ports.0),
        ];
        let pid = stack.proxy.pid();
        for step in 0..3 {
            let i = (round + step) % 3;
            workload(&bootstraps[i], "warm-up", WARM_UP, 50, None);
            let before = usage(pid);
            let v = workload(&bootstraps[i], "bench", records, 500, None);
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
                NAMES[i],
                sample[0],
                sample[1],
                sample[2],
                sample[3]
            );
            samples[i].push(sample);
        }
    }
    println!(
        "\n{:<11} {:>24} {:>24} {:>8} {:>9}",
        "target", "produce r/s (min-max)", "consume r/s (min-max)", "p50 ms", "CPU s/GB"
    );
    let mut medians = [[0.0f64; 4]; 3];
    for (i, name) in NAMES.iter().enumerate() {
        let column = |k: usize| samples[i].iter().map(|s| s[k]).collect::<Vec<f64>>();
        for (k, m) in medians[i].iter_mut().enumerate() {
            *m = median(column(k));
        }
        let (pl, ph) = spread(&column(0));
        let (cl, ch) = spread(&column(1));
        println!(
            "{:<11} {:>9.0} ({:.0}-{:.0}) {:>9.0} ({:.0}-{:.0}) {:>8.3} {:>9.2}",
            name, medians[i][0], pl, ph, medians[i][1], cl, ch, medians[i][2], medians[i][3]
        );
    }
    let [pass, ns, acls] = medians;
    for (name, m, what) in [
        ("hide_prefix", ns, "the renaming"),
        ("gateway_acls", acls, "the ACL decisions"),
    ] {
        println!(
            "medians, {name}/passthrough: produce {:.2}x  consume {:.2}x  p50 {:+.3} ms  \
             CPU/GB {:.2}x ({:+.2} s/GB for {what})",
            m[0] / pass[0].max(1e-9),
            m[1] / pass[1].max(1e-9),
            m[2] - pass[2],
            m[3] / pass[3].max(1e-9),
            m[3] - pass[3],
        );
    }
}

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
    bench::{measure, summarize},
    stack::{Stack, create, expose_virtual_cluster, two_ports},
};
use sluice_proto::admin::v1::{
    AclAction, AclMode, AclOperation, AclResourceType, AclRule, ClusterPolicyAcls, Namespace,
    NamespaceMode, VirtualCluster, entity::Spec,
};

const NAMES: [&str; 3] = ["passthrough", "hide_prefix", "gateway_acls"];

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
            let sample = measure(round, NAMES[i], &bootstraps[i], pid, records, gigabytes);
            samples[i].push(sample);
        }
    }
    let medians = summarize(&NAMES, &samples);
    let [pass, ns, acls] = [medians[0], medians[1], medians[2]];
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

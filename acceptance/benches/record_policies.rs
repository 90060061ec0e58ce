//! Record policies benchmark (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench record_policies`
//!
//! The throughput workload (`acceptance/clients/bench_workload.py`: 1 KiB
//! JSON records, acks=1, 3 partitions, produced and consumed with
//! confluent-kafka, then sequential single-record produce round trips)
//! through four virtual clusters of one Sluice stack on one broker, side
//! by side: `passthrough` (no policy: records are never decoded),
//! `headers` (a produce policy sets a header, a consume policy removes
//! it), `validation` (a JSON Schema checked on produce and on consume)
//! and `encryption` (values encrypted with AES-256-GCM on produce,
//! decrypted on consume). Each round starts a fresh stack and runs the
//! four in a rotated order; `SLUICE_BENCH_ROUNDS` rounds (default 3),
//! `SLUICE_BENCH_RECORDS` records (default 100000). Prints rates, the
//! proxy's CPU per GB moved, and the ratios to passthrough.

use sluice_acceptance::{
    bench::{measure, summarize},
    stack::{Stack, create, expose_virtual_cluster, two_ports},
};
use sluice_proto::admin::v1::{
    ConsumePolicyDecrypt, ConsumePolicyModifyHeaders, ConsumePolicySchemaValidation, HeaderAction,
    HeaderRemove, HeaderSet, KeySource, ProducePolicyEncrypt, ProducePolicyModifyHeaders,
    ProducePolicySchemaValidation, Secret, StaticKey, VirtualCluster, entity::Spec,
    header_action::Action,
};

const NAMES: [&str; 4] = ["passthrough", "headers", "validation", "encryption"];
const SCHEMA: &str = r#"{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"pad":{"type":"string"}}}"#;

/// The policies of one benchmarked virtual cluster.
fn policies(name: &str, vc: &str, key: &str) -> Vec<(&'static str, Spec)> {
    let vc = vc.to_string();
    match name {
        "headers" => vec![
            (
                "stamp",
                Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
                    virtual_cluster_id: vc.clone(),
                    actions: vec![HeaderAction {
                        action: Some(Action::Set(HeaderSet {
                            key: "via".into(),
                            value: "sluice".into(),
                        })),
                    }],
                    ..Default::default()
                }),
            ),
            (
                "unstamp",
                Spec::ConsumePolicyModifyHeaders(ConsumePolicyModifyHeaders {
                    virtual_cluster_id: vc,
                    actions: vec![HeaderAction {
                        action: Some(Action::Remove(HeaderRemove { key: "via".into() })),
                    }],
                    ..Default::default()
                }),
            ),
        ],
        "validation" => vec![
            (
                "schema-in",
                Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
                    virtual_cluster_id: vc.clone(),
                    schema: SCHEMA.into(),
                    ..Default::default()
                }),
            ),
            (
                "schema-out",
                Spec::ConsumePolicySchemaValidation(ConsumePolicySchemaValidation {
                    virtual_cluster_id: vc,
                    schema: SCHEMA.into(),
                    ..Default::default()
                }),
            ),
        ],
        "encryption" => vec![
            (
                "encrypt",
                Spec::ProducePolicyEncrypt(ProducePolicyEncrypt {
                    virtual_cluster_id: vc.clone(),
                    static_key_id: key.into(),
                    ..Default::default()
                }),
            ),
            (
                "decrypt",
                Spec::ConsumePolicyDecrypt(ConsumePolicyDecrypt {
                    virtual_cluster_id: vc,
                    key_sources: vec![KeySource {
                        static_key_id: key.into(),
                    }],
                    ..Default::default()
                }),
            ),
        ],
        _ => Vec::new(),
    }
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
    let rounds = env("SLUICE_BENCH_ROUNDS", 3).max(1);
    let gigabytes = (records * 1024 * 2) as f64 / 1e9;
    println!(
        "sluice record policies benchmark: {records} JSON records of 1 KiB, acks=1, 3 \
         partitions, 500 produce round trips; passthrough vs headers vs validation vs \
         encryption virtual clusters of one stack; {rounds} rounds, rotated order"
    );
    // [target] -> (produce r/s, consume r/s, p50 ms, CPU s/GB)
    let mut samples: [Vec<[f64; 4]>; 4] = Default::default();
    for round in 0..rounds {
        let mut stack = Stack::start(&["bench", "warm-up"]).await;
        let gw = stack.gateway.id.clone();
        let key = create(
            &mut stack.admin,
            &gw,
            "bench-key",
            Spec::StaticKey(StaticKey {
                value: Some(Secret {
                    value: "42".repeat(32),
                    ..Default::default()
                }),
            }),
        )
        .await;
        let mut bootstraps = vec![stack.bootstrap()];
        for name in &NAMES[1..] {
            let ports = two_ports();
            let vc = VirtualCluster {
                destination_id: stack.backend.id.clone(),
                dns_label: name.to_string(),
                ..Default::default()
            };
            let (vc, _) = expose_virtual_cluster(&mut stack.admin, &gw, name, vc, ports).await;
            for (policy, spec) in policies(name, &vc.id, &key.id) {
                create(&mut stack.admin, &gw, policy, spec).await;
            }
            bootstraps.push(format!("127.0.0.1:{}", ports.0));
        }
        let pid = stack.proxy.pid();
        for step in 0..NAMES.len() {
            let i = (round + step) % NAMES.len();
            let sample = measure(round, NAMES[i], &bootstraps[i], pid, records, gigabytes);
            samples[i].push(sample);
        }
    }
    let medians = summarize(&NAMES, &samples);
    let pass = medians[0];
    for (i, name) in NAMES.iter().enumerate().skip(1) {
        let m = medians[i];
        println!(
            "medians, {name}/passthrough: produce {:.2}x  consume {:.2}x  p50 {:+.3} ms  \
             CPU {:.2} s/GB ({:+.2} s/GB)",
            m[0] / pass[0].max(1e-9),
            m[1] / pass[1].max(1e-9),
            m[2] - pass[2],
            m[3],
            m[3] - pass[3],
        );
    }
}

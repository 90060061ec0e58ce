//! SNI routing end to end: one TLS port (on 127.0.0.1 and ::1) serves
//! several virtual clusters, told apart by the host name each client
//! dials (`*.localhost` resolves to loopback, as a user's clients would
//! resolve it). Real clients verify the certificate and host name, round
//! trip records, and are told only their own cluster's broker names —
//! with a certificate per cluster (`per_cluster_suffix`) or one wildcard
//! for all (`shared_suffix`). A name no cluster has is refused, named.

use std::time::Duration;

use sluice_acceptance::{
    broker::free_port,
    clients::{self},
    pki::{Ca, Pair, Usage},
    probe::{answered, served_certificate, tls_connect},
    stack::{Stack, create},
};
use sluice_proto::admin::v1::{
    BrokerHostFormat, Listener, ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer,
    Sni, VirtualCluster, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};

const WAIT: Duration = Duration::from_secs(30);

/// A kafka-python round trip (host name checked) through `bootstrap`.
fn kafka_python(bootstrap: &str, ca: &str, topic: &str) -> String {
    let group = format!("g-{topic}");
    let args = ["roundtrip", bootstrap, "--ca", ca, "--topic", topic];
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &[&args[..], &["--group", &group]].concat(),
    );
    assert!(ok, "kafka-python through {bootstrap}: {out}");
    out
}

/// A confluent-kafka round trip (host name checked) through `bootstrap`.
fn confluent(bootstrap: &str, ca: &str, topic: &str) -> String {
    let group = format!("g-{topic}");
    clients::run(
        "python3",
        "confluent_tls_roundtrip.py",
        &[bootstrap, topic, &group, ca],
    )
}

/// Serves the stack's virtual cluster `team-a` (made by `Stack::start`)
/// and a new `team-b`, both on tansu, by SNI on one new port of
/// 127.0.0.1 and ::1 with `certificates`; the port, once bound.
async fn sni_port(
    stack: &mut Stack,
    certificates: &[&Pair],
    format: BrokerHostFormat,
    advertise_own_port: bool,
) -> u16 {
    let gw = stack.gateway.id.clone();
    create(
        &mut stack.admin,
        &gw,
        "team-b",
        Spec::VirtualCluster(VirtualCluster {
            destination_id: stack.backend.id.clone(),
            dns_label: "team-b".into(),
            ..Default::default()
        }),
    )
    .await;
    let port = free_port("127.0.0.1");
    let listener = create(
        &mut stack.admin,
        &gw,
        "sni",
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into(), "::1".into()],
            ports: vec![port.to_string()],
            ..Default::default()
        }),
    )
    .await;
    create(
        &mut stack.admin,
        &gw,
        "sni-tls",
        Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: listener.id.clone(),
            certificates: certificates.iter().map(|p| p.to_proto()).collect(),
            ..Default::default()
        }),
    )
    .await;
    create(
        &mut stack.admin,
        &gw,
        "sni",
        Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
            listener_id: listener.id.clone(),
            config: Some(Forward::Sni(Sni {
                sni_suffix: ".sluice.localhost".into(),
                broker_host_format: format as i32,
                advertised_port: if advertise_own_port { port.into() } else { 0 },
            })),
        }),
    )
    .await;
    for address in ["127.0.0.1", "::1"] {
        stack
            .proxy
            .wait_for(WAIT, |l| {
                l.contains(&format!("listening on {address}:{port}")) && l.contains("tls=true")
            })
            .unwrap_or_else(|| panic!("the SNI port {address}:{port} was never bound"));
    }
    port
}

/// Asserts a client was told exactly `broker` and never tansu's address.
fn told_only(stack: &Stack, out: &str, broker: &str) {
    assert_eq!(clients::brokers(out), serde_json::json!([broker]), "{out}");
    assert!(
        !out.contains(&stack.tansu.address) && !out.contains("127.0.0.2"),
        "the broker's own address leaked: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_virtual_clusters_on_one_sni_port_each_see_only_their_brokers() {
    let mut stack = Stack::start(&["sni-orders-a", "sni-orders-b"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("SNI CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    // One chain per cluster; the wildcard covers its bootstrap and brokers.
    let a = ca.issue("team-a", &["*.team-a.sluice.localhost"], Usage::Server);
    let b = ca.issue("team-b", &["*.team-b.sluice.localhost"], Usage::Server);
    let port = sni_port(
        &mut stack,
        &[&a, &b],
        BrokerHostFormat::PerClusterSuffix,
        false,
    )
    .await;

    let out = kafka_python(
        &format!("bootstrap.team-a.sluice.localhost:{port}"),
        ca_path,
        "sni-orders-a",
    );
    told_only(
        &stack,
        &out,
        &format!("broker-111.team-a.sluice.localhost:{port}"),
    );
    let out = confluent(
        &format!("bootstrap.team-b.sluice.localhost:{port}"),
        ca_path,
        "sni-orders-b",
    );
    told_only(
        &stack,
        &out,
        &format!("broker-111.team-b.sluice.localhost:{port}"),
    );

    // Each name gets its own cluster's chain (not the first), on both
    // addresses of the listener.
    for (address, name, chain) in [
        (
            format!("127.0.0.1:{port}"),
            "bootstrap.team-b.sluice.localhost",
            &b,
        ),
        (
            format!("[::1]:{port}"),
            "broker-111.team-a.sluice.localhost",
            &a,
        ),
        (
            format!("[::1]:{port}"),
            "broker-111.team-b.sluice.localhost",
            &b,
        ),
    ] {
        let mut s = tls_connect(&address, name, &ca.cert, None)
            .await
            .unwrap_or_else(|e| panic!("{name} at {address}: {e}"));
        assert_eq!(served_certificate(&s), Some(chain.der()), "{name}");
        assert!(answered(&mut s, WAIT).await, "{name} at {address}");
    }

    // A name no virtual cluster has: the handshake succeeds (this client
    // does not check names; SNI is still sent) and routing refuses it.
    let unknown = "bootstrap.team-c.sluice.localhost";
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &[
            "metadata",
            &format!("{unknown}:{port}"),
            "--ca",
            ca_path,
            "--no-check-hostname",
        ],
    );
    assert!(!ok, "{unknown} was served: {out}");
    let error = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener"
                && e.kind == "unknown_sni_name"
                && e.last_message.contains(&format!("{unknown:?}"))
        })
        .await;
    assert!(
        error.is_some(),
        "no unknown_sni_name error naming {unknown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_suffix_serves_every_cluster_with_one_wildcard_certificate() {
    let mut stack = Stack::start(&["shared-orders-a", "shared-orders-b"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("SNI CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    let wildcard = ca.issue("sluice", &["*.sluice.localhost"], Usage::Server);
    let port = sni_port(
        &mut stack,
        &[&wildcard],
        BrokerHostFormat::SharedSuffix,
        true,
    )
    .await;

    let out = confluent(
        &format!("bootstrap-team-a.sluice.localhost:{port}"),
        ca_path,
        "shared-orders-a",
    );
    told_only(
        &stack,
        &out,
        &format!("broker-111-team-a.sluice.localhost:{port}"),
    );
    let out = kafka_python(
        &format!("bootstrap-team-b.sluice.localhost:{port}"),
        ca_path,
        "shared-orders-b",
    );
    told_only(
        &stack,
        &out,
        &format!("broker-111-team-b.sluice.localhost:{port}"),
    );
}

//! TLS-terminating listeners, driven by real clients (confluent-kafka
//! and kafka-python, both checking the certificate's names): a round
//! trip to an IP-addressed listener; plaintext refused with its reason
//! until allowed, then plaintext and TLS on one port; client
//! certificates required and verified against a trust bundle; a
//! certificate rotation that new handshakes see while a consumer
//! connected before it keeps consuming on the same connections.
//! (SNI routing of several virtual clusters on one port: sni_routing.rs.)

use std::{process::Command, time::Duration};

use sluice_acceptance::{
    clients::{self, CLIENTS},
    pki::{Ca, Pair, Usage},
    probe::{answered, served_certificate, tls_connect},
    process::Process,
    stack::{Stack, create, two_ports},
};
use sluice_proto::admin::v1::{
    ClientAuthentication, ClientAuthenticationMode, Entity, Listener,
    ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer, PortMapping, TlsTrustBundle,
    UpdateEntityRequest, VirtualCluster, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);
const ASK: Duration = Duration::from_secs(5);

/// Polls `check` every 50 ms until it holds or `WAIT` passes.
async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < WAIT {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Whether a raw plaintext ApiVersions request is answered.
async fn plain_served(address: &str) -> bool {
    match TcpStream::connect(address).await {
        Ok(mut s) => answered(&mut s, ASK).await,
        Err(_) => false,
    }
}

/// Waits for the node to report a listener-hop error of `kind` on
/// `listener` whose message holds `needle`.
async fn expect_listener_error(stack: &mut Stack, listener: &str, kind: &str, needle: &str) {
    let found = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener"
                && e.entity == listener
                && e.kind == kind
                && e.last_message.contains(needle)
        })
        .await;
    assert!(
        found.is_some(),
        "no listener-hop {kind} error with {needle:?} on {listener}"
    );
}

async fn update(stack: &mut Stack, entity: &Entity) {
    stack
        .admin
        .update_entity(UpdateEntityRequest {
            entity: Some(entity.clone()),
            ..Default::default()
        })
        .await
        .expect("update");
}

fn tls_of(entity: &mut Entity) -> &mut ListenerPolicyTlsServer {
    match &mut entity.spec {
        Some(Spec::ListenerPolicyTlsServer(t)) => t,
        _ => panic!("not a tls_server"),
    }
}

/// A port-mapped TLS listener of a new virtual cluster on the stack's
/// backend (tansu's broker 111 on the second port).
struct TlsListener {
    bootstrap: String,
    broker: String,
    listener_id: String,
    tls: Entity,
}

/// Creates the virtual cluster, the listener, its TLS policy (`tls`),
/// then the forward policy — so the port is bound with TLS from its
/// first connection — and waits until the proxy listens.
async fn tls_listener(stack: &mut Stack, name: &str, tls: ListenerPolicyTlsServer) -> TlsListener {
    let gw = stack.gateway.id.clone();
    let ports = two_ports();
    let vc = create(
        &mut stack.admin,
        &gw,
        name,
        Spec::VirtualCluster(VirtualCluster {
            destination_id: stack.backend.id.clone(),
            dns_label: name.into(),
            ..Default::default()
        }),
    )
    .await;
    let listener = create(
        &mut stack.admin,
        &gw,
        name,
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into()],
            ports: vec![ports.0.to_string(), ports.1.to_string()],
            ..Default::default()
        }),
    )
    .await;
    let tls = create(
        &mut stack.admin,
        &gw,
        &format!("{name}-tls"),
        Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: listener.id.clone(),
            ..tls
        }),
    )
    .await;
    create(
        &mut stack.admin,
        &gw,
        name,
        Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
            listener_id: listener.id.clone(),
            config: Some(Forward::PortMapping(PortMapping {
                destination_id: vc.id.clone(),
                advertised_host: "127.0.0.1".into(),
                bootstrap_port: 0,
                min_broker_id: 111,
            })),
        }),
    )
    .await;
    for port in [ports.0, ports.1] {
        stack
            .proxy
            .wait_for(WAIT, |l| {
                l.contains(&format!("listening on 127.0.0.1:{port}")) && l.contains("tls=true")
            })
            .unwrap_or_else(|| panic!("the proxy never listened with TLS on {port}"));
    }
    TlsListener {
        bootstrap: format!("127.0.0.1:{}", ports.0),
        broker: format!("127.0.0.1:{}", ports.1),
        listener_id: listener.id,
        tls,
    }
}

fn serving(certificates: &[&Pair]) -> ListenerPolicyTlsServer {
    ListenerPolicyTlsServer {
        certificates: certificates.iter().map(|p| p.to_proto()).collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_round_trip_over_tls_to_an_ip_addressed_listener() {
    let mut stack = Stack::start(&["tls-rt"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    // The certificate names the address clients dial: no client turns
    // host-name verification off.
    let server = ca.issue("sluice-listener", &["127.0.0.1"], Usage::Server);
    let l = tls_listener(&mut stack, "tls-rt", serving(&[&server])).await;
    let tansu = stack.tansu.address.clone();
    let told = serde_json::json!([l.broker]);

    let out = clients::run(
        "python3",
        "confluent_tls_roundtrip.py",
        &[&l.bootstrap, "tls-rt", "g-confluent", ca_path],
    );
    assert_eq!(clients::brokers(&out), told, "confluent-kafka: {out}");
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &[
            "roundtrip",
            &l.bootstrap,
            "--ca",
            ca_path,
            "--topic",
            "tls-rt",
            "--group",
            "g-kafka-python",
        ],
    );
    assert!(ok, "kafka-python over TLS: {out}");
    assert_eq!(clients::brokers(&out), told, "kafka-python: {out}");
    assert!(
        !out.contains(&tansu),
        "the broker's own address leaked: {out}"
    );

    // A client that trusts another CA refuses the listener's certificate,
    // and the node says so.
    let other = Ca::new("another CA").write(dir.path(), "other");
    let (ok, out) = clients::try_run(
        "python3",
        "confluent_tls_client.py",
        &["metadata", &l.bootstrap, other.to_str().unwrap()],
    );
    assert!(!ok, "a client trusting another CA was served: {out}");
    expect_listener_error(
        &mut stack,
        &l.listener_id,
        "tls_handshake_failed",
        "the client refused the server's certificate",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_is_refused_until_allowed_then_shares_the_port_with_tls() {
    let mut stack = Stack::start(&["tls-plain", "tls-both"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    let server = ca.issue("sluice-listener", &["127.0.0.1"], Usage::Server);
    let mut l = tls_listener(&mut stack, "tls-plain", serving(&[&server])).await;

    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &["metadata", &l.bootstrap],
    );
    assert!(!ok, "a plaintext client was served: {out}");
    expect_listener_error(
        &mut stack,
        &l.listener_id,
        "tls_required",
        "this listener requires TLS",
    )
    .await;

    tls_of(&mut l.tls).allow_plaintext = true;
    update(&mut stack, &l.tls).await;
    assert!(
        eventually(|| plain_served(&l.bootstrap)).await,
        "plaintext was never allowed"
    );
    let out = clients::roundtrip(
        "kafka_python_roundtrip.py",
        &l.bootstrap,
        "tls-plain",
        "g-plain",
    );
    assert!(out.contains("python-2"), "{out}");
    // TLS still works on the same port, with the same certificate.
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &[
            "roundtrip",
            &l.bootstrap,
            "--ca",
            ca_path,
            "--topic",
            "tls-both",
            "--group",
            "g-both",
        ],
    );
    assert!(ok, "TLS after plaintext was allowed: {out}");
    let s = tls_connect(&l.bootstrap, "127.0.0.1", &ca.cert, None)
        .await
        .expect("TLS handshake");
    assert_eq!(served_certificate(&s), Some(server.der()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_and_verified_against_the_trust_bundle() {
    let mut stack = Stack::start(&["tls-mutual"]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = stack.gateway.id.clone();
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    let server = ca.issue("sluice-listener", &["127.0.0.1"], Usage::Server);
    let clients_ca = Ca::new("client CA");
    let bundle = create(
        &mut stack.admin,
        &gw,
        "clients",
        Spec::TlsTrustBundle(TlsTrustBundle {
            trusted_ca: clients_ca.cert.clone(),
        }),
    )
    .await;
    let l = tls_listener(
        &mut stack,
        "tls-mutual",
        ListenerPolicyTlsServer {
            client_authentication: Some(ClientAuthentication {
                mode: ClientAuthenticationMode::Required as i32,
                trust_bundle_ids: vec![bundle.id.clone()],
            }),
            ..serving(&[&server])
        },
    )
    .await;
    let (app_cert, app_key) = clients_ca
        .issue("app-1", &[], Usage::Client)
        .write(dir.path(), "app");
    let (app_cert, app_key) = (app_cert.to_str().unwrap(), app_key.to_str().unwrap());
    let (stranger_cert, stranger_key) = Ca::new("stranger CA")
        .issue("app-2", &[], Usage::Client)
        .write(dir.path(), "stranger");

    // No certificate: refused, and the node says why.
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &["metadata", &l.bootstrap, "--ca", ca_path],
    );
    assert!(!ok, "a client without a certificate was served: {out}");
    expect_listener_error(
        &mut stack,
        &l.listener_id,
        "tls_handshake_failed",
        "the client presented no certificate",
    )
    .await;

    // A certificate from the trusted CA: served, with both clients.
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &[
            "roundtrip",
            &l.bootstrap,
            "--ca",
            ca_path,
            "--cert",
            app_cert,
            "--key",
            app_key,
            "--topic",
            "tls-mutual",
            "--group",
            "g-mutual",
        ],
    );
    assert!(ok, "a client with a trusted certificate: {out}");
    let args = ["--cert", app_cert, "--key", app_key];
    let (ok, out) = clients::try_run(
        "python3",
        "confluent_tls_client.py",
        &[&["metadata", &l.bootstrap, ca_path][..], &args].concat(),
    );
    assert!(ok, "confluent-kafka with a trusted certificate: {out}");
    assert_eq!(
        clients::brokers(&out),
        serde_json::json!([l.broker]),
        "{out}"
    );

    // A certificate from a CA no trust bundle holds: refused, by both
    // clients. (librdkafka does not even present a certificate whose CA
    // the listener's CertificateRequest does not name — the node reports
    // "no certificate" for it — so the reason is checked with
    // kafka-python, which presents it.)
    let args = [
        "--cert",
        stranger_cert.to_str().unwrap(),
        "--key",
        stranger_key.to_str().unwrap(),
    ];
    let (ok, out) = clients::try_run(
        "python3",
        "confluent_tls_client.py",
        &[&["metadata", &l.bootstrap, ca_path][..], &args].concat(),
    );
    assert!(
        !ok,
        "confluent-kafka with another CA's certificate was served: {out}"
    );
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_tls.py",
        &[&["metadata", &l.bootstrap, "--ca", ca_path][..], &args].concat(),
    );
    assert!(
        !ok,
        "kafka-python with another CA's certificate was served: {out}"
    );
    expect_listener_error(
        &mut stack,
        &l.listener_id,
        "tls_handshake_failed",
        "not signed by a CA of client_authentication.trust_bundle_ids",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotation_reaches_new_handshakes_and_drops_no_connection() {
    let mut stack = Stack::start(&["tls-rotate"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    let one = ca.issue("listener-one", &["127.0.0.1"], Usage::Server);
    let two = ca.issue("listener-two", &["127.0.0.1"], Usage::Server);
    let mut l = tls_listener(&mut stack, "tls-rotate", serving(&[&one])).await;
    let produce = |value: &str| {
        let (ok, out) = clients::try_run(
            "python3",
            "confluent_tls_client.py",
            &[
                "produce",
                &l.bootstrap,
                ca_path,
                "--topic",
                "tls-rotate",
                value,
            ],
        );
        assert!(ok, "produce {value}: {out}");
    };

    // A consumer and a raw connection, both over TLS with certificate one.
    produce("before");
    let mut command = Command::new("python3");
    command
        .arg(format!("{CLIENTS}/confluent_tls_steady_consumer.py"))
        .args([&l.bootstrap, "tls-rotate", "g-rotate", ca_path]);
    let consumer = Process::spawn(command, "consumer");
    consumer
        .wait_for(WAIT, |line| line == "got before")
        .expect("the consumer never got its first record");
    let mut established = tls_connect(&l.bootstrap, "127.0.0.1", &ca.cert, None)
        .await
        .expect("TLS handshake");
    assert!(answered(&mut established, ASK).await);
    assert_eq!(served_certificate(&established), Some(one.der()));

    tls_of(&mut l.tls).certificates = vec![two.to_proto()];
    update(&mut stack, &l.tls).await;
    let rotated = eventually(|| async {
        match tls_connect(&l.bootstrap, "127.0.0.1", &ca.cert, None).await {
            Ok(s) => served_certificate(&s) == Some(two.der()),
            Err(_) => false,
        }
    })
    .await;
    assert!(rotated, "new handshakes never got the new certificate");

    // The raw connection made before the rotation is still answered ...
    for _ in 0..3 {
        assert!(
            answered(&mut established, ASK).await,
            "the raw connection made before the rotation was dropped"
        );
    }
    // ... and the consumer gets records produced after it (the producer
    // handshakes with the new certificate), on the same connections.
    produce("after");
    produce("last");
    let done = consumer
        .wait_for(Duration::from_secs(60), |line| line.starts_with("done "))
        .expect("the consumer never finished");
    let report: serde_json::Value = serde_json::from_str(&done["done ".len()..]).unwrap();
    assert_eq!(
        report["seen"],
        serde_json::json!(["before", "after", "last"]),
        "{done}"
    );
    assert_eq!(report["errors"], serde_json::json!([]), "{done}");
    // Disconnects, not connects: librdkafka 2.10+ counts a connection
    // attempt of the group coordinator's handle before it has an address.
    let connects = report["connects"].as_object().expect("connection counts");
    assert!(!connects.is_empty(), "{done}");
    let disconnects = report["disconnects"]
        .as_object()
        .expect("disconnect counts");
    assert!(
        !disconnects.is_empty() && disconnects.values().all(|n| n.as_u64() == Some(0)),
        "the consumer was disconnected across the rotation: {done}"
    );
}

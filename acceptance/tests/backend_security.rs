//! Backend TLS, SASL and PROXY protocol against real servers, for what
//! backend_tls_sasl.rs and proxy_protocol.rs leave out:
//! - a broker named by a DNS name (`*.localhost`, libnss-myhostname): its
//!   certificate is checked against the name dialled, so the same broker
//!   dialled by IP is a name mismatch; a wrong CA and an empty ca_bundle
//!   (system roots) are "unknown CA" and the client gets no answer;
//!   `insecure_skip_verify` serves despite both;
//! - SCRAM-SHA-256 over TLS (HAProxy terminating TLS in front of a tansu
//!   started with `--authentication`): served with the right password,
//!   `auth_failed` with a wrong one and the client gets no answer;
//! - real HAProxy load balancers with `send-proxy-v2` and `send-proxy`
//!   (v1) in front of listeners whose brokers are advertised at the load
//!   balancer: real clients round-trip; node status names the client
//!   HAProxy saw and the load balancer; a trusted peer without a header
//!   and an untrusted one with a header are refused (`proxy_protocol`).

use std::{path::Path, time::Duration};

use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    haproxy::Haproxy,
    pki::{Ca, Usage},
    probe::{API_VERSIONS, answered},
    stack::{Stack, create, two_ports},
};
use sluice_proto::admin::v1::{
    BackendAuthentication, BackendCluster, BackendSaslScram, BackendTls, Listener,
    ListenerPolicyForwardToVirtualCluster, PortMapping, ProxyProtocol, ScramAlgorithm, Secret,
    VirtualCluster, backend_authentication::Method, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpSocket, TcpStream},
};

const WAIT: Duration = Duration::from_secs(30);
const ASK: Duration = Duration::from_secs(5);
/// A broker name that resolves to loopback (libnss-myhostname).
const BROKER_NAME: &str = "broker.sluice.localhost";

fn secret(value: &str) -> Option<Secret> {
    Some(Secret {
        value: value.into(),
        ..Default::default()
    })
}

fn tls(ca_bundle: &str) -> Option<BackendTls> {
    Some(BackendTls {
        enabled: true,
        ca_bundle: ca_bundle.into(),
        ..Default::default()
    })
}

fn plain_to(bootstrap: &str, tls: Option<BackendTls>) -> BackendCluster {
    BackendCluster {
        bootstrap_servers: vec![bootstrap.into()],
        tls,
        ..Default::default()
    }
}

/// Whether a client's ApiVersions request on `bootstrap` is answered.
async fn served(bootstrap: &str) -> bool {
    let mut client = TcpStream::connect(bootstrap).await.unwrap();
    answered(&mut client, ASK).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_names_verification_choices_and_scram_256_over_tls() {
    let mut stack = Stack::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("broker CA");
    let other = Ca::new("some other CA");

    // A broker whose certificate names only BROKER_NAME (HAProxy on
    // 127.0.0.1 terminating TLS in front of tansu, which advertises the
    // name, so brokers learned from metadata are dialled by name too).
    let port = free_port("127.0.0.1");
    let by_name = format!("{BROKER_NAME}:{port}");
    let by_ip = format!("127.0.0.1:{port}");
    let tansu = Tansu::start_advertised("127.0.0.8", Some(&by_name));
    tansu.create_topic("named-topic", 1);
    let pem = ca
        .issue("broker", &[BROKER_NAME], Usage::Server)
        .write_combined(dir.path(), "named");
    let _named = Haproxy::start(
        dir.path(),
        "named",
        &format!("{by_ip} ssl crt {}", pem.display()),
        &tansu.address,
    );

    // Dialled by its name: verified, served.
    let (_, bootstrap) = stack
        .serve_backend("by-name", plain_to(&by_name, tls(&ca.cert)))
        .await;
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "named-topic",
        "g-name",
    );

    // The same broker dialled by IP: its certificate does not name it.
    let (backend, bootstrap) = stack
        .serve_backend("by-ip", plain_to(&by_ip, tls(&ca.cert)))
        .await;
    assert!(!served(&bootstrap).await, "served despite a name mismatch");
    stack
        .expect_backend_error(&backend, "tls_handshake_failed", &["name mismatch", &by_ip])
        .await;

    // A CA that did not sign it, and the system roots (an empty bundle):
    // unknown CA either way, and the client gets nothing.
    for (name, bundle) in [("other-ca", other.cert.as_str()), ("system-roots", "")] {
        let (backend, bootstrap) = stack
            .serve_backend(name, plain_to(&by_name, tls(bundle)))
            .await;
        assert!(
            !served(&bootstrap).await,
            "{name}: served an unverified broker"
        );
        stack
            .expect_backend_error(&backend, "tls_handshake_failed", &["unknown CA", &by_name])
            .await;
    }

    // insecure_skip_verify: neither the CA nor the name is checked.
    let (_, bootstrap) = stack
        .serve_backend(
            "skip-verify",
            plain_to(
                &by_ip,
                Some(BackendTls {
                    enabled: true,
                    ca_bundle: other.cert.clone(),
                    insecure_skip_verify: true,
                    ..Default::default()
                }),
            ),
        )
        .await;
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "named-topic",
        "g-skip",
    );

    // SCRAM-SHA-256 inside TLS: an authenticating tansu behind HAProxy,
    // advertising the TLS address.
    let sasl_dir = tempfile::tempdir().unwrap();
    let tls_port = free_port("127.0.0.7");
    let tls_address = format!("127.0.0.7:{tls_port}");
    let scram_broker = Tansu::start_scram_advertised(
        "127.0.0.7",
        sasl_dir.path(),
        "scram256",
        ("sluice-256", "gateway-secret-256"),
        &["sasl-tls-topic"],
        Some(&tls_address),
    );
    let pem = ca
        .issue("broker", &["127.0.0.7"], Usage::Server)
        .write_combined(dir.path(), "sasl");
    let _sasl_tls = Haproxy::start(
        dir.path(),
        "sasl-tls",
        &format!("{tls_address} ssl crt {}", pem.display()),
        &scram_broker.address,
    );
    let scram = |password: &str| BackendCluster {
        authentication: Some(BackendAuthentication {
            method: Some(Method::SaslScram(BackendSaslScram {
                algorithm: ScramAlgorithm::Sha256 as i32,
                username: "sluice-256".into(),
                password: secret(password),
            })),
        }),
        ..plain_to(&tls_address, tls(&ca.cert))
    };
    let (_, bootstrap) = stack
        .serve_backend("scram-tls", scram("gateway-secret-256"))
        .await;
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "sasl-tls-topic",
        "g-scram-tls",
    );
    let (backend, bootstrap) = stack
        .serve_backend("scram-tls-wrong", scram("wrong-256"))
        .await;
    assert!(!served(&bootstrap).await, "served with a wrong password");
    stack
        .expect_backend_error(
            &backend,
            "auth_failed",
            &["SCRAM-SHA-256", "\"sluice-256\"", &tls_address],
        )
        .await;
    let all = stack.wait_for_error(ASK, |e| e.entity == backend.id).await;
    assert!(!format!("{all:?}").contains("wrong-256"), "{all:?}");
}

/// A virtual cluster on the stack's tansu, on a new listener that trusts
/// PROXY headers from `trusted` and advertises its brokers at
/// `advertised_host` (a load balancer listening on the same ports).
async fn behind_load_balancer(
    stack: &mut Stack,
    name: &str,
    trusted: &str,
    advertised_host: &str,
) -> (u16, u16) {
    let gw = stack.gateway.id.clone();
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
    let ports = two_ports();
    let listener = create(
        &mut stack.admin,
        &gw,
        name,
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into()],
            ports: vec![ports.0.to_string(), ports.1.to_string()],
            proxy_protocol: Some(ProxyProtocol {
                trusted_ranges: vec![trusted.into()],
            }),
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
                advertised_host: advertised_host.into(),
                bootstrap_port: 0,
                min_broker_id: 111,
            })),
        }),
    )
    .await;
    stack
        .proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{}", ports.1))
        })
        .unwrap_or_else(|| panic!("{name}: the listener never bound"));
    ports
}

/// HAProxy on `host` at both listener ports, each passed on to the same
/// port on 127.0.0.1 with `send` (`send-proxy` or `send-proxy-v2`).
fn load_balancer(dir: &Path, name: &str, host: &str, ports: (u16, u16), send: &str) -> Haproxy {
    let (bootstrap, broker) = (format!("{host}:{}", ports.0), format!("{host}:{}", ports.1));
    Haproxy::start_config(
        dir,
        name,
        &format!(
            "frontend front\n  bind {bootstrap}\n  bind {broker}\n  default_backend back\n\
             backend back\n  server s1 127.0.0.1 {send}\n"
        ),
        &[&bootstrap, &broker],
    )
}

/// A connection to `address` from the local address `from`.
async fn connect_from(from: &str, address: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(address.parse().unwrap()).await.unwrap()
}

/// Sends a frame too large through `load_balancer` from `from`; waits for
/// the listener's refusal naming that client and the load balancer.
async fn misbehave_through(stack: &mut Stack, from: &str, load_balancer: &str) {
    let mut client = connect_from(from, load_balancer).await;
    let me = client.local_addr().unwrap().to_string();
    client.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
    let named = format!("client {me} (via load balancer 127.0.0.1:");
    let found = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener" && e.last_message.contains(&named)
        })
        .await;
    if found.is_none() {
        let all = stack.wait_for_error(ASK, |_| true).await;
        panic!("no listener error naming {named:?}; node status: {all:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_load_balancers_send_proxy_v1_and_v2() {
    let mut stack = Stack::start(&["lb-v2-topic", "lb-v1-topic"]).await;
    let dir = tempfile::tempdir().unwrap();
    let v2_ports = behind_load_balancer(&mut stack, "lb-v2", "127.0.0.0/8", "127.0.0.9").await;
    let v1_ports = behind_load_balancer(&mut stack, "lb-v1", "127.0.0.1/32", "127.0.0.10").await;
    let v2 = load_balancer(dir.path(), "lb-v2", "127.0.0.9", v2_ports, "send-proxy-v2");
    let v1 = load_balancer(dir.path(), "lb-v1", "127.0.0.10", v1_ports, "send-proxy");

    // Real clients through each load balancer, to the bootstrap and to the
    // broker port the metadata names (the load balancer again).
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &v2.address,
        "lb-v2-topic",
        "g-v2",
    );
    clients::roundtrip("confluent_roundtrip.py", &v1.address, "lb-v1-topic", "g-v1");

    // What the node reports names the client HAProxy saw, and HAProxy.
    misbehave_through(&mut stack, "127.0.0.11", &v2.address).await;
    misbehave_through(&mut stack, "127.0.0.12", &v1.address).await;

    // A trusted peer that sends no header is refused...
    let direct = format!("127.0.0.1:{}", v2_ports.0);
    assert!(!served(&direct).await, "served without a PROXY header");
    let refused = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener"
                && e.kind == "proxy_protocol"
                && e.last_message.contains("did not begin with a valid PROXY")
        })
        .await;
    assert!(
        refused.is_some(),
        "no proxy_protocol error for a bare client"
    );

    // ...and so is an untrusted peer that sends one (the v1 listener
    // trusts 127.0.0.1 only).
    let mut spoof = connect_from("127.0.0.3", &format!("127.0.0.1:{}", v1_ports.0)).await;
    let header = format!("PROXY TCP4 192.0.2.7 127.0.0.1 5555 {}\r\n", v1_ports.0);
    // The proxy may refuse (and reset) as soon as it reads the header:
    // a failed write is a refusal too, which `answered` then reports.
    let _ = spoof.write_all(header.as_bytes()).await;
    let _ = spoof.write_all(&API_VERSIONS).await;
    assert!(
        !answered(&mut spoof, ASK).await,
        "an untrusted header was honoured"
    );
    let refused = stack
        .wait_for_error(WAIT, |e| {
            e.kind == "proxy_protocol"
                && e.last_message.contains("127.0.0.3:")
                && e.last_message
                    .contains("not in proxy_protocol.trusted_ranges")
        })
        .await;
    assert!(
        refused.is_some(),
        "no proxy_protocol error for an untrusted header"
    );
}

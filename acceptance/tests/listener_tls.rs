//! TLS on a listener, with real clients: confluent-kafka over TLS with
//! host-name verification; a plaintext client refused until plaintext is
//! allowed; client certificates required, verified against a trust
//! bundle; a certificate rotation that new handshakes see while an
//! established connection keeps being served; two virtual clusters on one
//! SNI port, each client told only its own cluster's broker names, and an
//! unknown name refused naming it.

use std::time::Duration;

use sluice_acceptance::{
    broker::free_port,
    clients,
    pki::{Ca, Pair, Usage},
    probe::{answered, served_certificate, tls_connect},
    stack::{Stack, create, expose_virtual_cluster, two_ports},
};
use sluice_proto::admin::v1::{
    BrokerHostFormat, CertificateAndKey, ClientAuthentication, ClientAuthenticationMode, Entity,
    Listener, ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer, Secret, Sni,
    TlsTrustBundle, UpdateEntityRequest, VirtualCluster, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);
const ASK: Duration = Duration::from_secs(5);

fn pair(p: &Pair) -> CertificateAndKey {
    CertificateAndKey {
        certificate: p.cert.clone(),
        key: Some(Secret {
            value: p.key.clone(),
            ..Default::default()
        }),
    }
}

/// Polls `check` every 50 ms until it holds (true) or `WAIT` passes.
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

/// Whether a TLS client (trusting `ca`, asking for `name`) is served.
async fn tls_served(address: &str, name: &str, ca: &Ca, identity: Option<&Pair>) -> bool {
    match tls_connect(address, name, &ca.cert, identity).await {
        Ok(mut s) => answered(&mut s, ASK).await,
        Err(_) => false,
    }
}

async fn plain_served(address: &str) -> bool {
    match TcpStream::connect(address).await {
        Ok(mut s) => answered(&mut s, ASK).await,
        Err(_) => false,
    }
}

/// Waits for a listener-hop error of `kind` whose message holds `needle`.
async fn expect_listener_error(stack: &mut Stack, kind: &str, needle: &str) {
    let found = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener" && e.kind == kind && e.last_message.contains(needle)
        })
        .await;
    assert!(found.is_some(), "no listener {kind} error with {needle:?}");
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

/// A virtual cluster on the stack's backend behind a new port-mapped
/// listener with TLS; the bootstrap address and the TLS policy.
async fn tls_listener(stack: &mut Stack, name: &str, server: &Pair) -> (String, Entity) {
    let gw = stack.gateway.id.clone();
    let ports = two_ports();
    let vc = VirtualCluster {
        destination_id: stack.backend.id.clone(),
        dns_label: name.into(),
        ..Default::default()
    };
    let (_, forward) = expose_virtual_cluster(&mut stack.admin, &gw, name, vc, ports).await;
    let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &forward.spec else {
        panic!("a forward policy")
    };
    let tls = create(
        &mut stack.admin,
        &gw,
        &format!("{name}-tls"),
        Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: f.listener_id.clone(),
            certificates: vec![pair(server)],
            ..Default::default()
        }),
    )
    .await;
    (format!("127.0.0.1:{}", ports.0), tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_plaintext_refusal_and_client_certificates() {
    let mut stack = Stack::start(&["tls-a", "tls-plain", "tls-mutual"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let server = ca.issue("sluice", &["127.0.0.1"], Usage::Server);
    let (bootstrap, mut tls) = tls_listener(&mut stack, "tls-a", &server).await;
    assert!(
        eventually(|| tls_served(&bootstrap, "127.0.0.1", &ca, None)).await,
        "the listener never served TLS"
    );
    let ca_path = ca_file.to_str().unwrap();
    clients::run(
        "python3",
        "confluent_tls_roundtrip.py",
        &[&bootstrap, "tls-a", "g-tls", ca_path],
    );

    // Plaintext is refused with the reason, until it is allowed.
    assert!(!plain_served(&bootstrap).await, "plaintext was served");
    expect_listener_error(&mut stack, "tls_required", "this listener requires TLS").await;
    tls_of(&mut tls).allow_plaintext = true;
    update(&mut stack, &tls).await;
    assert!(
        eventually(|| plain_served(&bootstrap)).await,
        "plaintext never allowed"
    );
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "tls-plain",
        "g-plain",
    );
    assert!(
        tls_served(&bootstrap, "127.0.0.1", &ca, None).await,
        "TLS on the same port"
    );

    // Client certificates, required and verified against a trust bundle.
    let clients_ca = Ca::new("client CA");
    let stranger_ca = Ca::new("stranger CA");
    let gw = stack.gateway.id.clone();
    let bundle = create(
        &mut stack.admin,
        &gw,
        "clients",
        Spec::TlsTrustBundle(TlsTrustBundle {
            trusted_ca: clients_ca.cert.clone(),
        }),
    )
    .await;
    let app = clients_ca.issue("app-1", &[], Usage::Client);
    let stranger = stranger_ca.issue("app-2", &[], Usage::Client);
    tls_of(&mut tls).allow_plaintext = false;
    tls_of(&mut tls).client_authentication = Some(ClientAuthentication {
        mode: ClientAuthenticationMode::Required as i32,
        trust_bundle_ids: vec![bundle.id.clone()],
    });
    update(&mut stack, &tls).await;
    assert!(
        eventually(|| async { !tls_served(&bootstrap, "127.0.0.1", &ca, None).await }).await,
        "a client without a certificate is still served"
    );
    expect_listener_error(
        &mut stack,
        "tls_handshake_failed",
        "presented no certificate",
    )
    .await;
    assert!(tls_served(&bootstrap, "127.0.0.1", &ca, Some(&app)).await);
    assert!(!tls_served(&bootstrap, "127.0.0.1", &ca, Some(&stranger)).await);
    expect_listener_error(&mut stack, "tls_handshake_failed", "not signed by a CA").await;
    let (cert, key) = app.write(dir.path(), "app");
    clients::run(
        "python3",
        "confluent_tls_roundtrip.py",
        &[
            &bootstrap,
            "tls-mutual",
            "g-mtls",
            ca_path,
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotation_keeps_established_connections() {
    let mut stack = Stack::start(&[]).await;
    let ca = Ca::new("listener CA");
    let one = ca.issue("one", &["127.0.0.1"], Usage::Server);
    let two = ca.issue("two", &["127.0.0.1"], Usage::Server);
    let (bootstrap, mut tls) = tls_listener(&mut stack, "rotating", &one).await;
    assert!(eventually(|| tls_served(&bootstrap, "127.0.0.1", &ca, None)).await);
    let mut established = tls_connect(&bootstrap, "127.0.0.1", &ca.cert, None)
        .await
        .unwrap();
    assert!(answered(&mut established, ASK).await);
    assert_eq!(served_certificate(&established), Some(one.der()));

    tls_of(&mut tls).certificates = vec![pair(&two)];
    update(&mut stack, &tls).await;
    let rotated = eventually(|| async {
        match tls_connect(&bootstrap, "127.0.0.1", &ca.cert, None).await {
            Ok(s) => served_certificate(&s) == Some(two.der()),
            Err(_) => false,
        }
    })
    .await;
    assert!(rotated, "new handshakes never got the new certificate");
    for _ in 0..3 {
        assert!(
            answered(&mut established, ASK).await,
            "the connection made before the rotation was dropped"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_virtual_clusters_on_one_sni_port() {
    let mut stack = Stack::start(&["sni-a", "sni-b"]).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = stack.gateway.id.clone();
    let ca = Ca::new("SNI CA");
    let ca_file = ca.write(dir.path(), "ca");
    for label in ["sni-a", "sni-b"] {
        create(
            &mut stack.admin,
            &gw,
            label,
            Spec::VirtualCluster(VirtualCluster {
                destination_id: stack.backend.id.clone(),
                dns_label: label.into(),
                ..Default::default()
            }),
        )
        .await;
    }
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
    // One chain per cluster, picked by the SNI name; and one for a name
    // no cluster has, so that its handshake succeeds and routing refuses.
    let chains = [
        ca.issue("a", &["*.sni-a.sluice.localhost"], Usage::Server),
        ca.issue("b", &["*.sni-b.sluice.localhost"], Usage::Server),
        ca.issue("c", &["bootstrap.sni-c.sluice.localhost"], Usage::Server),
    ];
    create(
        &mut stack.admin,
        &gw,
        "sni-tls",
        Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: listener.id.clone(),
            certificates: chains.iter().map(pair).collect(),
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
                broker_host_format: BrokerHostFormat::PerClusterSuffix as i32,
                advertised_port: 0,
            })),
        }),
    )
    .await;
    stack
        .proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{port}"))
        })
        .expect("the SNI port is bound");
    for label in ["sni-a", "sni-b"] {
        let bootstrap = format!("bootstrap.{label}.sluice.localhost:{port}");
        let out = clients::run(
            "python3",
            "confluent_tls_roundtrip.py",
            &[
                &bootstrap,
                label,
                &format!("g-{label}"),
                ca_file.to_str().unwrap(),
            ],
        );
        let seen: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert_eq!(
            seen["brokers"],
            serde_json::json!([format!("broker-111.{label}.sluice.localhost:{port}")]),
            "{label}: {out}"
        );
    }
    let address = format!("127.0.0.1:{port}");
    assert!(!tls_served(&address, "bootstrap.sni-c.sluice.localhost", &ca, None).await);
    expect_listener_error(
        &mut stack,
        "unknown_sni_name",
        "\"bootstrap.sni-c.sluice.localhost\"",
    )
    .await;
}

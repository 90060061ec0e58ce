//! What the gateway does towards the brokers, against real servers:
//! TLS to a broker (HAProxy terminating TLS in front of tansu, since tansu
//! 0.6 cannot serve TLS) with the right CA, a wrong CA, an expired
//! certificate and mutual TLS; SASL/SCRAM-SHA-512 to a tansu started with
//! `--authentication`, with the right and a wrong password. Clients speak
//! plaintext to the proxy and never see the backend's credentials; each
//! failure is a backend_cluster hop error naming the broker and the reason.

use std::time::Duration;

use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    haproxy::Haproxy,
    pki::{Ca, Pair, Usage},
    stack::Stack,
};
use sluice_proto::admin::v1::{
    BackendAuthentication, BackendCluster, BackendSaslScram, BackendTls, ScramAlgorithm, Secret,
    backend_authentication::Method,
};

const WAIT: Duration = Duration::from_secs(30);

/// A tansu behind an HAProxy that terminates TLS with `cert` (and asks
/// for client certificates signed by `client_ca`, when given); brokers
/// advertise the TLS address, so every connection goes through TLS.
struct TlsBroker {
    haproxy: Haproxy,
    _tansu: Tansu,
}

fn tls_broker(
    host: &str,
    dir: &std::path::Path,
    name: &str,
    cert: &Pair,
    client_ca: Option<&Ca>,
) -> TlsBroker {
    let port = free_port(host);
    let tansu = Tansu::start_advertised(host, Some(&format!("{host}:{port}")));
    tansu.create_topic("tls-topic", 1);
    let pem = cert.write_combined(dir, name);
    let mut bind = format!("{host}:{port} ssl crt {}", pem.display());
    if let Some(ca) = client_ca {
        let file = ca.write(dir, &format!("{name}-client-ca"));
        bind.push_str(&format!(" verify required ca-file {}", file.display()));
    }
    let haproxy = Haproxy::start(dir, name, &bind, &tansu.address);
    TlsBroker {
        haproxy,
        _tansu: tansu,
    }
}

fn secret(value: &str) -> Option<Secret> {
    Some(Secret {
        value: value.into(),
        ..Default::default()
    })
}

fn tls(ca: &Ca, identity: Option<&Pair>) -> Option<BackendTls> {
    Some(BackendTls {
        enabled: true,
        ca_bundle: ca.cert.clone(),
        client_identity: identity.map(Pair::to_proto),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_brokers_verified_named_and_mutual() {
    let mut stack = Stack::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("broker CA");
    let other = Ca::new("some other CA");
    let clients_ca = Ca::new("gateway client CA");
    let good = tls_broker(
        "127.0.0.3",
        dir.path(),
        "good",
        &ca.issue("broker", &["127.0.0.3"], Usage::Server),
        None,
    );
    let expired = tls_broker(
        "127.0.0.4",
        dir.path(),
        "expired",
        &ca.issue_expired("broker", &["127.0.0.4"], Usage::Server),
        None,
    );
    let mutual = tls_broker(
        "127.0.0.5",
        dir.path(),
        "mutual",
        &ca.issue("broker", &["127.0.0.5"], Usage::Server),
        Some(&clients_ca),
    );
    let gateway_identity = clients_ca.issue("sluice-gateway", &[], Usage::Client);

    // The right CA: records go through, TLS all the way to the broker.
    let (_, bootstrap) = stack
        .serve_backend(
            "tls-good",
            BackendCluster {
                bootstrap_servers: vec![good.haproxy.address.clone()],
                tls: tls(&ca, None),
                ..Default::default()
            },
        )
        .await;
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "tls-topic",
        "g-tls",
    );

    // A CA that did not sign the broker's certificate.
    let (backend, _) = stack
        .serve_backend(
            "tls-wrong-ca",
            BackendCluster {
                bootstrap_servers: vec![good.haproxy.address.clone()],
                tls: tls(&other, None),
                ..Default::default()
            },
        )
        .await;
    stack
        .expect_backend_error(
            &backend,
            "tls_handshake_failed",
            &["unknown CA", &good.haproxy.address],
        )
        .await;

    // An expired broker certificate.
    let (backend, _) = stack
        .serve_backend(
            "tls-expired",
            BackendCluster {
                bootstrap_servers: vec![expired.haproxy.address.clone()],
                tls: tls(&ca, None),
                ..Default::default()
            },
        )
        .await;
    stack
        .expect_backend_error(
            &backend,
            "tls_handshake_failed",
            &["has expired", &expired.haproxy.address],
        )
        .await;

    // A broker that requires a client certificate: refused without one...
    let (backend, _) = stack
        .serve_backend(
            "tls-no-identity",
            BackendCluster {
                bootstrap_servers: vec![mutual.haproxy.address.clone()],
                tls: tls(&ca, None),
                ..Default::default()
            },
        )
        .await;
    stack
        .expect_backend_error(
            &backend,
            "tls_handshake_failed",
            &[&mutual.haproxy.address, "client certificate"],
        )
        .await;
    // ...and served with the gateway's client identity.
    let (_, bootstrap) = stack
        .serve_backend(
            "tls-mutual",
            BackendCluster {
                bootstrap_servers: vec![mutual.haproxy.address.clone()],
                tls: tls(&ca, Some(&gateway_identity)),
                ..Default::default()
            },
        )
        .await;
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "tls-topic",
        "g-mutual",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_512_to_an_authenticating_broker() {
    let mut stack = Stack::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start_scram(
        "127.0.0.6",
        dir.path(),
        ("sluice", "gateway-secret"),
        &["scram-topic"],
    );
    let scram = |password: &str| BackendCluster {
        bootstrap_servers: vec![broker.address.clone()],
        authentication: Some(BackendAuthentication {
            method: Some(Method::SaslScram(BackendSaslScram {
                algorithm: ScramAlgorithm::Sha512 as i32,
                username: "sluice".into(),
                password: secret(password),
            })),
        }),
        ..Default::default()
    };
    // The gateway authenticates; the client (plaintext, no SASL) does not.
    let (_, bootstrap) = stack
        .serve_backend("scram-good", scram("gateway-secret"))
        .await;
    clients::roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "scram-topic",
        "g-scram",
    );

    let (backend, _) = stack
        .serve_backend("scram-wrong", scram("not-the-password"))
        .await;
    stack
        .expect_backend_error(
            &backend,
            "auth_failed",
            &["SCRAM-SHA-512", "\"sluice\"", &broker.address],
        )
        .await;
    // The password is never in what the node reports.
    let all = stack.wait_for_error(WAIT, |e| e.entity == backend.id).await;
    assert!(!format!("{all:?}").contains("not-the-password"), "{all:?}");
}

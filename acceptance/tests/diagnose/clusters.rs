//! Cases at the virtual cluster and backend cluster hops.

use std::sync::Arc;

use sluice_acceptance::{
    broker::{Tansu, free_port},
    haproxy::Haproxy,
    pki::{Ca, Usage},
    stack::{expose, two_ports},
};
use sluice_proto::admin::v1::{
    BackendAuthentication, BackendCluster, BackendSaslScram, BackendTls, DiagnoseRequest,
    ScramAlgorithm, Secret, backend_authentication::Method, entity::Spec,
};

use super::{Case, World, expect, failing_client};

fn roundtrip(bootstrap: &str) -> Vec<String> {
    super::roundtrip(bootstrap, "orders", &[])
}

/// A virtual cluster `team-a` on a new backend, port-mapped, with a
/// node listening; the bootstrap address.
async fn serve(case: &mut Case, backend: BackendCluster) -> String {
    let backend = case.create("backend", Spec::BackendCluster(backend)).await;
    let ports = two_ports();
    let gw = case.gateway.id.clone();
    expose(&mut case.admin, &gw, &backend.id, "team-a", ports).await;
    case.node_listening(ports.1).await;
    format!("127.0.0.1:{}", ports.0)
}

pub(crate) async fn wrong_backend(world: Arc<World>) {
    let mut case = Case::new(&world, "wrong-backend").await;
    let other = world.other.address.clone();
    case.create(
        "payments",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec![other],
            ..Default::default()
        }),
    )
    .await;
    let tansu = world.tansu.address.clone();
    let bootstrap = serve(
        &mut case,
        BackendCluster {
            bootstrap_servers: vec![tansu],
            ..Default::default()
        },
    )
    .await;
    // The client consumes "payments": its virtual cluster has none.
    super::failing_consume(&bootstrap, "payments").await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                topic: "payments".into(),
                probe: true,
                symptom: "UNKNOWN_TOPIC_OR_PART".into(),
                ..Default::default()
            },
            "routing",
        )
        .await;
    expect(
        &d,
        "backend_cluster",
        ("sluice_virtual_cluster", "destination_id"),
        &["has no topic \"payments\"", "backend cluster payments"],
    );
}

pub(crate) async fn backend_unreachable(world: Arc<World>) {
    let mut case = Case::new(&world, "unreachable").await;
    let nowhere = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let bootstrap = serve(
        &mut case,
        BackendCluster {
            bootstrap_servers: vec![nowhere.clone()],
            ..Default::default()
        },
    )
    .await;
    failing_client("confluent_sasl.py", roundtrip(&bootstrap)).await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap.clone(),
                ..Default::default()
            },
            "routing",
        )
        .await;
    expect(
        &d,
        "backend_cluster",
        ("sluice_backend_cluster", "bootstrap_servers"),
        &["unreachable", &nowhere],
    );
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                probe: true,
                ..Default::default()
            },
            "routing",
        )
        .await;
    expect(
        &d,
        "backend_cluster",
        ("sluice_backend_cluster", "bootstrap_servers"),
        &["tcp failed"],
    );
}

pub(crate) async fn backend_ca_wrong(world: Arc<World>) {
    let mut case = Case::new(&world, "backend-ca").await;
    let (signer, other) = (Ca::new("broker CA"), Ca::new("some other CA"));
    let port = free_port("127.0.0.1");
    let pem = signer
        .issue("broker", &["localhost"], Usage::Server)
        .write_combined(&world.dir(), "backend-ca");
    let haproxy = tokio::task::spawn_blocking({
        let (dir, tansu) = (world.dir(), world.tansu.address.clone());
        move || {
            Haproxy::start(
                &dir,
                "backend-ca",
                &format!("127.0.0.1:{port} ssl crt {}", pem.display()),
                &tansu,
            )
        }
    })
    .await
    .unwrap();
    let tls = BackendTls {
        enabled: true,
        ca_bundle: other.cert.clone(),
        ..Default::default()
    };
    let bootstrap = serve(
        &mut case,
        BackendCluster {
            bootstrap_servers: vec![format!("localhost:{port}")],
            tls: Some(tls),
            ..Default::default()
        },
    )
    .await;
    failing_client("confluent_sasl.py", roundtrip(&bootstrap)).await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                probe: true,
                ..Default::default()
            },
            "routing",
        )
        .await;
    expect(
        &d,
        "backend_cluster",
        ("sluice_backend_cluster", "tls.ca_bundle"),
        &["tls failed", "unknown CA"],
    );
    drop(haproxy);
}

pub(crate) async fn backend_password_wrong(world: Arc<World>) {
    let mut case = Case::new(&world, "backend-sasl").await;
    let broker = tokio::task::spawn_blocking({
        let dir = world.dir().join("scram");
        move || {
            std::fs::create_dir_all(&dir).unwrap();
            Tansu::start_scram("127.0.0.7", &dir, ("sluice", "gateway-secret"), &["orders"])
        }
    })
    .await
    .unwrap();
    let auth = BackendAuthentication {
        method: Some(Method::SaslScram(BackendSaslScram {
            algorithm: ScramAlgorithm::Sha512 as i32,
            username: "sluice".into(),
            password: Some(Secret {
                value: "not-the-secret".into(),
                ..Default::default()
            }),
        })),
    };
    let backend = BackendCluster {
        bootstrap_servers: vec![broker.address.clone()],
        authentication: Some(auth),
        ..Default::default()
    };
    let bootstrap = serve(&mut case, backend).await;
    failing_client("confluent_sasl.py", roundtrip(&bootstrap)).await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap.clone(),
                ..Default::default()
            },
            "routing",
        )
        .await;
    expect(
        &d,
        "backend_cluster",
        ("sluice_backend_cluster", "authentication"),
        &["auth_failed"],
    );
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                probe: true,
                ..Default::default()
            },
            "routing",
        )
        .await;
    expect(
        &d,
        "backend_cluster",
        ("sluice_backend_cluster", "authentication"),
        &["sasl failed"],
    );
    drop(broker);
}

pub(crate) async fn unknown_virtual_cluster(world: Arc<World>) {
    let mut case = Case::new(&world, "unknown-vc").await;
    let tansu = world.tansu.address.clone();
    let bootstrap = serve(
        &mut case,
        BackendCluster {
            bootstrap_servers: vec![tansu],
            ..Default::default()
        },
    )
    .await;
    // The client was told to use virtual cluster "tema-a" (a typo): its
    // consumer group reads a topic that virtual cluster would have.
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                virtual_cluster: "tema-a".into(),
                ..Default::default()
            },
            "missing_object",
        )
        .await;
    expect(
        &d,
        "virtual_cluster",
        ("sluice_virtual_cluster", "name"),
        &["no virtual cluster named \"tema-a\"", "team-a"],
    );
}

pub(crate) async fn missing_topic(world: Arc<World>) {
    let mut case = Case::new(&world, "missing-topic").await;
    let tansu = world.tansu.address.clone();
    let bootstrap = serve(
        &mut case,
        BackendCluster {
            bootstrap_servers: vec![tansu],
            ..Default::default()
        },
    )
    .await;
    super::failing_consume(&bootstrap, "invoices").await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                topic: "invoices".into(),
                probe: true,
                ..Default::default()
            },
            "missing_object",
        )
        .await;
    expect(
        &d,
        "backend_cluster",
        ("sluice_virtual_cluster", "topic_aliases"),
        &[
            "topic \"invoices\" does not exist on backend cluster",
            "UNKNOWN_TOPIC_OR_PARTITION",
        ],
    );
}

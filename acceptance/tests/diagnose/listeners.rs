//! Cases at the gateway and listener hops, and the healthy paths.

use std::sync::Arc;

use sluice_acceptance::{
    broker::free_port,
    pki::{Ca, Usage},
    relay::Relay,
    stack::{expose, two_ports},
};
use sluice_proto::admin::v1::{
    DiagnoseRequest, Listener, ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer, Sni,
    VirtualCluster, entity::Spec, listener_policy_forward_to_virtual_cluster::Config as Forward,
};

use super::{Case, World, expect, failing_client};

fn roundtrip(bootstrap: &str, extra: &[&str]) -> Vec<String> {
    super::roundtrip(bootstrap, "orders", extra)
}

async fn ok_client(bootstrap: String, extra: Vec<String>) {
    tokio::task::spawn_blocking(move || {
        let mut args = roundtrip(&bootstrap, &[]);
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sluice_acceptance::clients::run("python3", "confluent_sasl.py", &args)
    })
    .await
    .expect("client");
}

pub(crate) async fn healthy_port_mapping(world: Arc<World>) {
    let mut case = Case::new(&world, "healthy").await;
    let backend = case.tansu_backend().await;
    let ports = two_ports();
    let gw = case.gateway.id.clone();
    expose(&mut case.admin, &gw, &backend.id, "team-a", ports).await;
    case.node_listening(ports.1).await;
    let bootstrap = format!("127.0.0.1:{}", ports.0);
    ok_client(bootstrap.clone(), vec![]).await;
    let d = case
        .diagnose_once(DiagnoseRequest {
            address: bootstrap,
            virtual_cluster: "team-a".into(),
            topic: "orders".into(),
            probe: true,
            ..Default::default()
        })
        .await;
    let text = super::show(&d);
    assert_eq!(d.domain, "none", "{text}");
    assert!(d.checks.iter().all(|c| c.status == "pass"), "{text}");
    assert!(d.fix.is_none(), "{text}");
    for needle in [
        "api_versions",
        "ApiVersions answered",
        "topic \"orders\" exists",
        "bootstrap",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

/// A TLS listener routing by SNI for virtual cluster `team-a`; its port.
async fn sni_listener(case: &mut Case, ca: &Ca) -> u16 {
    let backend = case.tansu_backend().await;
    case.create(
        "team-a",
        Spec::VirtualCluster(VirtualCluster {
            destination_id: backend.id.clone(),
            dns_label: "team-a".into(),
            ..Default::default()
        }),
    )
    .await;
    let port = free_port("127.0.0.1");
    let listener = case
        .create(
            "sni",
            Spec::Listener(Listener {
                addresses: vec!["127.0.0.1".into(), "::1".into()],
                ports: vec![port.to_string()],
                ..Default::default()
            }),
        )
        .await;
    let cert = ca.issue("team-a", &["*.team-a.sluice.localhost"], Usage::Server);
    case.create(
        "sni-tls",
        Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: listener.id.clone(),
            certificates: vec![cert.to_proto()],
            ..Default::default()
        }),
    )
    .await;
    case.create(
        "sni",
        Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
            listener_id: listener.id.clone(),
            config: Some(Forward::Sni(Sni {
                sni_suffix: ".sluice.localhost".into(),
                advertised_port: port.into(),
                ..Default::default()
            })),
        }),
    )
    .await;
    case.node_listening(port).await;
    port
}

pub(crate) async fn healthy_sni(world: Arc<World>) {
    let mut case = Case::new(&world, "healthy-sni").await;
    let ca = Ca::new("SNI CA");
    let port = sni_listener(&mut case, &ca).await;
    let ca_file = ca.write(&world.dir(), "healthy-sni-ca");
    let name = "bootstrap.team-a.sluice.localhost";
    ok_client(
        format!("{name}:{port}"),
        vec!["--ca".into(), ca_file.display().to_string()],
    )
    .await;
    let d = case
        .diagnose_once(DiagnoseRequest {
            sni_host: name.into(),
            probe: true,
            ..Default::default()
        })
        .await;
    let text = super::show(&d);
    assert_eq!(d.domain, "none", "{text}");
    assert!(d.checks.iter().all(|c| c.status == "pass"), "{text}");
    for needle in [
        "sni",
        "TLS handshake done",
        "ApiVersions answered",
        "virtual cluster team-a",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

pub(crate) async fn sni_typo(world: Arc<World>) {
    let mut case = Case::new(&world, "sni-typo").await;
    let ca = Ca::new("SNI CA");
    let port = sni_listener(&mut case, &ca).await;
    let ca_file = ca.write(&world.dir(), "sni-typo-ca");
    let typo = "bootstrap.taem-a.sluice.localhost";
    failing_client(
        "confluent_sasl.py",
        roundtrip(
            &format!("{typo}:{port}"),
            &["--ca", &ca_file.display().to_string()],
        ),
    )
    .await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: format!("127.0.0.1:{port}"),
                sni_host: typo.into(),
                symptom: "SSL handshake failed".into(),
                ..Default::default()
            },
            "listener_mapping",
        )
        .await;
    expect(
        &d,
        "listener",
        ("sluice_virtual_cluster", "dns_label"),
        &[
            "did you mean bootstrap.team-a.sluice.localhost",
            "unknown_sni_name",
        ],
    );
}

pub(crate) async fn another_gateways_address(world: Arc<World>) {
    // The client means gateway "mine" but bootstraps from a port of
    // gateway "theirs", whose virtual cluster wants SASL: the client
    // sees an authentication failure.
    let mut theirs = Case::new(&world, "theirs").await;
    let backend = theirs.tansu_backend().await;
    let ports = two_ports();
    let (gw, auth) = (
        theirs.gateway.id.clone(),
        sluice_acceptance::auth::plain_terminate(&[("bob", "bob-secret")]),
    );
    let vc = VirtualCluster {
        destination_id: backend.id.clone(),
        dns_label: "private".into(),
        authentication: vec![auth],
        ..Default::default()
    };
    sluice_acceptance::stack::expose_virtual_cluster(&mut theirs.admin, &gw, "private", vc, ports)
        .await;
    theirs.node_listening(ports.1).await;
    let mut mine = Case::new(&world, "mine").await;
    let backend = mine.tansu_backend().await;
    let own = two_ports();
    let gw = mine.gateway.id.clone();
    expose(&mut mine.admin, &gw, &backend.id, "team-a", own).await;
    mine.node_listening(own.1).await;
    let bootstrap = format!("127.0.0.1:{}", ports.0);
    let out = failing_client(
        "confluent_sasl.py",
        roundtrip(
            &bootstrap,
            &[
                "--mechanism",
                "PLAIN",
                "--username",
                "alice",
                "--password",
                "alice-secret",
            ],
        ),
    )
    .await;
    let d = mine
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                symptom: out.lines().last().unwrap_or_default().into(),
                ..Default::default()
            },
            "environment",
        )
        .await;
    expect(
        &d,
        "gateway",
        ("sluice_listener", "gateway_id"),
        &["of gateway theirs", "not of gateway mine"],
    );
    assert!(!d.symptom_note.is_empty(), "{}", super::show(&d));
}

pub(crate) async fn no_forward_policy(world: Arc<World>) {
    let mut case = Case::new(&world, "no-forward").await;
    case.tansu_backend().await;
    let port = free_port("127.0.0.1");
    let bare = case
        .create(
            "bare",
            Spec::Listener(Listener {
                addresses: vec!["127.0.0.1".into()],
                ports: vec![port.to_string()],
                ..Default::default()
            }),
        )
        .await;
    case.node_via(None, None).await;
    case.wait_applied(bare.revision).await;
    let bootstrap = format!("127.0.0.1:{port}");
    failing_client("confluent_sasl.py", roundtrip(&bootstrap, &[])).await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                probe: true,
                ..Default::default()
            },
            "missing_object",
        )
        .await;
    expect(
        &d,
        "listener",
        (
            "sluice_listener_policy_forward_to_virtual_cluster",
            "listener_id",
        ),
        &["has no forward policy"],
    );
}

pub(crate) async fn port_in_use(world: Arc<World>) {
    let mut case = Case::new(&world, "port-in-use").await;
    let backend = case.tansu_backend().await;
    // Another process on the node's host holds the broker port (a
    // listener that never answers).
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let free = free_port("127.0.0.1");
    let gw = case.gateway.id.clone();
    expose(&mut case.admin, &gw, &backend.id, "team-a", (taken, free)).await;
    case.node_listening(free).await;
    let bootstrap = format!("127.0.0.1:{taken}");
    failing_client("confluent_sasl.py", roundtrip(&bootstrap, &[])).await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap.clone(),
                ..Default::default()
            },
            "listener_mapping",
        )
        .await;
    expect(
        &d,
        "listener",
        ("sluice_listener", "ports"),
        &["cannot bind", "bind_failed"],
    );
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                probe: true,
                ..Default::default()
            },
            "listener_mapping",
        )
        .await;
    expect(
        &d,
        "listener",
        ("sluice_listener", "ports"),
        &["is not bound on this node"],
    );
    drop(squatter);
}

pub(crate) async fn no_node(world: Arc<World>) {
    let mut case = Case::new(&world, "no-node").await;
    let backend = case.tansu_backend().await;
    let ports = two_ports();
    let gw = case.gateway.id.clone();
    expose(&mut case.admin, &gw, &backend.id, "team-a", ports).await;
    let bootstrap = format!("127.0.0.1:{}", ports.0);
    failing_client("confluent_sasl.py", roundtrip(&bootstrap, &[])).await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                ..Default::default()
            },
            "environment",
        )
        .await;
    expect(
        &d,
        "gateway",
        ("sluice_data_plane_certificate", "gateway_id"),
        &["no data-plane node of gateway no-node is connected"],
    );
}

pub(crate) async fn node_behind(world: Arc<World>) {
    let mut case = Case::new(&world, "behind").await;
    let backend = case.tansu_backend().await;
    let ports = two_ports();
    let gw = case.gateway.id.clone();
    expose(&mut case.admin, &gw, &backend.id, "team-a", ports).await;
    // The node reaches the control plane through a relay that then stalls:
    // the node stays "connected" and never sees the next change.
    let relay = Relay::start(&world.server.sync_addr, u64::MAX).await;
    case.node_via(
        Some(relay.addr.clone()),
        Some(format!("listening on 127.0.0.1:{}", ports.1)),
    )
    .await;
    relay.stall_now();
    let late = two_ports();
    expose(&mut case.admin, &gw, &backend.id, "team-late", late).await;
    let bootstrap = format!("127.0.0.1:{}", late.0);
    failing_client("confluent_sasl.py", roundtrip(&bootstrap, &[])).await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                ..Default::default()
            },
            "environment",
        )
        .await;
    expect(
        &d,
        "gateway",
        ("sluice_data_plane_certificate", ""),
        &["has not applied the latest configuration"],
    );
    relay.release();
}

//! A real `sluice-proxy` against a real `sluice-server`: it joins with a
//! certificate from `dataplane-cert issue`, applies changes within the
//! stream, starts from its cache while the control plane is down, and
//! resumes from its revision (no snapshot) when it comes back.

use std::{process::Command, time::Duration};

use sluice_acceptance::{
    process::{Process, word_after},
    server::{self, Admin, Server},
    workspace_bin,
};
use sluice_proto::admin::v1::{
    BackendCluster, CreateEntityRequest, Entity, Gateway, ListDataPlaneNodesRequest,
    ListRevisionsRequest, entity::Spec,
};

const WAIT: Duration = Duration::from_secs(30);

fn entity(gateway_id: &str, name: &str, spec: Spec) -> Entity {
    Entity {
        gateway_id: gateway_id.into(),
        name: name.into(),
        spec: Some(spec),
        ..Default::default()
    }
}

fn backend(gateway_id: &str, name: &str) -> Entity {
    entity(
        gateway_id,
        name,
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            ..Default::default()
        }),
    )
}

async fn create(admin: &mut Admin, e: Entity) -> Entity {
    admin
        .create_entity(CreateEntityRequest { entity: Some(e) })
        .await
        .unwrap()
        .into_inner()
}

fn start_proxy(sync_addr: &str, dir: &std::path::Path) -> Process {
    let mut command = Command::new(workspace_bin("sluice-proxy"));
    command
        .args(["run", "--control-plane", sync_addr, "--node-id", "proxy-1"])
        .arg("--cert")
        .arg(dir.join("node/tls.crt"))
        .arg("--key")
        .arg(dir.join("node/tls.key"))
        .arg("--ca")
        .arg(dir.join("node/ca.crt"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env("SLUICE_LOG", "info");
    Process::spawn(command, "proxy")
}

/// Waits for the proxy to log that it applied `revision`; returns whether
/// that was a snapshot.
fn applied(proxy: &Process, skip: usize, revision: i64) -> (usize, bool) {
    let needle = format!("revision={revision}");
    let (i, line) = proxy
        .wait_for_after(skip, WAIT, |l| l.contains("applied") && l.contains(&needle))
        .unwrap_or_else(|| panic!("the proxy did not apply revision {revision}"));
    (i, line.contains("snapshot=true"))
}

#[tokio::test]
async fn a_proxy_follows_the_control_plane_and_survives_its_absence() {
    let server_bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&server_bin, dir.path());
    let server = Server::start(&server_bin, dir.path(), &[]);
    let mut admin = server.client(Some(&token)).await;
    let gateway = create(
        &mut admin,
        entity("", "edge", Spec::Gateway(Gateway::default())),
    )
    .await;
    create(&mut admin, backend(&gateway.id, "first")).await;
    server::run_cli(
        &server_bin,
        &[
            "dataplane-cert",
            "issue",
            "--gateway",
            "edge",
            "--out",
            dir.path().join("node").to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    // The certificate is a change of the gateway too: the snapshot is at
    // the gateway's newest revision.
    let latest = admin
        .list_revisions(ListRevisionsRequest {
            gateway_id: gateway.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .latest_revision;

    // Joins with a snapshot and reports the revision it applied.
    let proxy = start_proxy(&server.sync_addr, dir.path());
    let (at, snapshot) = applied(&proxy, 0, latest);
    assert!(snapshot);
    let mut node = None;
    for _ in 0..100 {
        let nodes = admin
            .list_data_plane_nodes(ListDataPlaneNodesRequest {
                gateway_id: gateway.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        if let Some(n) = nodes
            .into_iter()
            .find(|n| n.id == "proxy-1" && n.applied_revision == latest)
        {
            node = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let node = node.expect("the node reports the revision it applied");
    assert!(node.connected);

    // A change arrives as a delta.
    let second = create(&mut admin, backend(&gateway.id, "second")).await;
    let (at, snapshot) = applied(&proxy, at, second.revision);
    assert!(!snapshot);
    let _ = at;

    // The control plane goes away; a restarted proxy serves from its cache.
    let sync_port = server.sync_addr.clone();
    drop(admin);
    server.stop();
    proxy.terminate();
    let proxy = start_proxy(&sync_port, dir.path());
    let cached = proxy
        .wait_for(WAIT, |l| l.contains("starting from the cached config"))
        .expect("the proxy starts from its cache");
    assert_eq!(
        word_after(&cached, "revision="),
        Some(second.revision.to_string().as_str())
    );
    proxy
        .wait_for(WAIT, |l| l.contains("sync stream failed"))
        .expect("the proxy keeps trying while the control plane is down");

    // The control plane comes back on the same port: the proxy resumes from
    // its revision, and the next change is a delta on top of it.
    let server = Server::start(&server_bin, dir.path(), &["--sync-listen", &sync_port]);
    let mut admin = server.client(Some(&token)).await;
    let reconnected = proxy
        .wait_for_after(0, WAIT, |l| l.contains("connected to the control plane"))
        .expect("the proxy reconnects");
    let third = create(&mut admin, backend(&gateway.id, "third")).await;
    let (_, snapshot) = applied(&proxy, reconnected.0, third.revision);
    assert!(!snapshot, "a resumed node gets a delta, not a snapshot");
    assert!(
        proxy
            .wait_for_after(reconnected.0, Duration::ZERO, |l| l
                .contains("snapshot=true"))
            .is_none(),
        "no snapshot after resuming"
    );
    proxy.terminate();
    drop(admin);
    server.stop();
}

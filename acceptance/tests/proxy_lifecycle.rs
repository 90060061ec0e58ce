//! What happens to a real `sluice-proxy` around its control plane: it
//! serves Kafka from its cache (kept 0600) while the control plane is
//! down, and deleting its `data_plane_certificate` disconnects it and
//! refuses it on every reconnect.

use std::{process::Command, time::Duration};

use sluice_acceptance::{clients::roundtrip, stack::Stack};
use sluice_proto::admin::v1::{DeleteEntityRequest, Kind, ListEntitiesRequest};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_serves_kafka_from_its_cache_without_a_control_plane() {
    let stack = Stack::start(&["cached-before", "cached-after"]).await;
    let bootstrap = stack.bootstrap();
    roundtrip("confluent_roundtrip.py", &bootstrap, "cached-before", "g1");
    let Stack {
        proxy,
        admin,
        server,
        tansu,
        ports,
        dir,
        ..
    } = stack;
    let sync_addr = server.sync_addr.clone();
    drop(admin);
    server.stop();
    proxy.terminate();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("cache/config.pb"))
            .expect("the cache was written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "config.pb holds secrets");
    }

    // Nothing answers on the sync address now; the proxy starts anyway.
    let proxy = start_proxy_with_cache(&sync_addr, dir.path());
    proxy
        .wait_for(WAIT, |l| l.contains("starting from the cached config"))
        .expect("started from the cache");
    for port in [ports.0, ports.1] {
        proxy
            .wait_for(WAIT, |l| {
                l.contains(&format!("listening on 127.0.0.1:{port}"))
            })
            .unwrap_or_else(|| panic!("never listened on {port} from the cache"));
    }
    let out = roundtrip(
        "kafka_python_roundtrip.py",
        &bootstrap,
        "cached-after",
        "g2",
    );
    assert!(out.contains("\"second\": [\"after-commit\"]"), "{out}");
    proxy
        .wait_for(WAIT, |l| l.contains("sync stream failed"))
        .expect("and it keeps trying to reach the control plane");
    drop(tansu);
}

/// A proxy with the stack's certificate and cache, but no certificate
/// issuing (the certificate files are already there).
fn start_proxy_with_cache(
    sync_addr: &str,
    dir: &std::path::Path,
) -> sluice_acceptance::process::Process {
    let mut command = Command::new(sluice_acceptance::workspace_bin("sluice-proxy"));
    let node = dir.join("node");
    command
        .args(["run", "--control-plane", sync_addr])
        .arg("--cert")
        .arg(node.join("tls.crt"))
        .arg("--key")
        .arg(node.join("tls.key"))
        .arg("--ca")
        .arg(node.join("ca.crt"))
        .arg("--cache-dir")
        .arg(dir.join("cache"));
    sluice_acceptance::process::Process::spawn(command, "proxy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_live_proxys_certificate_disconnects_and_refuses_it() {
    let mut stack = Stack::start(&[]).await;
    let gw = stack.gateway.id.clone();
    let certificates = stack
        .admin
        .list_entities(ListEntitiesRequest {
            kind: Kind::DataPlaneCertificate as i32,
            gateway_id: gw.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entities;
    assert_eq!(certificates.len(), 1, "the stack's proxy certificate");
    let certificate = &certificates[0];
    let before = stack.proxy.line_count();
    stack
        .admin
        .delete_entity(DeleteEntityRequest {
            kind: Kind::DataPlaneCertificate as i32,
            id: certificate.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete the certificate");

    // The live stream ends with the revocation...
    let (at, _) = stack
        .proxy
        .wait_for_after(before, WAIT, |l| {
            l.contains("sync stream failed") && l.contains("revoked")
        })
        .expect("the stream is ended as revoked");
    // ...and every reconnect is refused.
    stack
        .proxy
        .wait_for_after(at + 1, WAIT, |l| {
            l.contains("sync stream failed") && l.contains("not a current data_plane_certificate")
        })
        .expect("a reconnect is refused");
    let mut nodes = Vec::new();
    for _ in 0..600 {
        nodes = stack
            .admin
            .list_data_plane_nodes(sluice_proto::admin::v1::ListDataPlaneNodesRequest {
                gateway_id: gw.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        // Exactly the proxy's node, disconnected (an empty list is not).
        if nodes.len() == 1 && !nodes[0].connected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        nodes.len() == 1 && !nodes[0].connected,
        "the proxy's node is listed once, disconnected: {nodes:?}"
    );
}

//! A gateway whose snapshot is far over gRPC's 4 MiB message limit still
//! reaches a real `sluice-proxy`: the server sends it in chunks, the proxy
//! applies it once, when the last chunk arrives, and ACKs it once.

use std::time::Duration;

use sluice_acceptance::{
    server::{self, Server},
    stack::{create, start_proxy},
    workspace_bin,
};
use sluice_proto::admin::v1::{
    Gateway, ListDataPlaneNodesRequest, ListRevisionsRequest, TlsTrustBundle, entity::Spec,
};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_snapshot_over_8_mib_reaches_a_proxy() {
    let server_bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&server_bin, dir.path());
    let server = Server::start(&server_bin, dir.path(), &[]);
    let mut admin = server.client(Some(&token)).await;
    let gateway = create(&mut admin, "", "big", Spec::Gateway(Gateway::default())).await;
    // Four trust bundles of about 2.5 MiB each (each under the admin API's
    // own 4 MiB request limit): a snapshot of about 10 MiB.
    let pem = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap()
        .cert
        .pem();
    let bundle = pem.repeat(2_500_000 / pem.len());
    let mut last = 0;
    for i in 0..4 {
        last = create(
            &mut admin,
            &gateway.id,
            &format!("bundle-{i}"),
            Spec::TlsTrustBundle(TlsTrustBundle {
                trusted_ca: bundle.clone(),
            }),
        )
        .await
        .revision;
    }
    let proxy = start_proxy(&server, dir.path(), "big");
    let latest = admin
        .list_revisions(ListRevisionsRequest {
            gateway_id: gateway.id.clone(),
            // Only the certificate's revision: the bundles' entries would
            // not fit one answer.
            after_revision: last,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .latest_revision;
    let needle = format!("revision={latest}");
    let line = proxy
        .wait_for(WAIT, |l| {
            l.contains("applied snapshot") && l.contains(&needle)
        })
        .unwrap_or_else(|| panic!("the proxy did not apply the snapshot at {latest}"));
    assert!(line.contains("upserted=5"), "{line}");
    assert_eq!(
        proxy.count_matching(|l| l.contains("applied snapshot")),
        1,
        "one snapshot, applied once"
    );
    // The control plane has the ACK.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let nodes = admin
            .list_data_plane_nodes(ListDataPlaneNodesRequest {
                gateway_id: gateway.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        if nodes.iter().any(|n| n.applied_revision == latest) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node's ACK never arrived: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop();
}

//! Node status stays true when the database misbehaves, and what nodes
//! leave behind is bounded: a failed save is retried, long-disconnected
//! nodes are pruned, and a flood of node events is capped per stream.

mod common;

use std::time::Duration;

use common::{db, fixtures};
use sluice_acceptance::node::{self, Node, NodeCerts};
use sluice_proto::admin::v1::{
    CreateEntityRequest, DataPlaneNode, Entity, ListDataPlaneNodesRequest,
};

struct Setup {
    dir: tempfile::TempDir,
    server: common::Server,
    admin: common::Admin,
    gateway: Entity,
    certs: NodeCerts,
}

async fn setup(extra: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let server = common::start_server(dir.path(), extra);
    let mut admin = server.client(Some(&token)).await;
    let gateway = admin
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::gateway("edge")),
        })
        .await
        .unwrap()
        .into_inner();
    let certs = node::issue(common::bin(), dir.path(), "edge", &dir.path().join("node"));
    Setup {
        dir,
        server,
        admin,
        gateway,
        certs,
    }
}

async fn nodes(admin: &mut common::Admin, gateway: &str) -> Vec<DataPlaneNode> {
    admin
        .list_data_plane_nodes(ListDataPlaneNodesRequest {
            gateway_id: gateway.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .nodes
}

/// Polls the node list until `done` holds (at most 20 s).
async fn wait_nodes(
    admin: &mut common::Admin,
    gateway: &str,
    done: impl Fn(&[DataPlaneNode]) -> bool,
) -> Vec<DataPlaneNode> {
    for _ in 0..400 {
        let listed = nodes(admin, gateway).await;
        if done(&listed) {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the node list never reached the expected state: {:?}",
        nodes(admin, gateway).await
    );
}

/// A node that connected and ACKed its snapshot.
async fn joined(setup: &Setup, id: &str) -> Node {
    let mut n = Node::connect(&setup.server.sync_addr, &setup.certs, node::hello(id, 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    n
}

#[tokio::test]
async fn a_disconnect_whose_save_failed_is_saved_again() {
    let mut s = setup(&[]).await;
    let n = joined(&s, "n1").await;
    let gw = s.gateway.id.clone();
    wait_nodes(&mut s.admin, &gw, |l| l.len() == 1 && l[0].connected).await;

    // The database refuses node status writes while the node leaves.
    let mut conn = db::open(s.dir.path()).await;
    db::fail(&mut conn, "data_plane_nodes", "INSERT").await;
    db::fail(&mut conn, "data_plane_nodes", "UPDATE").await;
    drop(n);
    common::logged(&s.server, Duration::from_secs(20), |l| {
        l.contains("could not save node status")
    })
    .await
    .expect("the background flush fails while writes are refused");
    db::heal(&mut conn, "data_plane_nodes", "INSERT").await;
    db::heal(&mut conn, "data_plane_nodes", "UPDATE").await;

    // Once the database takes writes again, the disconnect is recorded.
    let listed = wait_nodes(&mut s.admin, &gw, |l| l.len() == 1 && !l[0].connected).await;
    assert_eq!(listed[0].id, "n1");
}

//! Node status stays true when the database misbehaves, and what nodes
//! leave behind is bounded: a failed save is retried, long-disconnected
//! nodes are pruned, and a flood of node events is capped per stream.

mod common;

use std::time::Duration;

use common::{db, fixtures, wait_nodes};
use sluice_acceptance::node::{self, Node, NodeCerts};
use sluice_proto::admin::v1::{CreateEntityRequest, Entity};

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

#[tokio::test]
async fn nodes_gone_longer_than_the_retention_are_pruned() {
    let mut s = setup(&["--dataplane-node-retention", "1s"]).await;
    let gw = s.gateway.id.clone();
    let leaving = joined(&s, "leaves").await;
    let _staying = joined(&s, "stays").await;
    wait_nodes(&mut s.admin, &gw, |l| l.len() == 2).await;
    drop(leaving);
    // Disconnected, then pruned once unseen for a second; a connected node
    // stays however long it has been quiet.
    let left = wait_nodes(&mut s.admin, &gw, |l| l.len() == 1).await;
    assert_eq!((left[0].id.as_str(), left[0].connected), ("stays", true));
    // The log line may follow the delete the listing saw.
    common::logged(&s.server, Duration::from_secs(10), |l| {
        l.contains("pruned long-disconnected data-plane nodes")
    })
    .await
    .expect("the pruning is logged");
}

#[tokio::test]
async fn a_flood_of_node_events_is_bounded_and_the_drops_are_counted() {
    use sluice_proto::{
        admin::v1::{EventHandler, EventHook, EventHookConfig, EventSource, entity::Spec},
        dataplane::v1::DataPlaneEvent,
    };
    let mut s = setup(&[]).await;
    let gw = s.gateway.id.clone();
    // A hook that takes every denial, so each one needs an outbox write.
    s.admin
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::entity(
                &gw,
                "denials",
                Spec::EventHook(EventHook {
                    source: EventSource::Dataplane as i32,
                    event: "acl_denied".into(),
                    handler: EventHandler::Log as i32,
                    config: Some(EventHookConfig {
                        timeout: 5,
                        ..Default::default()
                    }),
                    snooze_seconds: 0,
                }),
            )),
        })
        .await
        .unwrap();
    let n = joined(&s, "noisy").await;
    wait_nodes(&mut s.admin, &gw, |l| l.len() == 1).await;

    // The outbox is stuck behind another writer while the node floods.
    let mut conn = db::open(s.dir.path()).await;
    sqlx::Executor::execute(&mut conn, "BEGIN IMMEDIATE")
        .await
        .unwrap();
    for batch in 0..30 {
        let events = (0..100)
            .map(|i| DataPlaneEvent {
                event: "acl_denied".into(),
                key: format!("client-{batch}-{i}"),
                count: 1,
                hop: "virtual_cluster".into(),
                entity_id: "acl".into(),
                message: "denied".into(),
                shadow: false,
            })
            .collect();
        n.send_events(events).await;
    }
    let line = common::logged(&s.server, Duration::from_secs(20), |l| {
        l.contains("data-plane events dropped")
    })
    .await
    .expect("3,000 events against a stuck outbox overflow the queue");
    assert!(
        line.contains("dropped=1 "),
        "the first drop is reported: {line}"
    );
    sqlx::Executor::execute(&mut conn, "ROLLBACK")
        .await
        .unwrap();

    // The stream survives, and its end reports the total.
    wait_nodes(&mut s.admin, &gw, |l| l.len() == 1 && l[0].connected).await;
    drop(n);
    let total = common::logged(&s.server, Duration::from_secs(30), |l| {
        l.contains("data-plane events dropped during this stream")
    })
    .await
    .expect("the total at the end of the stream");
    let dropped: u64 = total
        .split("dropped=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(
        (3_000 - 1_100..3_000).contains(&dropped),
        "about all but the queue's 1,024 were dropped: {total}"
    );
}

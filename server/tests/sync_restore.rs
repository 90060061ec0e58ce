//! A node that is ahead of the server's revision log (an older copy of the
//! database was put back) is resynchronised from the server's snapshot and
//! then gets every change after it, although their revisions are ones it
//! once ACKed from the lost history.

mod common;

use common::create;

use std::path::Path;

use common::fixtures;
use sluice_acceptance::node::{self, Node};

/// Copies the database files (`sluice.db` and any WAL beside it) of a
/// stopped server from `from` to `to`, replacing what `to` holds.
fn copy_database(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(to).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sluice.db")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        if name.to_string_lossy().starts_with("sluice.db") {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

#[tokio::test]
async fn a_node_ahead_of_a_restored_database_gets_the_changes_after_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    let token = common::create_token(&data);
    let server = common::start_server(&data, &[]);
    let mut admin = server.client(Some(&token)).await;
    let gateway = create(&mut admin, fixtures::gateway("edge")).await;
    server.stop();
    let certs = node::issue(common::bin(), &data, "edge", &dir.path().join("node"));
    copy_database(&data, &backup);

    // Later history, which the node applies and ACKs.
    let server = common::start_server(&data, &[]);
    let mut admin = server.client(Some(&token)).await;
    for i in 0..3 {
        create(
            &mut admin,
            fixtures::backend(&gateway.id, &format!("lost-{i}"), "pw-123456"),
        )
        .await;
    }
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let ahead = n.update().await;
    assert_eq!(ahead.upserted.len(), 4, "the gateway and three backends");
    n.ack(&ahead).await;
    drop(n);
    server.stop();

    // The older database is put back: the node is ahead of its log.
    copy_database(&backup, &data);
    let server = common::start_server(&data, &[]);
    let mut admin = server.client(Some(&token)).await;
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", ahead.revision))
        .await
        .unwrap();
    let snapshot = n.update().await;
    assert!(snapshot.snapshot, "a node ahead of the log gets a snapshot");
    assert!(snapshot.revision < ahead.revision, "{snapshot:?}");
    assert_eq!(snapshot.upserted.len(), 1, "only the gateway");
    n.ack(&snapshot).await;

    // A revision the node once ACKed, from this store's own history now.
    let made = create(
        &mut admin,
        fixtures::backend(&gateway.id, "after-restore", "pw-123456"),
    )
    .await;
    assert!(made.revision <= ahead.revision, "the test reuses revisions");
    let delta = n.update().await;
    assert!(!delta.snapshot);
    assert_eq!(
        (delta.base_revision, delta.revision),
        (snapshot.revision, made.revision)
    );
    assert_eq!(
        delta.upserted.iter().map(|e| &e.id).collect::<Vec<_>>(),
        [&made.id]
    );
    server.stop();
}

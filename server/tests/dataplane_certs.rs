//! Node certificates made outside Terraform: `sluice-server dataplane-cert
//! list` and `revoke` (also while a server runs on the data directory: its
//! connected node is disconnected), and a gateway delete that names the
//! certificates blocking it and, with `force`, revokes them with it.

mod common;

use std::{path::Path, process::Command};

use common::{create, fixtures};
use sluice_acceptance::node::{self, Node, NodeCerts};
use sluice_proto::admin::v1::{DeleteEntityRequest, Entity, GetEntityRequest, Kind};
use tonic::{Code, Status};

fn data(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// `dataplane-cert list` as tab-separated rows (header dropped).
fn list(dir: &Path, gateway: &str) -> Vec<Vec<String>> {
    common::run_cli(&[
        "dataplane-cert",
        "list",
        "--gateway",
        gateway,
        "--data-dir",
        data(dir),
    ])
    .lines()
    .skip(1)
    .map(|l| l.split('\t').map(str::to_string).collect())
    .collect()
}

fn listed_ids(dir: &Path, gateway: &str) -> Vec<String> {
    list(dir, gateway)
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// Runs `sluice-server` with `args` and extra environment; (success,
/// stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run sluice-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The error a node with `certs` gets when it tries to sync.
async fn refused(addr: &str, certs: &NodeCerts) -> Status {
    match Node::connect(addr, certs, node::hello("again", 0)).await {
        Ok(mut n) => n.next().await.unwrap_err(),
        Err(e) => e,
    }
}

/// A node with `certs` that connected and took its snapshot.
async fn synced(addr: &str, certs: &NodeCerts, id: &str) -> Node {
    let mut n = Node::connect(addr, certs, node::hello(id, 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    assert!(snapshot.snapshot);
    n.ack(&snapshot).await;
    n
}

#[tokio::test]
async fn the_cli_lists_and_revokes_certificates_of_a_running_server() {
    let (dir, server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("edge")).await;
    let a = node::issue(common::bin(), dir.path(), "edge", &dir.path().join("a"));
    let b = node::issue(common::bin(), dir.path(), &gw.id, &dir.path().join("b"));

    let rows = list(dir.path(), "edge");
    assert_eq!(
        listed_ids(dir.path(), &gw.id),
        [a.id.as_str(), b.id.as_str()]
    );
    for row in &rows {
        assert_eq!(
            row.len(),
            5,
            "id, name, created, expires, fingerprint: {row:?}"
        );
        assert!(row[1].starts_with("node-"), "{row:?}");
        assert!(row[3].starts_with("20"), "an RFC 3339 expiry: {row:?}");
        assert!(!row[4].is_empty(), "a fingerprint: {row:?}");
    }
    // Every flag reads a SLUICE_* variable; --json gives the same facts.
    let (ok, stdout, stderr) = run(
        &["dataplane-cert", "list"],
        &[
            ("SLUICE_GATEWAY", "edge"),
            ("SLUICE_DATA_DIR", data(dir.path())),
            ("SLUICE_OUTPUT_JSON", "true"),
        ],
    );
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let json = json.as_array().unwrap();
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["id"], a.id.as_str());
    assert_eq!(json[0]["fingerprint"], rows[0][4].as_str());
    assert_eq!(json[0]["generated"], true);

    // Node A is connected when the CLI, another process, revokes its
    // certificate: the running server ends its stream.
    let mut node_a = synced(&server.sync_addr, &a, "node-a").await;
    let (ok, _, stderr) = run(
        &["dataplane-cert", "revoke", "--data-dir", data(dir.path())],
        &[("SLUICE_REVOKE_CERT_ID", &a.id)],
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&a.id) && stderr.contains("disconnects"),
        "{stderr}"
    );
    let end = loop {
        match node_a.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(end.code(), Code::PermissionDenied, "{end:?}");
    assert!(end.message().contains("revoked"), "{end:?}");
    assert_eq!(listed_ids(dir.path(), "edge"), [b.id.as_str()]);
    assert_eq!(
        refused(&server.sync_addr, &a).await.code(),
        Code::PermissionDenied
    );
    // B still syncs; then --gateway --all revokes it too.
    drop(synced(&server.sync_addr, &b, "node-b").await);
    let (ok, _, stderr) = run(
        &[
            "dataplane-cert",
            "revoke",
            "--gateway",
            "edge",
            "--all",
            "--data-dir",
            data(dir.path()),
        ],
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(listed_ids(dir.path(), "edge").is_empty());
    assert_eq!(
        refused(&server.sync_addr, &b).await.code(),
        Code::PermissionDenied
    );
    // Nothing left to revoke, an unknown id, a bare --gateway: refused.
    for args in [
        vec!["--gateway", "edge", "--all"],
        vec!["--id", a.id.as_str()],
        vec!["--gateway", "edge"],
    ] {
        let mut full = vec!["dataplane-cert", "revoke", "--data-dir", data(dir.path())];
        full.extend(args.iter().copied());
        let (ok, _, stderr) = run(&full, &[]);
        assert!(!ok, "{args:?} must fail");
        assert!(!stderr.is_empty());
    }
}

async fn delete(c: &mut common::Admin, e: &Entity, force: bool) -> Result<i64, Status> {
    c.delete_entity(DeleteEntityRequest {
        kind: e.kind() as i32,
        id: e.id.clone(),
        expected_revision: 0,
        force,
    })
    .await
    .map(|r| r.into_inner().revision)
}

#[tokio::test]
async fn a_gateway_delete_names_its_certificates_and_force_revokes_them() {
    let (dir, server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("edge")).await;
    let certs = node::issue(common::bin(), dir.path(), "edge", &dir.path().join("n"));
    let mut n = synced(&server.sync_addr, &certs, "n1").await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;

    // Configuration blocks the delete, force or not, and is named.
    for force in [false, true] {
        let err = delete(&mut c, &gw, force).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        let m = err.message();
        assert!(
            m.contains("backend_cluster \"kafka\"") && m.contains(&backend.id),
            "{m}"
        );
        assert!(
            m.contains("`force`") && m.contains("never configuration"),
            "{m}"
        );
    }
    // Force belongs to gateways only.
    let err = delete(&mut c, &backend, true).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    delete(&mut c, &backend, false).await.unwrap();

    // Now only the CLI-made certificate blocks: named, with the way out.
    let err = delete(&mut c, &gw, false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let m = err.message();
    assert!(
        m.contains("data_plane_certificate") && m.contains(&certs.id) && m.contains("`force`"),
        "{m}"
    );
    assert!(
        common::nodes(&mut c, &gw.id)
            .await
            .iter()
            .any(|n| n.connected),
        "the node is still connected"
    );

    // Force revokes it (its node is disconnected) and forgets the nodes.
    delete(&mut c, &gw, true).await.unwrap();
    let end = loop {
        match n.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(end.code(), Code::PermissionDenied, "{end:?}");
    assert!(end.message().contains("revoked"), "{end:?}");
    let gone = c
        .get_entity(GetEntityRequest {
            kind: Kind::DataPlaneCertificate as i32,
            id: certs.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(
        refused(&server.sync_addr, &certs).await.code(),
        Code::PermissionDenied
    );
    // The node's disconnect is recorded after the delete: still forgotten.
    let mut conn = common::db::open(dir.path()).await;
    for _ in 0..3 {
        common::nodes(&mut c, &gw.id).await;
    }
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM data_plane_nodes WHERE gateway_id = ?")
            .bind(&gw.id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(left, 0, "node records of a deleted gateway are forgotten");
}

/// The status a stream ends with, after any updates still on their way.
async fn ended(n: &mut Node) -> Status {
    loop {
        match n.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    }
}

#[tokio::test]
async fn a_revocation_ends_every_stream_of_a_node_id() {
    let (dir, server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("edge")).await;
    let certs = node::issue(common::bin(), dir.path(), "edge", &dir.path().join("n"));
    // Two streams say hello as the same node with the same certificate,
    // then another process revokes the certificate: no stream of it stays.
    let mut older = synced(&server.sync_addr, &certs, "twin").await;
    let mut newer = synced(&server.sync_addr, &certs, "twin").await;
    let (ok, _, stderr) = run(
        &["dataplane-cert", "revoke", "--data-dir", data(dir.path())],
        &[("SLUICE_REVOKE_CERT_ID", &certs.id)],
    );
    assert!(ok, "{stderr}");
    let end = ended(&mut newer).await;
    assert_eq!(end.code(), Code::PermissionDenied, "{end:?}");
    assert!(end.message().contains("revoked"), "{end:?}");
    // The older one was closed when the newer one connected: one live
    // stream per node id, and the server says so.
    let end = ended(&mut older).await;
    assert_eq!(end.code(), Code::Aborted, "{end:?}");
    assert!(end.message().contains("another sync stream"), "{end:?}");
    let warned = common::logged(&server, std::time::Duration::from_secs(10), |l| {
        l.contains("one live stream per node id")
    })
    .await;
    assert!(warned.is_some(), "the replaced stream is logged");

    // A change made afterwards (a secret in it) reaches neither.
    create(&mut c, fixtures::backend(&gw.id, "later", "pw-123456")).await;
    for n in [&mut older, &mut newer] {
        match n.next().await {
            Ok(None) | Err(_) => {}
            Ok(Some(u)) => panic!("an ended stream got an update: {u:?}"),
        }
    }
}

#[tokio::test]
async fn revoke_all_reports_each_certificate_it_revoked_before_a_failure() {
    let (dir, _server, mut c, _) = common::start().await;
    create(&mut c, fixtures::gateway("edge")).await;
    node::issue(common::bin(), dir.path(), "edge", &dir.path().join("a"));
    node::issue(common::bin(), dir.path(), "edge", &dir.path().join("b"));
    let ids = listed_ids(dir.path(), "edge");
    // The second one cannot be deleted.
    let mut conn = common::db::open(dir.path()).await;
    sqlx::query(&format!(
        "CREATE TRIGGER keep_one BEFORE DELETE ON entities WHEN OLD.id = '{}' \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ids[1]
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let (ok, _, stderr) = run(
        &[
            "dataplane-cert",
            "revoke",
            "--gateway",
            "edge",
            "--all",
            "--data-dir",
            data(dir.path()),
        ],
        &[],
    );
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("revoked data_plane_certificate") && stderr.contains(&ids[0]),
        "the one revoked is named: {stderr}"
    );
    assert!(
        stderr.contains(&ids[1]) && stderr.contains("1 of 2 revoked before it"),
        "{stderr}"
    );
    assert_eq!(listed_ids(dir.path(), "edge"), [ids[1].clone()]);
}

#[tokio::test]
async fn a_gateway_delete_that_committed_succeeds_even_if_forgetting_its_nodes_fails() {
    let (dir, server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("edge")).await;
    let certs = node::issue(common::bin(), dir.path(), "edge", &dir.path().join("n"));
    let mut n = synced(&server.sync_addr, &certs, "n1").await;
    assert_eq!(common::nodes(&mut c, &gw.id).await.len(), 1, "saved");
    // The delete's own transaction removes the node's row; that leaves one
    // behind which cannot be deleted, so only the cleanup after the
    // commit fails.
    let mut conn = common::db::open(dir.path()).await;
    for sql in [
        "CREATE TRIGGER leave_one AFTER DELETE ON data_plane_nodes WHEN OLD.id != 'left' \
         BEGIN INSERT INTO data_plane_nodes (id, gateway_id, hostname, version, certificate_id, \
         connected, last_seen_at, applied_revision, applied_at) \
         VALUES ('left', OLD.gateway_id, '', '', '', 0, 0, 0, 0); END",
        "CREATE TRIGGER keep_left BEFORE DELETE ON data_plane_nodes WHEN OLD.id = 'left' \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    delete(&mut c, &gw, true)
        .await
        .expect("the gateway is gone: its delete succeeded");
    assert_eq!(ended(&mut n).await.code(), Code::PermissionDenied);
    let gone = c
        .get_entity(GetEntityRequest {
            kind: Kind::Gateway as i32,
            id: gw.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let logged = common::logged(&server, std::time::Duration::from_secs(10), |l| {
        l.contains("could not forget its node records")
    })
    .await;
    assert!(logged.is_some(), "the failure after the commit is logged");
}

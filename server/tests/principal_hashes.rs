//! Data planes never get a virtual cluster's principal passwords: the sync
//! stream carries an argon2id hash in `password_hash` instead (live
//! deltas, snapshots and deltas replayed from the log alike), the same
//! hash every time, and admin reads never show it.

mod common;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use common::{create, fixtures};
use sluice_acceptance::node::{self, Node};
use sluice_proto::admin::v1::{
    Entity, GetEntityRequest, Kind, Principal, entity::Spec, virtual_cluster_authentication::Method,
};

fn principals(e: &Entity) -> Vec<Principal> {
    let Some(Spec::VirtualCluster(vc)) = &e.spec else {
        panic!("not a virtual cluster: {e:?}")
    };
    vc.authentication
        .iter()
        .filter_map(|r| match &r.method {
            Some(Method::SaslPlain(p)) => Some(p.principals.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The one principal of the fixture (alice, "alice-pw-123"): hashed, no
/// password; returns the hash.
fn hashed(e: &Entity) -> String {
    let found = principals(e);
    assert_eq!(found.len(), 1, "{found:?}");
    let p = &found[0];
    assert_eq!(p.username, "alice");
    let secret = p.password.as_ref().expect("the fingerprint stays");
    assert_eq!(secret.value, "", "a data plane got the password");
    assert!(secret.fingerprint.starts_with("hmac-sha256:"), "{secret:?}");
    assert!(
        p.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        p.password_hash
    );
    let parsed = PasswordHash::new(&p.password_hash).unwrap();
    assert!(
        Argon2::default()
            .verify_password(b"alice-pw-123", &parsed)
            .is_ok()
    );
    assert!(
        Argon2::default()
            .verify_password(b"alice-pw-124", &parsed)
            .is_err()
    );
    p.password_hash.clone()
}

#[tokio::test]
async fn data_planes_get_principal_password_hashes_never_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let server = common::start_server(dir.path(), &[]);
    let mut admin = server.client(Some(&token)).await;
    let gateway = create(&mut admin, fixtures::gateway("edge")).await;
    let certs = node::issue(common::bin(), dir.path(), "edge", &dir.path().join("node"));
    let backend = create(
        &mut admin,
        fixtures::backend(&gateway.id, "kafka", "pw-123456"),
    )
    .await;

    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    let vc = create(
        &mut admin,
        fixtures::virtual_cluster(&gateway.id, "team-a", &backend.id, "team-a"),
    )
    .await;
    // Live delta.
    let live = n.update().await;
    let live_vc = live
        .upserted
        .iter()
        .find(|e| e.id == vc.id)
        .expect("the vc");
    let hash = hashed(live_vc);
    n.ack(&live).await;
    drop(n);

    // A new node's snapshot, and a node resuming from the log: the same
    // hash (nodes see no spurious change).
    let mut fresh = Node::connect(&server.sync_addr, &certs, node::hello("n2", 0))
        .await
        .unwrap();
    let snap = fresh.update().await;
    assert!(snap.snapshot);
    let snap_vc = snap
        .upserted
        .iter()
        .find(|e| e.id == vc.id)
        .expect("the vc");
    assert_eq!(hashed(snap_vc), hash);
    let mut resumed = Node::connect(
        &server.sync_addr,
        &certs,
        node::hello("n3", snapshot.revision),
    )
    .await
    .unwrap();
    let replayed = resumed.update().await;
    assert!(!replayed.snapshot, "resumed from the log");
    let replayed_vc = replayed
        .upserted
        .iter()
        .find(|e| e.id == vc.id)
        .expect("the vc");
    assert_eq!(hashed(replayed_vc), hash);

    // Admin reads: the fingerprint, never the hash.
    let read = admin
        .get_entity(GetEntityRequest {
            kind: Kind::VirtualCluster as i32,
            id: vc.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let found = principals(&read);
    assert_eq!(found.len(), 1);
    for p in found {
        assert_eq!(p.password_hash, "", "an admin read shows the hash");
    }
}

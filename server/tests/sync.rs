//! The data-plane sync stream over mTLS: snapshots, deltas in revision
//! order, resume after a disconnect, NACK handling, revocation, compaction
//! and node status.

mod common;

use common::{create, nodes, wait_nodes};

use common::fixtures;
use sluice_acceptance::node::{self, Node, NodeCerts};
use sluice_proto::admin::v1::{
    CreateEntityRequest, DeleteDataPlaneNodeRequest, DeleteEntityRequest, Entity, Kind,
    UpdateEntityRequest, backend_authentication::Method, entity::Spec,
};
use tonic::Code;

struct Setup {
    _dir: tempfile::TempDir,
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
    let gateway = create(&mut admin, fixtures::gateway("edge")).await;
    let certs = node::issue(common::bin(), dir.path(), "edge", &dir.path().join("node"));
    Setup {
        _dir: dir,
        server,
        admin,
        gateway,
        certs,
    }
}

async fn delete(admin: &mut common::Admin, e: &Entity) -> i64 {
    admin
        .delete_entity(DeleteEntityRequest {
            kind: e.kind() as i32,
            id: e.id.clone(),
            expected_revision: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .revision
}

fn ids(entities: &[Entity]) -> Vec<&str> {
    entities.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test]
async fn a_node_sees_exactly_the_changes_in_revision_order() {
    let Setup {
        _dir,
        server,
        mut admin,
        gateway,
        certs,
    } = setup(&[]).await;
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    assert!(snapshot.snapshot);
    assert_eq!(
        ids(&snapshot.upserted),
        [gateway.id.as_str()],
        "a new gateway's snapshot holds the gateway only"
    );
    n.ack(&snapshot).await;

    let backend = create(
        &mut admin,
        fixtures::backend(&gateway.id, "kafka", "s3cret-pw"),
    )
    .await;
    let u1 = n.update().await;
    assert!(!u1.snapshot);
    assert_eq!(
        (u1.revision, u1.base_revision),
        (backend.revision, snapshot.revision)
    );
    assert_eq!(ids(&u1.upserted), [backend.id.as_str()]);
    // Data planes get secret values in clear (they talk to the brokers).
    let Some(Spec::BackendCluster(b)) = &u1.upserted[0].spec else {
        panic!()
    };
    let Some(Method::SaslPlain(p)) = b.authentication.as_ref().and_then(|a| a.method.as_ref())
    else {
        panic!()
    };
    assert_eq!(p.password.as_ref().unwrap().value, "s3cret-pw");
    n.ack(&u1).await;

    let mut changed = backend.clone();
    changed.description = "changed".into();
    let changed = admin
        .update_entity(UpdateEntityRequest {
            entity: Some(changed),
            expected_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let u2 = n.update().await;
    assert_eq!(
        (u2.revision, u2.base_revision),
        (changed.revision, u1.revision)
    );
    assert_eq!(u2.upserted[0].description, "changed");
    n.ack(&u2).await;

    let deleted_at = delete(&mut admin, &backend).await;
    let u3 = n.update().await;
    assert_eq!(u3.revision, deleted_at);
    assert!(u3.upserted.is_empty());
    assert_eq!(u3.removed.len(), 1);
    assert_eq!(
        (u3.removed[0].kind, u3.removed[0].id.as_str()),
        (Kind::BackendCluster as i32, backend.id.as_str())
    );
    n.ack(&u3).await;

    // An event hook is control-plane only: no update reaches the node, so
    // the next update it sees is the listener's.
    create(
        &mut admin,
        fixtures::of_kind(
            Kind::EventHook,
            &fixtures::Ids {
                gateway: gateway.id.clone(),
                ..Default::default()
            },
        ),
    )
    .await;
    let listener = create(&mut admin, fixtures::listener(&gateway.id, "l", &["19092"])).await;
    let u4 = n.update().await;
    assert_eq!(ids(&u4.upserted), [listener.id.as_str()]);
    n.ack(&u4).await;

    // The node's status shows what it ACKed, once the server has read the
    // ACK (the send returns before that).
    let listed = wait_nodes(&mut admin, &gateway.id, |l| {
        l.first().is_some_and(|n| n.applied_revision == u4.revision)
    })
    .await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].connected);
    assert_eq!(listed[0].applied_revision, u4.revision);
    assert_eq!(listed[0].certificate_id, certs.id);
}

#[tokio::test]
async fn a_node_away_during_a_delete_gets_the_removal_on_resume() {
    let Setup {
        _dir,
        server,
        mut admin,
        gateway,
        certs,
    } = setup(&[]).await;
    let first = create(
        &mut admin,
        fixtures::backend(&gateway.id, "first", "pw-123456"),
    )
    .await;
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    assert!(ids(&snapshot.upserted).contains(&first.id.as_str()));
    n.ack(&snapshot).await;
    drop(n);

    delete(&mut admin, &first).await;
    let second = create(
        &mut admin,
        fixtures::backend(&gateway.id, "second", "pw-123456"),
    )
    .await;

    let mut n = Node::connect(
        &server.sync_addr,
        &certs,
        node::hello("n1", snapshot.revision),
    )
    .await
    .unwrap();
    let resume = n.update().await;
    assert!(!resume.snapshot, "resuming within the log is a delta");
    assert_eq!(resume.base_revision, snapshot.revision);
    assert_eq!(resume.revision, second.revision);
    assert_eq!(ids(&resume.upserted), [second.id.as_str()]);
    assert_eq!(
        resume
            .removed
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        [first.id.as_str()]
    );
}

#[tokio::test]
async fn a_nack_is_recorded_and_not_resent() {
    let Setup {
        _dir,
        server,
        mut admin,
        gateway,
        certs,
    } = setup(&[]).await;
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;

    let bad = create(
        &mut admin,
        fixtures::backend(&gateway.id, "rejected", "pw-123456"),
    )
    .await;
    let u1 = n.update().await;
    n.nack(&u1, "backend_cluster rejected: cannot resolve host")
        .await;

    // The server does not resend: the next update comes with the next
    // revision, rebuilt from the node's last good revision, so it carries
    // both changes.
    let next = create(
        &mut admin,
        fixtures::backend(&gateway.id, "next", "pw-123456"),
    )
    .await;
    let u2 = n.update().await;
    assert_ne!(u2.nonce, u1.nonce);
    assert_eq!(u2.revision, next.revision);
    assert_eq!(u2.base_revision, snapshot.revision);
    assert_eq!(ids(&u2.upserted), [bad.id.as_str(), next.id.as_str()]);

    let listed = wait_nodes(&mut admin, &gateway.id, |l| l[0].rejected.is_some()).await;
    let rejected = listed[0].rejected.as_ref().expect("rejection recorded");
    assert_eq!(rejected.revision, u1.revision);
    assert!(rejected.reason.contains("cannot resolve host"));
    assert_eq!(
        listed[0].applied_revision, snapshot.revision,
        "the node stays at its last good revision"
    );

    n.ack(&u2).await;
    wait_nodes(&mut admin, &gateway.id, |l| {
        l[0].applied_revision == u2.revision
    })
    .await;
}

#[tokio::test]
async fn unknown_and_revoked_certificates_are_refused() {
    let Setup {
        _dir,
        server,
        mut admin,
        gateway,
        certs,
    } = setup(&[]).await;
    // A certificate from no gateway CA is refused in the TLS handshake (an
    // UnknownCA alert), before any gRPC call: the client sees the broken
    // connection, as Unknown ("transport error") or, when the alert wins
    // the race with the request, Cancelled; never a status from a handler.
    let (cert, key) = fixtures::cert_and_key();
    let stranger = NodeCerts {
        ca: certs.ca.clone(),
        cert,
        key,
        id: String::new(),
    };
    let err = match Node::connect(&server.sync_addr, &stranger, node::hello("x", 0)).await {
        Ok(mut n) => n.next().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(
            err.code(),
            Code::Unknown | Code::Cancelled | Code::Unavailable
        ),
        "{err:?}"
    );
    let refused = common::logged(&server, std::time::Duration::from_secs(20), |l| {
        l.contains("TLS handshake refused")
    })
    .await
    .expect("the server logs the refused handshake");
    assert!(
        refused.contains("invalid peer certificate: UnknownIssuer"),
        "{refused}"
    );

    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    admin
        .delete_entity(DeleteEntityRequest {
            kind: Kind::DataPlaneCertificate as i32,
            id: certs.id.clone(),
            expected_revision: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    // The open stream ends with PERMISSION_DENIED...
    let end = n.next().await.unwrap_err();
    assert_eq!(end.code(), Code::PermissionDenied, "{end:?}");
    assert!(end.message().contains("revoked"));
    // ...and the certificate is refused from then on.
    let err = match Node::connect(&server.sync_addr, &certs, node::hello("n1", 0)).await {
        Ok(mut again) => again.next().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let _ = gateway;
}

#[tokio::test]
async fn a_node_gets_a_snapshot_when_the_log_no_longer_reaches_back() {
    let Setup {
        _dir,
        server,
        mut admin,
        gateway,
        certs,
    } = setup(&["--revision-log-keep", "3"]).await;
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    drop(n);
    let mut made = Vec::new();
    for i in 0..6 {
        made.push(
            create(
                &mut admin,
                fixtures::backend(&gateway.id, &format!("b{i}"), "pw-123456"),
            )
            .await,
        );
    }
    let mut n = Node::connect(
        &server.sync_addr,
        &certs,
        node::hello("n1", snapshot.revision),
    )
    .await
    .unwrap();
    let again = n.update().await;
    assert!(
        again.snapshot,
        "the log was compacted past the node's revision"
    );
    assert_eq!(again.revision, made.last().unwrap().revision);
    assert_eq!(again.upserted.len(), 7, "the gateway and six backends");
}

#[tokio::test]
async fn disconnected_nodes_stay_listed_until_pruned() {
    let Setup {
        _dir,
        server,
        mut admin,
        gateway,
        certs,
    } = setup(&[]).await;
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    let err = admin
        .delete_data_plane_node(DeleteDataPlaneNodeRequest {
            gateway_id: gateway.id.clone(),
            id: "n1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "a connected node cannot be pruned"
    );
    drop(n);
    // The disconnect is recorded when the server sees the stream end.
    let listed = wait_nodes(&mut admin, &gateway.id, |l| !l[0].connected).await;
    assert_eq!(listed[0].applied_revision, snapshot.revision);
    admin
        .delete_data_plane_node(DeleteDataPlaneNodeRequest {
            gateway_id: gateway.id.clone(),
            id: "n1".into(),
        })
        .await
        .unwrap();
    assert!(nodes(&mut admin, &gateway.id).await.is_empty());
}

#[tokio::test]
async fn a_node_with_a_certificate_signed_from_its_csr_joins() {
    let Setup {
        _dir,
        server,
        mut admin,
        gateway,
        certs,
    } = setup(&[]).await;
    // The node keeps its key; the server signs its request.
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let signed = create(
        &mut admin,
        fixtures::entity(
            &gateway.id,
            "from-csr",
            Spec::DataPlaneCertificate(sluice_proto::admin::v1::DataPlaneCertificate {
                csr,
                ..Default::default()
            }),
        ),
    )
    .await;
    let Some(Spec::DataPlaneCertificate(dp)) = &signed.spec else {
        panic!()
    };
    assert!(dp.private_key.is_empty(), "the server never had this key");
    assert!(dp.certificate.contains("BEGIN CERTIFICATE") && dp.expires_at.is_some());
    let own = NodeCerts {
        ca: certs.ca.clone(),
        cert: dp.certificate.clone(),
        key: key.serialize_pem(),
        id: signed.id.clone(),
    };
    let mut n = Node::connect(&server.sync_addr, &own, node::hello("csr-node", 0))
        .await
        .unwrap();
    assert!(n.update().await.snapshot);

    // A plain certificate instead of a request is refused at the field.
    let (csr, _) = fixtures::cert_and_key();
    let status = admin
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::entity(
                &gateway.id,
                "not-a-csr",
                Spec::DataPlaneCertificate(sluice_proto::admin::v1::DataPlaneCertificate {
                    csr,
                    ..Default::default()
                }),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("certificate"),
        "{}",
        status.message()
    );
}

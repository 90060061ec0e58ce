//! Revocation on the paths that do not read the change feed: a session
//! that must send a snapshot (its feed lagged) or resume from the log
//! re-checks its certificate first, and sends nothing once it is revoked.

use sluice_proto::admin::v1::{DataPlaneCertificate, Gateway, Listener, entity::Spec};
use sluice_proto::dataplane::v1::Ack;
use tonic::Code;

use super::*;
use crate::{secrets::MasterKey, store::Mode};

/// A store with a gateway and a node certificate: (dir, store, gateway id,
/// certificate id).
async fn gateway_with_certificate() -> (tempfile::TempDir, Store, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), MasterKey::random()).await.unwrap();
    let gateway = store
        .create(
            Entity {
                name: "gw".into(),
                spec: Some(Spec::Gateway(Gateway::default())),
                ..Default::default()
            },
            Mode::Commit,
        )
        .await
        .unwrap();
    let certificate = store
        .create(
            Entity {
                gateway_id: gateway.id.clone(),
                name: "node".into(),
                spec: Some(Spec::DataPlaneCertificate(DataPlaneCertificate {
                    generated: true,
                    ..Default::default()
                })),
                ..Default::default()
            },
            Mode::Commit,
        )
        .await
        .unwrap();
    (dir, store, gateway.id, certificate.id)
}

/// A session of that certificate's node, which said hello at `revision`,
/// and the stream's receiving end.
fn session(
    store: &Store,
    gateway_id: &str,
    certificate_id: &str,
    revision: i64,
) -> (Session, mpsc::Receiver<Result<ServerMessage, Status>>) {
    let (out, rx) = mpsc::channel(8);
    let peer = Peer {
        gateway_id: gateway_id.into(),
        certificate_id: certificate_id.into(),
    };
    let hello = Hello {
        node_id: "n1".into(),
        last_applied_revision: revision,
        ..Default::default()
    };
    let registry = Registry::new(store.clone());
    (
        Session::new(
            store.clone(),
            registry,
            crate::sync::quotas::Quotas::default(),
            peer,
            hello,
            out,
        ),
        rx,
    )
}

fn update(message: Result<ServerMessage, Status>) -> ConfigUpdate {
    match message.unwrap().message {
        Some(server_message::Message::Update(u)) => u,
        other => panic!("expected an update, got {other:?}"),
    }
}

async fn revoke(store: &Store, certificate_id: &str) {
    store
        .delete(Kind::DataPlaneCertificate, certificate_id, 0, Mode::Commit)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lagged_stream_gets_no_snapshot_once_its_certificate_is_revoked() {
    let (_dir, store, gateway, certificate) = gateway_with_certificate().await;
    let (mut session, mut rx) = session(&store, &gateway, &certificate, 0);
    session.send_next().await.unwrap();
    let first = update(rx.recv().await.unwrap());
    assert!(first.snapshot);
    session
        .on_node_message(NodeMessage {
            message: Some(node_message::Message::Ack(Ack {
                nonce: first.nonce,
                revision: first.revision,
            })),
        })
        .unwrap();
    // The revocation was among the changes the lagged feed dropped.
    revoke(&store, &certificate).await;
    session.plan.on_lagged();
    let refused = session.send_next().await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(rx.try_recv().is_err(), "nothing was sent after revocation");
}

#[tokio::test]
async fn a_resuming_stream_gets_nothing_once_its_certificate_is_revoked() {
    let (_dir, store, gateway, certificate) = gateway_with_certificate().await;
    let known = store.latest_revision(&gateway).await.unwrap();
    store
        .create(
            Entity {
                gateway_id: gateway.clone(),
                name: "l".into(),
                spec: Some(Spec::Listener(Listener {
                    addresses: vec!["127.0.0.1".into()],
                    ports: vec!["9092".into()],
                    ..Default::default()
                })),
                ..Default::default()
            },
            Mode::Commit,
        )
        .await
        .unwrap();
    // Revoked between the handshake and the session's first update.
    let (mut session, mut rx) = session(&store, &gateway, &certificate, known);
    revoke(&store, &certificate).await;
    let refused = session.send_next().await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(rx.try_recv().is_err(), "no delta was sent after revocation");
}

#[tokio::test]
async fn a_live_certificate_resumes_from_the_log() {
    let (_dir, store, gateway, certificate) = gateway_with_certificate().await;
    let known = store.latest_revision(&gateway).await.unwrap();
    store
        .create(
            Entity {
                gateway_id: gateway.clone(),
                name: "l".into(),
                spec: Some(Spec::Listener(Listener {
                    addresses: vec!["127.0.0.1".into()],
                    ports: vec!["9092".into()],
                    ..Default::default()
                })),
                ..Default::default()
            },
            Mode::Commit,
        )
        .await
        .unwrap();
    let (mut session, mut rx) = session(&store, &gateway, &certificate, known);
    session.send_next().await.unwrap();
    let delta = update(rx.recv().await.unwrap());
    assert!(!delta.snapshot);
    assert_eq!((delta.base_revision, delta.upserted.len()), (known, 1));
}

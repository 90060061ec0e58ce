//! Secrets are write-only: never in a response, never in clear in the
//! database file; reads show a fingerprint.

mod common;

use common::fixtures::{self, Ids};
use prost::Message;
use sha2::{Digest, Sha256};
use sluice_proto::admin::v1::{
    CreateEntityRequest, Entity, GetEntityRequest, Kind, ListEntitiesRequest, ListRevisionsRequest,
    UpdateEntityRequest, entity::Spec,
};

const BACKEND_PW: &str = "backend-pw-123";
const PRINCIPAL_PW: &str = "alice-pw-123";
const HOOK_SECRET: &str = "hook-secret-123";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_never_leave_and_never_rest_in_clear() {
    let (dir, server, mut c, _) = common::start().await;
    let mut ids = Ids::default();
    let gw = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::gateway("s")),
        })
        .await
        .unwrap()
        .into_inner();
    ids.gateway = gw.id.clone();
    let mut responses: Vec<Vec<u8>> = Vec::new();
    let mut made: Vec<Entity> = Vec::new();
    for kind in [
        Kind::BackendCluster,
        Kind::VirtualCluster,
        Kind::StaticKey,
        Kind::EventHook,
    ] {
        let e = c
            .create_entity(CreateEntityRequest {
                entity: Some(fixtures::of_kind(kind, &ids)),
            })
            .await
            .unwrap()
            .into_inner();
        if kind == Kind::BackendCluster {
            ids.backend = e.id.clone();
        }
        responses.push(e.encode_to_vec());
        made.push(e);
    }
    let static_key = "ab".repeat(32);
    let plain = [BACKEND_PW, PRINCIPAL_PW, HOOK_SECRET, static_key.as_str()];

    // The backend's password reads back as its fingerprint.
    let Some(Spec::BackendCluster(b)) = &made[0].spec else {
        panic!()
    };
    let Some(sluice_proto::admin::v1::backend_authentication::Method::SaslPlain(p)) =
        b.authentication.as_ref().unwrap().method.as_ref()
    else {
        panic!()
    };
    let pw = p.password.as_ref().unwrap();
    assert_eq!(pw.value, "");
    // Keyed: not the bare digest anyone could test guesses against.
    assert!(
        pw.fingerprint.starts_with("hmac-sha256:"),
        "{}",
        pw.fingerprint
    );
    assert!(
        !pw.fingerprint
            .contains(&hex::encode(Sha256::digest(BACKEND_PW)))
    );

    // An update that leaves the secret empty keeps it; one with a new value
    // changes the fingerprint.
    let mut keep = made[0].clone();
    keep.description = "kept".into();
    let kept = c
        .update_entity(UpdateEntityRequest {
            entity: Some(keep),
            expected_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    responses.push(kept.encode_to_vec());
    assert_eq!(kept.spec, made[0].spec);

    for e in &made {
        let got = c
            .get_entity(GetEntityRequest {
                kind: e.kind() as i32,
                id: e.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        responses.push(got.encode_to_vec());
        let listed = c
            .list_entities(ListEntitiesRequest {
                kind: e.kind() as i32,
                gateway_id: gw.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        responses.push(listed.encode_to_vec());
    }
    let log = c
        .list_revisions(ListRevisionsRequest {
            gateway_id: gw.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    responses.push(log.encode_to_vec());
    for r in &responses {
        for p in plain {
            assert!(!contains(r, p), "a response contains the secret {p:?}");
        }
    }

    // Stop the server (checkpointing the WAL) and scan every database file.
    drop(c);
    server.stop();
    let mut scanned = 0;
    let mut names_seen = false;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sluice.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            scanned += bytes.len();
            for p in plain {
                assert!(
                    !contains(&bytes, p),
                    "{} contains the secret {p:?}",
                    path.display()
                );
            }
            // The scan can fail: names are stored in clear.
            names_seen |= contains(&bytes, "backend-cluster-1");
        }
    }
    assert!(
        scanned > 0 && names_seen,
        "the scan did not see the stored entities"
    );
}

//! Create, get, list, update and delete of every kind through the gRPC API;
//! referential integrity; revision preconditions and concurrent writers.

mod common;

use common::fixtures::{self, Ids};
use sluice_proto::{
    admin::v1::{
        CreateEntityRequest, DeleteEntityRequest, Entity, GetEntityRequest, Kind,
        ListEntitiesRequest, ListRevisionsRequest, Operation, UpdateEntityRequest, entity::Spec,
    },
    entity::ALL_KINDS,
};
use tonic::Code;

async fn create(c: &mut common::Admin, e: Entity) -> Entity {
    let kind = e.kind();
    c.create_entity(CreateEntityRequest { entity: Some(e) })
        .await
        .unwrap_or_else(|s| panic!("create {}: {s:?}", kind.slug()))
        .into_inner()
}

async fn list(c: &mut common::Admin, kind: Kind, gateway_id: &str) -> Vec<Entity> {
    c.list_entities(ListEntitiesRequest {
        kind: kind as i32,
        gateway_id: gateway_id.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .entities
}

#[tokio::test]
async fn every_kind_round_trips_through_the_api() {
    let (_dir, _server, mut c, _) = common::start().await;
    let mut ids = Ids::default();
    let mut created: Vec<Entity> = Vec::new();
    // ALL_KINDS is in dependency order; the acl policy comes before the
    // header policy that nests under it.
    for kind in ALL_KINDS {
        let e = create(&mut c, fixtures::of_kind(kind, &ids)).await;
        assert_eq!(e.kind(), kind);
        assert!(!e.id.is_empty() && e.revision > 0 && e.created_at.is_some());
        match kind {
            Kind::Gateway => ids.gateway = e.id.clone(),
            Kind::BackendCluster => ids.backend = e.id.clone(),
            Kind::VirtualCluster => ids.virtual_cluster = e.id.clone(),
            Kind::Listener => ids.listener = e.id.clone(),
            Kind::StaticKey => ids.static_key = e.id.clone(),
            Kind::TlsTrustBundle => ids.trust_bundle = e.id.clone(),
            Kind::ClusterPolicyAcls => ids.acl_policy = e.id.clone(),
            _ => {}
        }
        created.push(e);
    }

    // A generated node key is returned once, by the create, never again.
    for e in &mut created {
        if let Some(Spec::DataPlaneCertificate(dp)) = e.spec.as_mut() {
            assert!(dp.private_key.contains("PRIVATE KEY"));
            assert!(
                dp.certificate.contains("BEGIN CERTIFICATE")
                    && dp.fingerprint.starts_with("sha256:")
            );
            dp.private_key.clear();
        }
    }
    for e in &created {
        let kind = e.kind();
        let got = c
            .get_entity(GetEntityRequest {
                kind: kind as i32,
                id: e.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if kind != Kind::Gateway {
            assert_eq!(
                &got,
                e,
                "get returns what create returned for {}",
                kind.slug()
            );
        }
        let listed = list(&mut c, kind, &ids.gateway).await;
        assert!(
            listed.iter().any(|x| x.id == e.id),
            "list of {} has it",
            kind.slug()
        );
        // Asking for the id under another kind is NOT_FOUND, not a mix-up.
        let other = if kind == Kind::Listener {
            Kind::Gateway
        } else {
            Kind::Listener
        };
        let err = c
            .get_entity(GetEntityRequest {
                kind: other as i32,
                id: e.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }

    // The gateway's read-only fields reflect what lives under it.
    let gw = c
        .get_entity(GetEntityRequest {
            kind: Kind::Gateway as i32,
            id: ids.gateway.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(Spec::Gateway(g)) = gw.spec else {
        panic!()
    };
    assert_eq!(g.virtual_clusters_total, 1);
    assert_eq!(g.revision, created.last().unwrap().revision);

    // Update every entity in place: a new description and revision.
    for e in &mut created {
        let mut changed = e.clone();
        changed.description = "changed".into();
        let updated = c
            .update_entity(UpdateEntityRequest {
                entity: Some(changed),
                expected_revision: e.revision,
            })
            .await
            .unwrap_or_else(|s| panic!("update {}: {s:?}", e.kind().slug()))
            .into_inner();
        assert_eq!(updated.description, "changed");
        assert!(updated.revision > e.revision);
        assert_eq!(updated.created_at, e.created_at);
        *e = updated;
    }

    // Delete in reverse dependency order; the server ends empty.
    for e in created.iter().rev() {
        c.delete_entity(DeleteEntityRequest {
            kind: e.kind() as i32,
            id: e.id.clone(),
            expected_revision: e.revision,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("delete {}: {s:?}", e.kind().slug()));
    }
    for kind in ALL_KINDS.into_iter().skip(1) {
        assert!(list(&mut c, kind, &ids.gateway).await.is_empty());
    }
    assert!(list(&mut c, Kind::Gateway, "").await.is_empty());

    // The log recorded every change in order: 19 creates, 19 updates, 19 deletes.
    let log = c
        .list_revisions(ListRevisionsRequest {
            gateway_id: ids.gateway.clone(),
            after_revision: 0,
            page_size: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    let ops: Vec<i32> = log.revisions.iter().map(|r| r.operation).collect();
    assert_eq!(ops.len(), 57);
    assert!(ops[..19].iter().all(|o| *o == Operation::Create as i32));
    assert!(ops[19..38].iter().all(|o| *o == Operation::Update as i32));
    assert!(ops[38..].iter().all(|o| *o == Operation::Delete as i32));
    assert!(
        log.revisions
            .windows(2)
            .all(|w| w[0].revision < w[1].revision)
    );
    assert_eq!(log.latest_revision, log.revisions.last().unwrap().revision);
    // Paging: after_revision resumes exactly where a page ended.
    let tail = c
        .list_revisions(ListRevisionsRequest {
            gateway_id: ids.gateway,
            after_revision: log.revisions[40].revision,
            page_size: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        tail.revisions
            .iter()
            .map(|r| r.revision)
            .collect::<Vec<_>>(),
        log.revisions[41..46]
            .iter()
            .map(|r| r.revision)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn lists_page_and_filter() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("paging")).await;
    for i in 0..7 {
        create(
            &mut c,
            fixtures::backend(&gw.id, &format!("b{i}"), "pw-123456"),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_entities(ListEntitiesRequest {
                kind: Kind::BackendCluster as i32,
                gateway_id: gw.id.clone(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        names.extend(page.entities.into_iter().map(|e| e.name));
        if page.next_page_token.is_empty() || pages > 10 {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(names, (0..7).map(|i| format!("b{i}")).collect::<Vec<_>>());
    let by_name = c
        .list_entities(ListEntitiesRequest {
            kind: Kind::BackendCluster as i32,
            gateway_id: gw.id.clone(),
            name: "b4".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_name.entities.len(), 1);
    let err = c
        .list_entities(ListEntitiesRequest {
            kind: Kind::BackendCluster as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn deleting_a_referenced_entity_names_the_referrer() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("refs")).await;
    let backend = create(
        &mut c,
        fixtures::backend(&gw.id, "orders-kafka", "pw-123456"),
    )
    .await;
    let vc = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "team-a", &backend.id, "team-a"),
    )
    .await;

    let err = c
        .delete_entity(DeleteEntityRequest {
            kind: Kind::BackendCluster as i32,
            id: backend.id.clone(),
            expected_revision: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("virtual_cluster \"team-a\""),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains(&vc.id) && err.message().contains("destination_id"),
        "{}",
        err.message()
    );

    let err = c
        .delete_entity(DeleteEntityRequest {
            kind: Kind::Gateway as i32,
            id: gw.id.clone(),
            expected_revision: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Once the referrer is gone, the delete goes through.
    c.delete_entity(DeleteEntityRequest {
        kind: Kind::VirtualCluster as i32,
        id: vc.id,
        expected_revision: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    c.delete_entity(DeleteEntityRequest {
        kind: Kind::BackendCluster as i32,
        id: backend.id,
        expected_revision: 0,
        ..Default::default()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_stale_update_is_aborted() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("stale")).await;
    let b = create(&mut c, fixtures::backend(&gw.id, "b", "pw-123456")).await;
    let mut first = b.clone();
    first.description = "first".into();
    c.update_entity(UpdateEntityRequest {
        entity: Some(first),
        expected_revision: b.revision,
    })
    .await
    .unwrap();
    let mut second = b.clone();
    second.description = "second".into();
    let err = c
        .update_entity(UpdateEntityRequest {
            entity: Some(second),
            expected_revision: b.revision,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert!(err.message().contains("changed since"), "{}", err.message());
    let err = c
        .delete_entity(DeleteEntityRequest {
            kind: Kind::BackendCluster as i32,
            id: b.id.clone(),
            expected_revision: b.revision,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
}

#[tokio::test]
async fn concurrent_writers_never_lose_an_update() {
    let (_dir, server, mut c, token) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("race")).await;
    let b = create(&mut c, fixtures::backend(&gw.id, "counter", "pw-123456")).await;
    const WRITERS: usize = 8;
    const EACH: usize = 10;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let mut client = server.client(Some(&token)).await;
        let id = b.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut aborted = 0;
            for _ in 0..EACH {
                // Read-modify-write with the revision as precondition; retry
                // (bounded) when another writer got there first.
                for attempt in 0.. {
                    assert!(attempt < 500, "no progress");
                    let mut e = client
                        .get_entity(GetEntityRequest {
                            kind: Kind::BackendCluster as i32,
                            id: id.clone(),
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    let n: usize = e.labels.get("count").map_or(0, |v| v.parse().unwrap());
                    e.labels.insert("count".into(), (n + 1).to_string());
                    let expected = e.revision;
                    match client
                        .update_entity(UpdateEntityRequest {
                            entity: Some(e),
                            expected_revision: expected,
                        })
                        .await
                    {
                        Ok(_) => break,
                        Err(s) if s.code() == Code::Aborted => aborted += 1,
                        Err(s) => panic!("{s:?}"),
                    }
                }
            }
            aborted
        }));
    }
    let mut aborted = 0;
    for t in tasks {
        aborted += t.await.unwrap();
    }
    let e = c
        .get_entity(GetEntityRequest {
            kind: Kind::BackendCluster as i32,
            id: b.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        e.labels["count"],
        (WRITERS * EACH).to_string(),
        "({aborted} stale writes were refused)"
    );
}

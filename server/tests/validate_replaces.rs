//! `Validate` of a create that replaces an entity (`replaces_id`, what
//! Terraform's destroy-then-create plans): judged as if the replaced
//! entity were gone, and nothing else is let through.

mod common;

use common::{create, fixtures};
use sluice_proto::admin::v1::{
    CreateEntityRequest, Entity, ValidateRequest, validate_request::Operation,
};
use tonic::Code;

fn create_of(e: &Entity, replaces: &str) -> ValidateRequest {
    ValidateRequest {
        operation: Some(Operation::Create(CreateEntityRequest {
            entity: Some(e.clone()),
        })),
        replaces_id: replaces.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_replacement_may_take_the_name_of_what_it_replaces_and_nothing_else() {
    let (_dir, server, mut admin, _token) = common::start().await;
    let gw = create(&mut admin, fixtures::gateway("gw")).await;
    let old = create(&mut admin, fixtures::backend(&gw.id, "kafka", "pw")).await;
    let other = create(&mut admin, fixtures::backend(&gw.id, "other", "pw")).await;
    let again = fixtures::backend(&gw.id, "kafka", "pw2");

    // A plain create of the same name clashes with the entity itself.
    let clash = admin.validate(create_of(&again, "")).await.unwrap_err();
    assert_eq!(clash.code(), Code::InvalidArgument, "{clash:?}");
    assert!(clash.message().contains("name"), "{clash:?}");

    // Replacing it, the name is free; the dry run writes nothing.
    let reply = admin
        .validate(create_of(&again, &old.id))
        .await
        .expect("a replacement may reuse the name")
        .into_inner();
    assert!(reply.entity.is_some());
    let still = admin
        .get_entity(sluice_proto::admin::v1::GetEntityRequest {
            kind: old.kind() as i32,
            id: old.id.clone(),
        })
        .await
        .expect("the replaced entity is untouched")
        .into_inner();
    assert_eq!(still.revision, old.revision);

    // Replacing another entity frees only that one's name.
    let clash = admin
        .validate(create_of(&again, &other.id))
        .await
        .unwrap_err();
    assert_eq!(clash.code(), Code::InvalidArgument, "{clash:?}");
    // An unknown id is refused, not ignored.
    let missing = admin
        .validate(create_of(&again, "00000000-0000-0000-0000-000000000000"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    server.stop();
}

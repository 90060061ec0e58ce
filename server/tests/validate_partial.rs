//! `Validate` with values not known yet (`unknown_fields`): Terraform plans
//! a new stack before any id exists. Known fields are checked and reported
//! as always; what depends on an unknown one is skipped; nothing is
//! written; an unknown secret has no fingerprint.

mod common;

use common::{create, db, fixtures};
use sluice_proto::admin::v1::{
    CreateEntityRequest, Entity, Principal, Secret, UpdateEntityRequest, ValidateRequest,
    ValidateResponse, entity::Spec, validate_request::Operation, virtual_cluster_authentication,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

async fn validate(
    c: &mut common::Admin,
    operation: Operation,
    unknown: &[&str],
) -> Result<ValidateResponse, Status> {
    c.validate(ValidateRequest {
        operation: Some(operation),
        unknown_fields: unknown.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

fn creating(e: &Entity) -> Operation {
    Operation::Create(CreateEntityRequest {
        entity: Some(e.clone()),
    })
}

fn updating(e: &Entity) -> Operation {
    Operation::Update(UpdateEntityRequest {
        entity: Some(e.clone()),
        expected_revision: 0,
    })
}

/// The (field, description) pairs of an INVALID_ARGUMENT.
fn violations(status: &Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

fn fields(status: &Status) -> Vec<String> {
    violations(status).into_iter().map(|(f, _)| f).collect()
}

/// The virtual cluster's spec.
fn vc(e: &mut Entity) -> &mut sluice_proto::admin::v1::VirtualCluster {
    match e.spec.as_mut() {
        Some(Spec::VirtualCluster(vc)) => vc,
        _ => panic!("not a virtual cluster"),
    }
}

/// The principals of the first (sasl_plain) authentication rule.
fn principals(e: &mut Entity) -> &mut Vec<Principal> {
    match vc(e).authentication[0].method.as_mut() {
        Some(virtual_cluster_authentication::Method::SaslPlain(p)) => &mut p.principals,
        _ => panic!("not sasl_plain"),
    }
}

/// A virtual cluster as Terraform plans it before its gateway and backend
/// exist: both ids are placeholders.
fn planned_vc(dns_label: &str) -> Entity {
    fixtures::virtual_cluster("", "vc-planned", "", dns_label)
}

#[tokio::test]
async fn an_unknown_gateway_still_gets_the_known_fields_checked() {
    let (dir, _server, mut c, _) = common::start().await;
    let unknown = ["gateway_id", "destination_id"];
    let status = validate(&mut c, creating(&planned_vc("Bad_Label!")), &unknown)
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(
        fields(&status),
        ["dns_label"],
        "only the bad known field: {found:?}"
    );
    assert!(found[0].1.contains("RFC 1035"), "{found:?}");
    // Without unknown_fields the same entity is refused for the ids too.
    let status = validate(&mut c, creating(&planned_vc("Bad_Label!")), &[])
        .await
        .unwrap_err();
    let plain = fields(&status);
    assert!(
        plain.contains(&"gateway_id".to_string()) && plain.contains(&"dns_label".to_string()),
        "{plain:?}"
    );

    // A valid planned entity passes with defaults filled and its warnings,
    // and nothing is written: every insert would fail now.
    let mut conn = db::open(dir.path()).await;
    let revisions = "SELECT COUNT(*) FROM revisions";
    let before: i64 = sqlx::query_scalar(revisions)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    for table in [
        "entities",
        "revisions",
        "entity_refs",
        "certificate_authorities",
    ] {
        db::fail(&mut conn, table, "INSERT").await;
    }
    let mut planned = planned_vc("team-a");
    vc(&mut planned).acl_mode = 0;
    let ok = validate(&mut c, creating(&planned), &unknown)
        .await
        .unwrap();
    let mut entity = ok.entity.unwrap();
    assert_eq!(
        vc(&mut entity).acl_mode,
        sluice_proto::admin::v1::AclMode::Passthrough as i32,
        "defaults are filled"
    );
    let warned: Vec<_> = ok.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(
        warned,
        Vec::<&str>::new(),
        "sasl_plain terminate is enforced"
    );
    for table in [
        "entities",
        "revisions",
        "entity_refs",
        "certificate_authorities",
    ] {
        db::heal(&mut conn, table, "INSERT").await;
    }
    let after: i64 = sqlx::query_scalar(revisions)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn an_unknown_reference_is_skipped_and_a_bad_known_one_refused() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("edge")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "taken", &backend.id, "taken"),
    )
    .await;

    // Gateway known, destination unknown: checked but for the destination,
    // whatever placeholder it holds.
    let mut e = fixtures::virtual_cluster(&gw.id, "vc", "", "team-a");
    for placeholder in ["", "(known after apply)"] {
        vc(&mut e).destination_id = placeholder.into();
        validate(&mut c, creating(&e), &["destination_id"])
            .await
            .unwrap();
    }
    // A known destination that does not exist is refused as always...
    vc(&mut e).destination_id = "5f0c8a4e-0000-4000-8000-000000000000".into();
    let status = validate(&mut c, creating(&e), &[]).await.unwrap_err();
    let found = violations(&status);
    assert_eq!(fields(&status), ["destination_id"]);
    assert!(found[0].1.contains("no backend_cluster"), "{found:?}");
    // ...also while the gateway is unknown (existence and kind are still
    // checked; only the same-gateway check needs the gateway).
    e.gateway_id.clear();
    let status = validate(&mut c, creating(&e), &["gateway_id"])
        .await
        .unwrap_err();
    assert_eq!(violations(&status), found);
    // A valid known destination is not judged against the unknown gateway.
    vc(&mut e).destination_id = backend.id.clone();
    validate(&mut c, creating(&e), &["gateway_id"])
        .await
        .unwrap();
    vc(&mut e).destination_id = gw.id.clone();
    let status = validate(&mut c, creating(&e), &["gateway_id"])
        .await
        .unwrap_err();
    let found = violations(&status);
    assert!(
        found[0].1.contains("is a gateway, not a backend_cluster"),
        "{found:?}"
    );

    // A name taken in the gateway is refused when the gateway is known,
    // and cannot be judged when it is not.
    let mut taken = fixtures::virtual_cluster(&gw.id, "taken", "", "other");
    let status = validate(&mut c, creating(&taken), &["destination_id"])
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["name"]);
    taken.gateway_id.clear();
    validate(&mut c, creating(&taken), &["gateway_id", "destination_id"])
        .await
        .unwrap();
}

#[tokio::test]
async fn only_known_secrets_get_their_keyed_fingerprint() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("edge")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    // The fingerprint the server keys "alice-pw-123" with.
    let mut real = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "real", &backend.id, "real"),
    )
    .await;
    let keyed = principals(&mut real)[0]
        .password
        .clone()
        .unwrap()
        .fingerprint;
    assert!(!keyed.is_empty());

    let mut planned = planned_vc("team-a");
    principals(&mut planned).push(Principal {
        username: "bob".into(),
        password: Some(Secret {
            value: "placeholder".into(),
            fingerprint: String::new(),
        }),
        ..Default::default()
    });
    let unknown = [
        "gateway_id",
        "destination_id",
        "authentication[0].sasl_plain.principals[1].password",
    ];
    let ok = validate(&mut c, creating(&planned), &unknown)
        .await
        .unwrap();
    let mut entity = ok.entity.unwrap();
    let listed = principals(&mut entity);
    let alice = listed[0].password.clone().unwrap();
    assert_eq!(
        alice.fingerprint, keyed,
        "a known value's keyed fingerprint"
    );
    assert!(alice.value.is_empty(), "values are never returned");
    let bob = listed[1].password.clone().unwrap_or_default();
    assert_eq!(
        bob,
        Secret::default(),
        "an unknown secret has no fingerprint"
    );
    // Without naming it unknown, an empty password is a violation.
    principals(&mut planned)[1].password = Some(Secret::default());
    let status = validate(&mut c, creating(&planned), &unknown[..2])
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        ["authentication[0].sasl_plain.principals[1].password"]
    );
}

#[tokio::test]
async fn an_update_with_unknown_fields_is_checked_the_same_way() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("edge")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "other", &backend.id, "other"),
    )
    .await;
    let mut stored = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "team-a"),
    )
    .await;
    let keyed = principals(&mut stored)[0]
        .password
        .clone()
        .unwrap()
        .fingerprint;

    // The destination and the (kept) password become unknown, the gateway
    // too; the bad label is still found.
    let mut changed = stored.clone();
    changed.gateway_id.clear();
    vc(&mut changed).destination_id.clear();
    vc(&mut changed).dns_label = "Bad_Label!".into();
    principals(&mut changed)[0].password = Some(Secret::default());
    let unknown = [
        "gateway_id",
        "destination_id",
        "authentication[0].sasl_plain.principals[0].password",
    ];
    let status = validate(&mut c, updating(&changed), &unknown)
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["dns_label"]);
    // An update's gateway is the stored one (immutable), so what needs it
    // is still checked: the name of another virtual cluster is refused.
    vc(&mut changed).dns_label = "team-b".into();
    changed.name = "other".into();
    let status = validate(&mut c, updating(&changed), &unknown)
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["name"]);
    changed.name = "vc".into();
    let ok = validate(&mut c, updating(&changed), &unknown)
        .await
        .unwrap();
    let mut entity = ok.entity.unwrap();
    let password = principals(&mut entity)[0]
        .password
        .clone()
        .unwrap_or_default();
    assert_eq!(
        password,
        Secret::default(),
        "unknown: no stored fingerprint"
    );
    // Known, the kept password shows its stored fingerprint.
    let ok = validate(&mut c, updating(&changed), &unknown[..2])
        .await
        .unwrap();
    let mut entity = ok.entity.unwrap();
    let kept = principals(&mut entity)[0].password.clone().unwrap();
    assert_eq!(kept.fingerprint, keyed);
    // Nothing was written.
    let read = c
        .get_entity(sluice_proto::admin::v1::GetEntityRequest {
            kind: stored.kind() as i32,
            id: stored.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.revision, stored.revision);
}

#[tokio::test]
async fn unknown_fields_must_name_fields_of_the_kind() {
    let (_dir, _server, mut c, _) = common::start().await;
    let unknown = [
        "gateway_id",
        "destination_ids",
        "labels[team]",
        "authentication.sasl_plain",
    ];
    let status = validate(&mut c, creating(&planned_vc("team-a")), &unknown)
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(
        fields(&status),
        ["unknown_fields[1]", "unknown_fields[3]"],
        "{found:?}"
    );
    assert!(found[0].1.contains("\"destination_ids\""), "{found:?}");
    assert!(
        found[1].1.contains("\"authentication.sasl_plain\""),
        "{found:?}"
    );
    assert!(status.message().contains("destination_ids"), "{status:?}");
}

#[tokio::test]
async fn unknown_fields_are_bounded() {
    let (_dir, _server, mut c, _) = common::start().await;
    let labels: Vec<String> = (0..999).map(|i| format!("labels[k{i}]")).collect();
    let mut many = vec!["gateway_id", "destination_id"];
    many.extend(labels.iter().map(String::as_str));
    let status = validate(&mut c, creating(&planned_vc("team-a")), &many)
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(fields(&status), ["unknown_fields"], "{found:?}");
    assert!(
        found[0].1.contains("1001") && found[0].1.contains("at most 1000"),
        "{found:?}"
    );
    // A thousand is fine; one path longer than 256 bytes is named.
    validate(&mut c, creating(&planned_vc("team-a")), &many[..1_000])
        .await
        .unwrap();
    let long = format!("labels[{}]", "k".repeat(300));
    let status = validate(
        &mut c,
        creating(&planned_vc("team-a")),
        &["gateway_id", &long],
    )
    .await
    .unwrap_err();
    let found = violations(&status);
    assert_eq!(fields(&status), ["unknown_fields[1]"], "{found:?}");
    assert!(found[0].1.contains("at most 256"), "{found:?}");
}

//! Every validation rule is refused with INVALID_ARGUMENT naming the field;
//! `Validate` returns the same errors and writes nothing.

mod common;

use common::fixtures;
use sluice_proto::admin::v1::{
    BackendAuthentication, BackendSaslPlain, ClusterPolicyQuota, CreateEntityRequest, Entity, Jwks,
    JwtValidation, Kind, ListEntitiesRequest, ListRevisionsRequest, Mediation, OauthBearer,
    PolicyEnforcement, Principal, QuotaPer, Secret, UpdateEntityRequest, ValidateRequest,
    VirtualClusterAuthentication, VirtualSaslPlain, backend_authentication, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config, validate_request::Operation,
    virtual_cluster_authentication,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The field paths a status's BadRequest details name.
fn fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

async fn create_err(c: &mut common::Admin, e: Entity) -> Vec<String> {
    let status = c
        .create_entity(CreateEntityRequest { entity: Some(e) })
        .await
        .unwrap_err();
    fields(&status)
}

async fn create(c: &mut common::Admin, e: Entity) -> Entity {
    c.create_entity(CreateEntityRequest { entity: Some(e) })
        .await
        .unwrap()
        .into_inner()
}

fn spec<T>(e: &mut Entity, f: impl FnOnce(&mut Spec) -> Option<&mut T>) -> &mut T {
    f(e.spec.as_mut().unwrap()).unwrap()
}

macro_rules! as_variant {
    ($v:path) => {
        |s: &mut Spec| match s {
            $v(x) => Some(x),
            _ => None,
        }
    };
}

#[tokio::test]
async fn each_rule_names_its_field() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("rules")).await;
    let other_gw = create(&mut c, fixtures::gateway("other")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let foreign_backend = create(
        &mut c,
        fixtures::backend(&other_gw.id, "kafka", "pw-123456"),
    )
    .await;
    let listener = create(&mut c, fixtures::listener(&gw.id, "edge", &["19092-19094"])).await;

    // RFC 1035 dns_label.
    for bad in ["Team-A", "1team", "team-", "a_b", &"a".repeat(64)] {
        let vc = fixtures::virtual_cluster(&gw.id, "vc", &backend.id, bad);
        assert_eq!(create_err(&mut c, vc).await, ["dns_label"], "{bad}");
    }
    // Ports and ranges.
    for bad in ["0", "70000", "9095-9092", "x"] {
        assert_eq!(
            create_err(&mut c, fixtures::listener(&gw.id, "l", &[bad])).await,
            ["ports[0]"],
            "{bad}"
        );
    }
    assert_eq!(
        create_err(
            &mut c,
            fixtures::listener(&gw.id, "l", &["9092", "9090-9095"])
        )
        .await,
        ["ports[1]"]
    );
    let mut l = fixtures::listener(&gw.id, "l", &["9092"]);
    spec(&mut l, as_variant!(Spec::Listener)).addresses =
        vec!["0.0.0.0".into(), "127.0.0.1".into()];
    assert_eq!(create_err(&mut c, l).await, ["addresses[0]"]);
    // bootstrap_servers host:port.
    let mut b = fixtures::backend(&gw.id, "b2", "pw-123456");
    spec(&mut b, as_variant!(Spec::BackendCluster)).bootstrap_servers =
        vec!["127.0.0.1:9092".into(), "no-port".into(), "[::1]:0".into()];
    assert_eq!(
        create_err(&mut c, b).await,
        ["bootstrap_servers[1]", "bootstrap_servers[2]"]
    );
    // Nested paths: authentication.sasl_plain.username and a missing secret.
    let mut b = fixtures::backend(&gw.id, "b3", "");
    spec(&mut b, as_variant!(Spec::BackendCluster)).authentication = Some(BackendAuthentication {
        method: Some(backend_authentication::Method::SaslPlain(
            BackendSaslPlain {
                username: String::new(),
                password: None,
            },
        )),
    });
    assert_eq!(
        create_err(&mut c, b).await,
        [
            "authentication.sasl_plain.username",
            "authentication.sasl_plain.password"
        ]
    );
    // Ranges of numbers.
    let mut b = fixtures::backend(&gw.id, "b4", "pw-123456");
    spec(&mut b, as_variant!(Spec::BackendCluster)).metadata_update_interval_seconds = 50_000;
    assert_eq!(
        create_err(&mut c, b).await,
        ["metadata_update_interval_seconds"]
    );
    // Enums: an unknown value.
    let mut vc = fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "team-a");
    spec(&mut vc, as_variant!(Spec::VirtualCluster)).acl_mode = 42;
    assert_eq!(create_err(&mut c, vc).await, ["acl_mode"]);
    // Client-auth settings that a passthrough rule would ignore are refused,
    // never dropped: principals (the broker checks passwords), and a JWKS
    // or token checks (the broker checks tokens).
    let mut vc = fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "team-a");
    spec(&mut vc, as_variant!(Spec::VirtualCluster)).authentication = vec![
        VirtualClusterAuthentication {
            method: Some(virtual_cluster_authentication::Method::SaslPlain(
                VirtualSaslPlain {
                    mediation: Mediation::Passthrough as i32,
                    principals: vec![Principal {
                        username: "alice".into(),
                        password: Some(Secret {
                            value: "alice-password".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                },
            )),
        },
        VirtualClusterAuthentication {
            method: Some(virtual_cluster_authentication::Method::OauthBearer(
                OauthBearer {
                    jwks: Some(Jwks {
                        endpoint: "https://idp.example/keys".into(),
                        ..Default::default()
                    }),
                    validate: Some(JwtValidation {
                        issuer: "https://idp.example".into(),
                        audiences: vec!["kafka".into()],
                    }),
                    ..Default::default()
                },
            )),
        },
    ];
    assert_eq!(
        create_err(&mut c, vc).await,
        [
            "authentication[0].sasl_plain.principals",
            "authentication[1].oauth_bearer.jwks",
            "authentication[1].oauth_bearer.validate"
        ]
    );
    // Lengths and common fields.
    let mut b = fixtures::backend(&gw.id, "b5", "pw-123456");
    b.description = "x".repeat(513);
    b.labels = (0..51)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    assert_eq!(create_err(&mut c, b).await, ["description", "labels"]);
    let mut b = fixtures::backend(&gw.id, "", "pw-123456");
    b.gateway_id.clear();
    assert_eq!(create_err(&mut c, b).await, ["name", "gateway_id"]);
    // A virtual cluster's destination: missing, the wrong kind, another gateway.
    let vc = fixtures::virtual_cluster(
        &gw.id,
        "vc",
        "00000000-0000-0000-0000-000000000000",
        "team-a",
    );
    assert_eq!(create_err(&mut c, vc).await, ["destination_id"]);
    let vc = fixtures::virtual_cluster(&gw.id, "vc", &listener.id, "team-a");
    assert_eq!(create_err(&mut c, vc).await, ["destination_id"]);
    let vc = fixtures::virtual_cluster(&gw.id, "vc", &foreign_backend.id, "team-a");
    let status = c
        .create_entity(CreateEntityRequest { entity: Some(vc) })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["destination_id"]);
    assert!(
        status.message().contains("another gateway"),
        "{}",
        status.message()
    );
    // A port mapping's destination must be a virtual cluster of the gateway.
    let fwd = fixtures::forward(&gw.id, "fwd", &listener.id, &backend.id);
    assert_eq!(
        create_err(&mut c, fwd).await,
        ["port_mapping.destination_id"]
    );
    // Unique names per parent (the same name in another gateway is fine).
    let status = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::backend(&gw.id, "kafka", "pw-123456")),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["name"]);
    assert!(
        status.message().contains(&backend.id),
        "{}",
        status.message()
    );
    let status = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::gateway("rules")),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["name"]);
    // No spec at all.
    let status = c
        .create_entity(CreateEntityRequest {
            entity: Some(Entity {
                name: "x".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["spec"]);
    // SNI suffix; the listener has no TLS either.
    let mut fwd = fixtures::forward(&gw.id, "fwd", &listener.id, "x");
    spec(
        &mut fwd,
        as_variant!(Spec::ListenerPolicyForwardToVirtualCluster),
    )
    .config = Some(Config::Sni(sluice_proto::admin::v1::Sni {
        sni_suffix: "example.com".into(),
        ..Default::default()
    }));
    assert_eq!(create_err(&mut c, fwd).await, ["sni.sni_suffix", "sni"]);
    // The gateway of an entity cannot change.
    let mut moved = backend.clone();
    moved.gateway_id = other_gw.id.clone();
    moved.name = "kafka-moved".into();
    let status = c
        .update_entity(UpdateEntityRequest {
            entity: Some(moved),
            expected_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["gateway_id"]);
}

#[tokio::test]
async fn validate_is_a_dry_run_with_the_same_errors() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("dry")).await;
    let before = c
        .list_revisions(ListRevisionsRequest {
            gateway_id: gw.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .latest_revision;

    let good = fixtures::backend(&gw.id, "kafka", "pw-123456");
    c.validate(ValidateRequest {
        operation: Some(Operation::Create(CreateEntityRequest {
            entity: Some(good.clone()),
        })),
        ..Default::default()
    })
    .await
    .unwrap();
    let bad = fixtures::virtual_cluster(&gw.id, "vc", "missing", "Bad_Label");
    let dry = c
        .validate(ValidateRequest {
            operation: Some(Operation::Create(CreateEntityRequest {
                entity: Some(bad.clone()),
            })),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let real = c
        .create_entity(CreateEntityRequest { entity: Some(bad) })
        .await
        .unwrap_err();
    assert_eq!(fields(&dry), fields(&real));
    assert_eq!(fields(&dry), ["dns_label", "destination_id"]);

    // Nothing was written: no entity, no revision.
    let listed = c
        .list_entities(ListEntitiesRequest {
            kind: Kind::BackendCluster as i32,
            gateway_id: gw.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.entities.is_empty());
    let after = c
        .list_revisions(ListRevisionsRequest {
            gateway_id: gw.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .latest_revision;
    assert_eq!(before, after);

    // A dry-run update sees preconditions too.
    let stored = create(&mut c, good).await;
    let mut stale = stored.clone();
    stale.description = "x".into();
    let status = c
        .validate(ValidateRequest {
            operation: Some(Operation::Update(UpdateEntityRequest {
                entity: Some(stale),
                expected_revision: stored.revision - 1,
            })),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
}

#[tokio::test]
async fn port_clashes_are_refused_naming_both_entities_and_the_port() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("ports")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "b", "pw")).await;
    let vc = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "vc"),
    )
    .await;
    let first = create(&mut c, fixtures::listener(&gw.id, "first", &["9092-9094"])).await;

    // Another listener whose ports overlap on the same address, or on a
    // wildcard address.
    let status = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::listener(&gw.id, "second", &["9000", "9094-9099"])),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["ports[1]"]);
    let message = format!("{:?}", status.get_details_bad_request());
    assert!(
        message.contains("9094") && message.contains(&first.id),
        "{message}"
    );
    let mut wildcard = fixtures::listener(&gw.id, "wild", &["9093"]);
    spec(&mut wildcard, as_variant!(Spec::Listener)).addresses = vec!["0.0.0.0".into()];
    assert_eq!(create_err(&mut c, wildcard).await, ["ports[0]"]);
    // Another gateway's listener may use the same ports (other nodes).
    let other_gw = create(&mut c, fixtures::gateway("elsewhere")).await;
    create(
        &mut c,
        fixtures::listener(&other_gw.id, "same", &["9092-9094"]),
    )
    .await;
    // Moving an existing listener onto a taken port is refused too.
    let mut moved = create(&mut c, fixtures::listener(&gw.id, "moved", &["9200"])).await;
    spec(&mut moved, as_variant!(Spec::Listener)).ports = vec!["9092".into()];
    let status = c
        .update_entity(UpdateEntityRequest {
            entity: Some(moved),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["ports[0]"]);

    // A second forward policy on a port-mapped listener.
    create(&mut c, fixtures::forward(&gw.id, "a", &first.id, &vc.id)).await;
    let status = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::forward(&gw.id, "b", &first.id, &vc.id)),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["listener_id"]);

    // Broker ids past i32::MAX.
    let high = create(&mut c, fixtures::listener(&gw.id, "high", &["9300-9303"])).await;
    let mut forward = fixtures::forward(&gw.id, "high", &high.id, &vc.id);
    if let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &mut forward.spec
        && let Some(Config::PortMapping(m)) = &mut f.config
    {
        m.min_broker_id = i32::MAX - 1;
    }
    assert_eq!(
        create_err(&mut c, forward).await,
        ["port_mapping.min_broker_id"]
    );
}

#[tokio::test]
async fn overlapping_namespace_prefixes_on_one_backend_are_warned_about() {
    use sluice_proto::admin::v1::{Namespace, NamespaceMode, validate_request::Operation};
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("tenants")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let other_backend = create(&mut c, fixtures::backend(&gw.id, "other", "pw-123456")).await;
    let tenant = |name: &str, backend: &str, prefix: &str| {
        let mut vc = fixtures::virtual_cluster(&gw.id, name, backend, name);
        spec(&mut vc, as_variant!(Spec::VirtualCluster)).namespace = Some(Namespace {
            mode: NamespaceMode::HidePrefix as i32,
            prefix: prefix.into(),
            additional: None,
        });
        vc
    };
    create(&mut c, tenant("team-a", &backend.id, "team-a.")).await;
    let mut warned = Vec::new();
    for (name, on, prefix) in [
        ("team", &backend.id, "team"),
        ("team-a-sub", &backend.id, "team-a.sub."),
        ("team-b", &backend.id, "team-b."),
        ("team-a-tls", &backend.id, "team-a."),
        ("elsewhere", &other_backend.id, "team"),
    ] {
        let warnings = c
            .validate(ValidateRequest {
                operation: Some(Operation::Create(CreateEntityRequest {
                    entity: Some(tenant(name, on, prefix)),
                })),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .warnings;
        if let Some(w) = warnings.iter().find(|w| w.field == "namespace.prefix") {
            assert!(w.message.contains("\"team-a\""), "{}", w.message);
            warned.push(name);
        }
    }
    assert_eq!(
        warned,
        ["team", "team-a-sub"],
        "only prefixes that begin one another on the same backend"
    );
}

#[tokio::test]
async fn aliases_that_would_mislead_are_refused() {
    use sluice_proto::admin::v1::{
        ExactList, NameSelector, Namespace, NamespaceAdditional, NamespaceMode, TopicAlias,
        name_selector::Selector,
    };
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("aliases")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let mut vc = fixtures::virtual_cluster(&gw.id, "team", &backend.id, "team");
    let v = spec(&mut vc, as_variant!(Spec::VirtualCluster));
    v.namespace = Some(Namespace {
        mode: NamespaceMode::HidePrefix as i32,
        prefix: "team.".into(),
        additional: Some(NamespaceAdditional {
            topics: Some(NameSelector {
                selector: Some(Selector::ExactList(ExactList {
                    names: vec!["shared".into()],
                })),
            }),
            consumer_groups: None,
        }),
    });
    let alias = |alias: &str, topic: &str| TopicAlias {
        alias: alias.into(),
        topic: topic.into(),
    };
    v.topic_aliases = vec![
        alias("itself", "itself"),
        alias("a", "b"),
        alias("b", "c"),
        alias("shared", "x"),
        alias("fine", "orders"),
    ];
    assert_eq!(
        create_err(&mut c, vc).await,
        [
            "topic_aliases[0].alias",
            "topic_aliases[2].alias",
            "topic_aliases[3].alias"
        ]
    );
}

#[tokio::test]
async fn quotas_name_the_field_that_is_wrong() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("quotas")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let vc = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "team-q"),
    )
    .await;
    let quota = |name: &str, q: ClusterPolicyQuota| Entity {
        gateway_id: gw.id.clone(),
        name: name.into(),
        spec: Some(Spec::ClusterPolicyQuota(ClusterPolicyQuota {
            virtual_cluster_id: vc.id.clone(),
            ..q
        })),
        ..Default::default()
    };
    // A quota without a limit limits nothing.
    let none = quota("none", ClusterPolicyQuota::default());
    assert_eq!(create_err(&mut c, none).await, ["produce_bytes_per_second"]);
    let unknown_per = quota(
        "per",
        ClusterPolicyQuota {
            requests_per_second: 10,
            per: 99,
            ..Default::default()
        },
    );
    assert_eq!(create_err(&mut c, unknown_per).await, ["per"]);
    let huge = quota(
        "huge",
        ClusterPolicyQuota {
            fetch_bytes_per_second: u64::MAX,
            ..Default::default()
        },
    );
    assert_eq!(create_err(&mut c, huge).await, ["fetch_bytes_per_second"]);
    // Conditions compile with the cluster phase's variables (no records).
    let record_variable = quota(
        "cond",
        ClusterPolicyQuota {
            max_connections: 5,
            condition: "topic == 'x'".into(),
            ..Default::default()
        },
    );
    assert_eq!(create_err(&mut c, record_variable).await, ["condition"]);
    let api_for_connections = quota(
        "api",
        ClusterPolicyQuota {
            max_connections: 5,
            condition: "api == 'Produce'".into(),
            ..Default::default()
        },
    );
    assert_eq!(create_err(&mut c, api_for_connections).await, ["condition"]);
    // A good one reads back with its defaults.
    let ok = create(
        &mut c,
        quota(
            "ok",
            ClusterPolicyQuota {
                produce_bytes_per_second: 1_000_000,
                condition: "client_id == 'tenant-a'".into(),
                ..Default::default()
            },
        ),
    )
    .await;
    let Some(Spec::ClusterPolicyQuota(q)) = ok.spec else {
        panic!("not a quota")
    };
    assert_eq!(q.per, QuotaPer::VirtualCluster as i32);
    assert_eq!(q.enforcement, PolicyEnforcement::Enforce as i32);
    assert_eq!(q.enabled, Some(true));
}

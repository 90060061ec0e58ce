//! `Validate` warns, naming the attribute, about configuration that the
//! data plane accepts but does not enforce yet (nodes refuse the
//! connections it concerns), and is silent about what is enforced.

mod common;

use common::fixtures;
use sluice_proto::admin::v1::{
    AclAction, AclMode, AclOperation, AclResourceType, AclRule, BackendCluster, BackendTls,
    ClusterPolicyAcls, CreateEntityRequest, Entity, HeaderAction, HeaderRemove,
    ProducePolicyModifyHeaders, ValidateRequest, ValidateWarning, VirtualClusterAuthentication,
    entity::Spec, header_action, validate_request::Operation,
    virtual_cluster_authentication::Method,
};

async fn warnings(c: &mut common::Admin, entity: Entity) -> Vec<ValidateWarning> {
    c.validate(ValidateRequest {
        operation: Some(Operation::Create(CreateEntityRequest {
            entity: Some(entity),
        })),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .warnings
}

fn fields(warnings: &[ValidateWarning]) -> Vec<&str> {
    warnings.iter().map(|w| w.field.as_str()).collect()
}

#[tokio::test]
async fn validate_warns_about_what_the_data_plane_does_not_enforce() {
    let (_dir, server, mut c, _) = common::start().await;
    let gw = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::gateway("warn")),
        })
        .await
        .unwrap()
        .into_inner();
    let backend = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::backend(&gw.id, "kafka", "pw-123456")),
        })
        .await
        .unwrap()
        .into_inner();

    // ACLs enforced on the gateway (every authentication method, the
    // fixture's SASL/PLAIN terminate and OAUTHBEARER here, is enforced).
    let mut vc = fixtures::virtual_cluster(&gw.id, "team-a", &backend.id, "team-a");
    if let Some(Spec::VirtualCluster(v)) = &mut vc.spec {
        v.authentication.push(VirtualClusterAuthentication {
            method: Some(Method::OauthBearer(Default::default())),
        });
    }
    assert_eq!(warnings(&mut c, vc.clone()).await, []);
    let created = c
        .create_entity(CreateEntityRequest {
            entity: Some(vc.clone()),
        })
        .await
        .unwrap()
        .into_inner();

    // Record policies are enforced: no warning.
    let headers = fixtures::entity(
        &gw.id,
        "headers",
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: created.id.clone(),
            actions: vec![HeaderAction {
                action: Some(header_action::Action::Remove(HeaderRemove {
                    key: "x".into(),
                })),
            }],
            ..Default::default()
        }),
    );
    assert_eq!(warnings(&mut c, headers).await, []);

    // ACL rules on a virtual cluster whose acl_mode is passthrough are
    // not applied: the plan says so.
    let acls = |vc: &str| {
        fixtures::entity(
            &gw.id,
            "acls",
            Spec::ClusterPolicyAcls(ClusterPolicyAcls {
                virtual_cluster_id: vc.to_string(),
                rules: vec![AclRule {
                    resource_type: AclResourceType::Topic as i32,
                    action: AclAction::Allow as i32,
                    operations: vec![AclOperation::Read as i32],
                    resource_names: vec!["*".into()],
                }],
                ..Default::default()
            }),
        )
    };
    assert_eq!(warnings(&mut c, acls(&created.id)).await, []);
    let passthrough = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::entity(
                &gw.id,
                "open",
                Spec::VirtualCluster(sluice_proto::admin::v1::VirtualCluster {
                    destination_id: backend.id.clone(),
                    dns_label: "open".into(),
                    acl_mode: AclMode::Passthrough as i32,
                    ..Default::default()
                }),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    let w = warnings(&mut c, acls(&passthrough.id)).await;
    assert_eq!(fields(&w), ["virtual_cluster_id"], "{w:?}");
    assert!(
        w[0].message.contains("enforce_on_gateway"),
        "{}",
        w[0].message
    );

    // A condition is compiled when written: a mistake is refused at
    // `condition`, with its place; an unknown enforcement too.
    let mut bad = acls(&created.id);
    if let Some(Spec::ClusterPolicyAcls(p)) = &mut bad.spec {
        p.condition = "principal == 'User:alice' &&".into();
    }
    let err = c
        .create_entity(CreateEntityRequest {
            entity: Some(bad.clone()),
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("condition: line 1, column"),
        "{}",
        err.message()
    );
    if let Some(Spec::ClusterPolicyAcls(p)) = &mut bad.spec {
        p.condition = "topic == 'orders'".into();
        p.enforcement = 9;
    }
    let err = c
        .create_entity(CreateEntityRequest { entity: Some(bad) })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("unknown variable `topic`")
            && err
                .message()
                .contains("enforcement: must be one of enforce, shadow"),
        "{}",
        err.message()
    );

    // A cluster rule naming anything but the cluster would never match.
    let mut elsewhere = acls(&created.id);
    if let Some(Spec::ClusterPolicyAcls(p)) = &mut elsewhere.spec {
        p.rules[0].resource_type = AclResourceType::Cluster as i32;
        p.rules[0].resource_names = vec!["my-cluster".into()];
    }
    let err = c
        .create_entity(CreateEntityRequest {
            entity: Some(elsewhere),
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("rules[0].resource_names[0]")
            && err.message().contains("kafka-cluster"),
        "{}",
        err.message()
    );

    // A parent whose condition an ACL policy cannot evaluate is refused at
    // parent_policy_id (every node would refuse the virtual cluster).
    let record_parent = fixtures::entity(
        &gw.id,
        "stamp",
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: created.id.clone(),
            condition: "topic == 'orders'".into(),
            enabled: Some(false),
            actions: vec![HeaderAction {
                action: Some(header_action::Action::Remove(HeaderRemove {
                    key: "x".into(),
                })),
            }],
            ..Default::default()
        }),
    );
    let record_parent = c
        .create_entity(CreateEntityRequest {
            entity: Some(record_parent),
        })
        .await
        .unwrap()
        .into_inner();
    let mut child = acls(&created.id);
    if let Some(Spec::ClusterPolicyAcls(p)) = &mut child.spec {
        p.parent_policy_id = record_parent.id.clone();
    }
    let err = c
        .create_entity(CreateEntityRequest {
            entity: Some(child),
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("parent_policy_id")
            && err
                .message()
                .contains("must be a cluster_policy_acls of the same virtual cluster"),
        "{}",
        err.message()
    );

    // What is enforced: anonymous clients, passthrough ACLs, an anonymous
    // backend, and SASL and TLS to the backend.
    let mut open = vc;
    open.name = "team-z".into();
    if let Some(Spec::VirtualCluster(v)) = &mut open.spec {
        v.dns_label = "team-z".into();
        v.authentication = vec![VirtualClusterAuthentication {
            method: Some(Method::Anonymous(Default::default())),
        }];
        v.acl_mode = AclMode::Passthrough as i32;
    }
    assert_eq!(warnings(&mut c, open).await, []);
    let plain = fixtures::entity(
        &gw.id,
        "plain",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            ..Default::default()
        }),
    );
    assert_eq!(warnings(&mut c, plain).await, []);
    let mut secured = fixtures::backend(&gw.id, "kafka-2", "pw-123456");
    if let Some(Spec::BackendCluster(b)) = &mut secured.spec {
        b.tls = Some(BackendTls {
            enabled: true,
            ..Default::default()
        });
    }
    assert_eq!(warnings(&mut c, secured).await, []);
    server.stop();
}

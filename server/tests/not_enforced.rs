//! `Validate` warns, naming the attribute, about configuration that the
//! data plane accepts but does not enforce yet (nodes refuse the
//! connections it concerns), and is silent about what is enforced.

mod common;

use common::fixtures;
use sluice_proto::admin::v1::{
    AclMode, BackendCluster, BackendTls, CreateEntityRequest, Entity, ValidateRequest,
    ValidateWarning, VirtualClusterAuthentication, entity::Spec, validate_request::Operation,
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
    let w = warnings(&mut c, vc.clone()).await;
    assert_eq!(fields(&w), ["acl_mode"], "{w:?}");
    assert!(
        w[0].message.contains(
            "not enforced by sluice-proxy 0.1: connections to this virtual cluster are refused"
        ),
        "{}",
        w[0].message
    );

    // What is enforced: anonymous clients, passthrough ACLs, an anonymous
    // backend, and SASL and TLS to the backend.
    let mut open = vc;
    if let Some(Spec::VirtualCluster(v)) = &mut open.spec {
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

//! The server process: admin auth, persistence across restarts, TLS, health,
//! and the token command.

mod common;

use common::fixtures;
use sluice_proto::admin::v1::{
    CreateEntityRequest, GetEntityRequest, Kind, ListEntitiesRequest, ListRevisionsRequest,
};
use tonic::Code;

#[tokio::test]
async fn calls_without_a_valid_token_are_refused() {
    let (_dir, server, _c, _) = common::start().await;
    for token in [None, Some("sluice_not-a-real-token")] {
        let mut c = server.client(token).await;
        let err = c
            .create_entity(CreateEntityRequest {
                entity: Some(fixtures::gateway("x")),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}");
        let err = c
            .list_entities(ListEntitiesRequest {
                kind: Kind::Gateway as i32,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel(None).await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "sluice.admin.v1.AdminService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Reflection lists the admin service (what `grpcurl -plaintext ADDR list` asks).
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(server.channel(None).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        replies.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"sluice.admin.v1.AdminService".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn everything_survives_a_restart_and_revisions_continue() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let server = common::start_server(dir.path(), &[]);
    let mut c = server.client(Some(&token)).await;
    let gw = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::gateway("keep")),
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
    drop(c);
    server.stop();

    let server = common::start_server(dir.path(), &[]);
    let mut c = server.client(Some(&token)).await;
    let read = c
        .get_entity(GetEntityRequest {
            kind: Kind::BackendCluster as i32,
            id: backend.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, backend);
    let vc = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "vc")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        vc.revision > backend.revision,
        "revisions continue after a restart"
    );
    let log = c
        .list_revisions(ListRevisionsRequest {
            gateway_id: gw.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.revisions.len(), 3);
    drop(c);
    server.stop();
}

#[tokio::test]
async fn the_admin_api_serves_tls() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let (cert, key) = fixtures::cert_and_key();
    std::fs::write(dir.path().join("tls.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), &key).unwrap();
    let crt = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    let server = common::start_server(
        dir.path(),
        &[
            "--tls-cert",
            crt.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(server.tls);
    let channel = server.channel(Some(&cert)).await;
    let mut c = sluice_proto::admin::v1::admin_service_client::AdminServiceClient::with_interceptor(
        channel,
        sluice_acceptance::server::Bearer(Some(token)),
    );
    let gw = c
        .create_entity(CreateEntityRequest {
            entity: Some(fixtures::gateway("tls")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gw.name, "tls");
    drop(c);
    server.stop();
}

#[test]
fn token_create_prints_only_the_token_and_a_master_key_appears() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_cli(&[
        "token",
        "create",
        "--name",
        "ci",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(lines[0].starts_with("sluice_") && lines[0].len() > 40);
    let key = dir.path().join("master.key");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let help = common::run_cli(&["serve", "--help"]);
    for flag in [
        "--data-dir",
        "SLUICE_DATA_DIR",
        "--admin-listen",
        "SLUICE_ADMIN_LISTEN",
        "--sync-listen",
        "--master-key-file",
        "--tls-cert",
        "SLUICE_TLS_KEY",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

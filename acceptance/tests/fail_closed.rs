//! Fail closed: a virtual cluster whose path cannot be served as
//! configured (TLS to a broker that answers in plaintext) is never served
//! as plain passthrough: the client gets nothing and the node reports the
//! hop and the broker. What sluice-proxy enforces (namespaces, gateway
//! ACLs, record policies) is served, and a policy arriving never drops a
//! connection. (Configuration a node does not enforce at all is refused
//! with `not_enforced`: `proxy/src/config/enforce.rs`, unit-tested.)

use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::{
    messages::{ApiKey, ApiVersionsRequest, RequestHeader},
    protocol::{Encodable, StrBytes},
};
use sluice_acceptance::stack::{Stack, create, expose_virtual_cluster, two_ports};
use sluice_proto::admin::v1::{
    AclMode, BackendCluster, BackendTls, Entity, HeaderAction, HeaderSet, Namespace, NamespaceMode,
    ProducePolicyModifyHeaders, VirtualCluster, entity::Spec, header_action,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const WAIT: Duration = Duration::from_secs(30);

fn api_versions() -> Vec<u8> {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(3)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sluice-test")))
        .encode(&mut body, ApiKey::ApiVersions.request_header_version(3))
        .unwrap();
    ApiVersionsRequest::default().encode(&mut body, 3).unwrap();
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Whether an ApiVersions request on `port` is answered (true) or the
/// connection is closed without an answer (false).
async fn served(port: u16) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    ask(&mut s).await
}

/// Whether an ApiVersions request on `s` is answered (the answer is read
/// whole) or the connection is closed without an answer.
async fn ask(s: &mut TcpStream) -> bool {
    if s.write_all(&api_versions()).await.is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    if !matches!(
        tokio::time::timeout(WAIT, s.read_exact(&mut len)).await,
        Ok(Ok(_))
    ) {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    matches!(
        tokio::time::timeout(WAIT, s.read_exact(&mut body)).await,
        Ok(Ok(_))
    )
}

async fn listening(stack: &Stack, port: u16) {
    stack
        .proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{port}"))
        })
        .unwrap_or_else(|| panic!("never listened on {port}"));
}

/// Serves `vc` on new ports and waits until the proxy listens.
async fn serve(stack: &mut Stack, name: &str, vc: VirtualCluster) -> (Entity, u16) {
    let ports = two_ports();
    let gw = stack.gateway.id.clone();
    let (vc, _) = expose_virtual_cluster(&mut stack.admin, &gw, name, vc, ports).await;
    listening(stack, ports.1).await;
    (vc, ports.0)
}

fn vc_on(backend: &str, name: &str) -> VirtualCluster {
    VirtualCluster {
        destination_id: backend.into(),
        dns_label: name.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unenforced_configuration_refuses_connections_at_its_hop() {
    let mut stack = Stack::start(&[]).await;
    let backend = stack.backend.id.clone();
    let gw = stack.gateway.id.clone();

    // Today's passthrough virtual cluster is served.
    assert!(served(stack.ports.0).await);

    let mut namespaced = vc_on(&backend, "namespaced");
    namespaced.namespace = Some(Namespace {
        mode: NamespaceMode::HidePrefix as i32,
        prefix: "team-a.".into(),
        additional: None,
    });
    // A namespace is enforced (acceptance/tests/multi_tenant.rs): served.
    let (_, port) = serve(&mut stack, "namespaced", namespaced).await;
    assert!(
        served(port).await,
        "a namespaced virtual cluster was refused"
    );

    let mut acl = vc_on(&backend, "acl");
    acl.acl_mode = AclMode::EnforceOnGateway as i32;
    // So are gateway ACLs (acceptance/tests/gateway_acls.rs): served (the
    // ApiVersions answer needs no rule).
    let (_, port) = serve(&mut stack, "acl", acl).await;
    assert!(
        served(port).await,
        "an ACL-enforcing virtual cluster was refused"
    );

    // A TLS backend that answers in plaintext is never used in plaintext:
    // the handshake fails at the backend hop and the client gets nothing.
    let tls_backend = create(
        &mut stack.admin,
        &gw,
        "tls-backend",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec![stack.tansu.address.clone()],
            tls: Some(BackendTls {
                enabled: true,
                insecure_skip_verify: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .await;
    let (_, port) = serve(&mut stack, "over-tls", vc_on(&tls_backend.id, "over-tls")).await;
    assert!(!served(port).await, "a TLS backend was served in plaintext");
    let error = stack
        .wait_for_error(WAIT, |e| {
            e.kind == "tls_handshake_failed" && e.entity == tls_backend.id
        })
        .await
        .expect("no tls_handshake_failed error for the TLS backend in node status");
    assert_eq!(error.hop, "backend_cluster", "{error:?}");
    assert!(
        error.last_message.contains(&stack.tansu.address),
        "the broker address is not named: {}",
        error.last_message
    );

    // Record policies are enforced (acceptance/tests/record_policies.rs):
    // one arriving leaves the virtual cluster served, and a connection
    // open before it keeps being answered.
    let (vc, port) = serve(&mut stack, "headers", vc_on(&backend, "headers")).await;
    assert!(served(port).await);
    let mut open = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(ask(&mut open).await, "served before the policy");
    let policy = create(
        &mut stack.admin,
        &gw,
        "stamp",
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: vc.id.clone(),
            actions: vec![HeaderAction {
                action: Some(header_action::Action::Set(HeaderSet {
                    key: "via".into(),
                    value: "sluice".into(),
                })),
            }],
            ..Default::default()
        }),
    )
    .await;
    stack.wait_applied(policy.revision, WAIT).await;
    assert!(
        served(port).await,
        "a record policy refused its virtual cluster"
    );
    assert!(
        ask(&mut open).await,
        "a connection open before the policy was dropped"
    );
}

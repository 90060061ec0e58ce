//! Cases at the auth and policy hops; one of them also runs the
//! `sluice-server diagnose` command line.

use std::sync::Arc;

use sluice_acceptance::{
    auth::plain_terminate,
    stack::{expose_virtual_cluster, two_ports},
    workspace_bin,
};
use sluice_proto::admin::v1::{
    AclAction, AclMode, AclOperation, AclResourceType, AclRule, ClusterPolicyAcls, DiagnoseRequest,
    Namespace, NamespaceMode, VirtualCluster, entity::Spec,
};

use super::{Case, World, expect, failing_client};

/// A virtual cluster `team-a` (as `vc` says, on the shared tansu),
/// port-mapped with a node listening; its id and bootstrap address.
async fn serve(case: &mut Case, vc: VirtualCluster) -> (String, String) {
    let backend = case.tansu_backend().await;
    let ports = two_ports();
    let gw = case.gateway.id.clone();
    let vc = VirtualCluster {
        destination_id: backend.id.clone(),
        dns_label: "team-a".into(),
        ..vc
    };
    let (vc, _) = expose_virtual_cluster(&mut case.admin, &gw, "team-a", vc, ports).await;
    case.node_listening(ports.1).await;
    (vc.id, format!("127.0.0.1:{}", ports.0))
}

fn login(bootstrap: &str, mechanism: &str, user: &str, password: &str, topic: &str) -> Vec<String> {
    let sasl = [
        "--mechanism",
        mechanism,
        "--username",
        user,
        "--password",
        password,
    ];
    super::roundtrip(bootstrap, topic, &sasl)
}

pub(crate) async fn client_password_wrong(world: Arc<World>) {
    let mut case = Case::new(&world, "client-password").await;
    let vc = VirtualCluster {
        authentication: vec![plain_terminate(&[("alice", "alice-secret")])],
        ..Default::default()
    };
    let (_, bootstrap) = serve(&mut case, vc).await;
    failing_client(
        "confluent_sasl.py",
        login(&bootstrap, "PLAIN", "alice", "guess", "orders"),
    )
    .await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap.clone(),
                principal: "alice".into(),
                ..Default::default()
            },
            "auth",
        )
        .await;
    expect(
        &d,
        "auth",
        ("sluice_virtual_cluster", "authentication"),
        &["auth_failed", "credentials do not match"],
    );
    // The same diagnosis from the command line: text, exit status 3.
    let (endpoint, token) = (format!("http://{}", world.server.addr), world.token.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(workspace_bin("sluice-server"))
            .args([
                "diagnose",
                "--gateway",
                "client-password",
                "--address",
                &bootstrap,
                "--principal",
                "alice",
            ])
            .args([
                "--symptom",
                "SASL authentication error: Authentication failed",
            ])
            .env("SLUICE_ENDPOINT", endpoint)
            .env("SLUICE_TOKEN", token)
            .output()
            .expect("run sluice-server diagnose")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("sluice-server diagnose:\n{text}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "[FAIL] auth",
        "Verdict: auth (authentication mismatch) at the auth hop",
        "Fix:     sluice_virtual_cluster",
        "[pass] listener",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

pub(crate) async fn mechanism_not_enabled(world: Arc<World>) {
    let mut case = Case::new(&world, "mechanism").await;
    let vc = VirtualCluster {
        authentication: vec![plain_terminate(&[("alice", "alice-secret")])],
        ..Default::default()
    };
    let (_, bootstrap) = serve(&mut case, vc).await;
    failing_client(
        "confluent_sasl.py",
        login(
            &bootstrap,
            "SCRAM-SHA-256",
            "alice",
            "alice-secret",
            "orders",
        ),
    )
    .await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                // The refusal names no principal (it came before one was
                // known): it still counts for the one asked about.
                principal: "alice".into(),
                ..Default::default()
            },
            "auth",
        )
        .await;
    expect(
        &d,
        "auth",
        ("sluice_virtual_cluster", "authentication"),
        &["SCRAM-SHA-256", "enable the mechanism"],
    );
}

pub(crate) async fn acl_denies_write(world: Arc<World>) {
    let mut case = Case::new(&world, "acl-write").await;
    let vc = VirtualCluster {
        authentication: vec![plain_terminate(&[("alice", "alice-secret")])],
        acl_mode: AclMode::EnforceOnGateway as i32,
        ..Default::default()
    };
    let (vc_id, bootstrap) = serve(&mut case, vc).await;
    let rule = |resource: AclResourceType, operations: Vec<AclOperation>, names: &[&str]| AclRule {
        resource_type: resource as i32,
        action: AclAction::Allow as i32,
        operations: operations.into_iter().map(|o| o as i32).collect(),
        resource_names: names.iter().map(|s| s.to_string()).collect(),
    };
    case.create(
        "read-only",
        Spec::ClusterPolicyAcls(ClusterPolicyAcls {
            virtual_cluster_id: vc_id,
            rules: vec![
                rule(
                    AclResourceType::Topic,
                    vec![AclOperation::Read, AclOperation::Describe],
                    &["acl-t"],
                ),
                rule(AclResourceType::Group, vec![AclOperation::All], &["*"]),
            ],
            ..Default::default()
        }),
    )
    .await;
    failing_client(
        "confluent_sasl.py",
        login(&bootstrap, "PLAIN", "alice", "alice-secret", "acl-t"),
    )
    .await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                principal: "alice".into(),
                topic: "acl-t".into(),
                ..Default::default()
            },
            "policy",
        )
        .await;
    expect(
        &d,
        "policy",
        ("sluice_cluster_policy_acls", "rules"),
        &["acl_denied", "read-only"],
    );
}

pub(crate) async fn namespace_hides_topic(world: Arc<World>) {
    let mut case = Case::new(&world, "namespace").await;
    let namespace = Namespace {
        mode: NamespaceMode::HidePrefix as i32,
        prefix: "team-n.".into(),
        ..Default::default()
    };
    let (_, bootstrap) = serve(
        &mut case,
        VirtualCluster {
            namespace: Some(namespace),
            ..Default::default()
        },
    )
    .await;
    // The tenant consumes the backend's shared-t: the namespace hides it.
    super::failing_consume(&bootstrap, "shared-t").await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                topic: "shared-t".into(),
                probe: true,
                ..Default::default()
            },
            "policy",
        )
        .await;
    expect(
        &d,
        "policy",
        ("sluice_virtual_cluster", "namespace"),
        &[
            "\"team-n.shared-t\", which does not exist",
            "outside the namespace",
        ],
    );
}

pub(crate) async fn acls_enforced_without_policies(world: Arc<World>) {
    let mut case = Case::new(&world, "acl-none").await;
    let vc = VirtualCluster {
        acl_mode: AclMode::EnforceOnGateway as i32,
        ..Default::default()
    };
    let (_, bootstrap) = serve(&mut case, vc).await;
    failing_client(
        "confluent_sasl.py",
        super::roundtrip(&bootstrap, "orders", &[]),
    )
    .await;
    let d = case
        .diagnose(
            DiagnoseRequest {
                address: bootstrap,
                ..Default::default()
            },
            "policy",
        )
        .await;
    expect(
        &d,
        "policy",
        ("sluice_cluster_policy_acls", "rules"),
        &["acl_mode = enforce_on_gateway and no enabled, enforced cluster_policy_acls"],
    );
}

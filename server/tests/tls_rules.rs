//! The rules that came with TLS on the data plane: an `sni` forward policy
//! needs a listener_policy_tls_server on its listener (a write without one
//! is refused at `sni`, `Validate` warns, and the TLS policy cannot be
//! deleted under it); a private key must be its certificate's; a listener's
//! PROXY protocol ranges are CIDR ranges; a backend `tls` block with
//! settings but `enabled = false` is refused; a virtual cluster's
//! dns_label is unique in its gateway.

mod common;

use common::{create, fixtures};
use sluice_proto::admin::v1::{
    BackendCluster, BackendTls, CertificateAndKey, CreateEntityRequest, DeleteEntityRequest,
    Entity, Kind, ListenerPolicyTlsServer, ProxyProtocol, Secret, Sni, UpdateEntityRequest,
    ValidateRequest, ValidateResponse, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config, validate_request::Operation,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The (field, description) pairs of a refusal's BadRequest details.
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

async fn create_err(c: &mut common::Admin, e: Entity) -> Status {
    c.create_entity(CreateEntityRequest { entity: Some(e) })
        .await
        .unwrap_err()
}

async fn validate(
    c: &mut common::Admin,
    e: Entity,
    unknown: &[&str],
) -> Result<ValidateResponse, Status> {
    c.validate(ValidateRequest {
        operation: Some(Operation::Create(CreateEntityRequest { entity: Some(e) })),
        unknown_fields: unknown.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

async fn delete(c: &mut common::Admin, e: &Entity) -> Result<(), Status> {
    c.delete_entity(DeleteEntityRequest {
        kind: e.kind() as i32,
        id: e.id.clone(),
        ..Default::default()
    })
    .await
    .map(|_| ())
}

fn tls_server(gw: &str, name: &str, listener_id: &str, pairs: &[(&str, &str)]) -> Entity {
    fixtures::entity(
        gw,
        name,
        Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: listener_id.into(),
            certificates: pairs
                .iter()
                .map(|(certificate, key)| CertificateAndKey {
                    certificate: certificate.to_string(),
                    key: fixtures::secret(key),
                })
                .collect(),
            ..Default::default()
        }),
    )
}

fn sni_forward(gw: &str, name: &str, listener_id: &str) -> Entity {
    let mut e = fixtures::forward(gw, name, listener_id, "");
    if let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &mut e.spec {
        f.config = Some(Config::Sni(Sni {
            sni_suffix: ".kafka.example.com".into(),
            ..Default::default()
        }));
    }
    e
}

#[tokio::test]
async fn an_sni_forward_policy_needs_tls_on_its_listener() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("sni")).await;
    let listener = create(&mut c, fixtures::listener(&gw.id, "edge", &["19092"])).await;

    // Without a tls_server: the write is refused at `sni`, naming the
    // listener and the fix; `Validate` (terraform plan) only warns, since
    // the same plan may create the tls_server.
    let status = create_err(&mut c, sni_forward(&gw.id, "by-sni", &listener.id)).await;
    let found = violations(&status);
    assert_eq!(fields(&status), ["sni"], "{found:?}");
    assert!(
        found[0].1.contains(&format!(
            "listener {:?} has no listener_policy_tls_server: SNI routing needs TLS on the \
             listener (add a sluice_listener_policy_tls_server)",
            listener.id
        )),
        "{found:?}"
    );
    let planned = validate(&mut c, sni_forward(&gw.id, "by-sni", &listener.id), &[])
        .await
        .unwrap();
    let warned: Vec<_> = planned.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(warned, ["sni"], "{:?}", planned.warnings);
    assert!(
        planned.warnings[0].message.contains("depends_on")
            && planned.warnings[0]
                .summary
                .contains("needs a listener_policy_tls_server"),
        "{:?}",
        planned.warnings
    );
    // A listener not known yet (a plan creating it): nothing to judge.
    let mut unknown = sni_forward(&gw.id, "by-sni", "");
    if let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &mut unknown.spec {
        f.listener_id = "00000000-0000-0000-0000-000000000000".into();
    }
    let planned = validate(&mut c, unknown, &["listener_id"]).await.unwrap();
    assert_eq!(planned.warnings, []);

    // A port-mapping forward policy cannot switch to SNI either.
    let other = create(&mut c, fixtures::listener(&gw.id, "other", &["19093"])).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let vc = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "team-b", &backend.id, "team-b"),
    )
    .await;
    let mapped = create(
        &mut c,
        fixtures::forward(&gw.id, "mapped", &other.id, &vc.id),
    )
    .await;
    let mut switched = mapped.clone();
    if let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &mut switched.spec {
        f.config = sni_forward("", "", "").spec.and_then(|s| match s {
            Spec::ListenerPolicyForwardToVirtualCluster(f) => f.config,
            _ => None,
        });
    }
    let status = c
        .update_entity(UpdateEntityRequest {
            entity: Some(switched),
            expected_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["sni"]);

    // With a tls_server on the listener: accepted, without a warning.
    let (cert, key) = fixtures::cert_and_key();
    let tls = create(
        &mut c,
        tls_server(&gw.id, "tls", &listener.id, &[(&cert, &key)]),
    )
    .await;
    let planned = validate(&mut c, sni_forward(&gw.id, "by-sni", &listener.id), &[])
        .await
        .unwrap();
    assert_eq!(planned.warnings, []);
    let forward = create(&mut c, sni_forward(&gw.id, "by-sni", &listener.id)).await;

    // The tls_server stays while the SNI policy uses its listener.
    let status = delete(&mut c, &tls).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let message = status.message();
    assert!(
        message.contains(&format!(
            "listener_policy_forward_to_virtual_cluster \"by-sni\" ({})",
            forward.id
        )) && message.contains("depends_on"),
        "{message}"
    );
    // Once the SNI policy is gone, it may go.
    delete(&mut c, &forward).await.unwrap();
    delete(&mut c, &tls).await.unwrap();
}

#[tokio::test]
async fn a_private_key_must_be_its_certificates() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("keys")).await;
    let listener = create(&mut c, fixtures::listener(&gw.id, "edge", &["19092"])).await;
    let (cert_a, key_a) = fixtures::cert_and_key();
    let (cert_b, key_b) = fixtures::cert_and_key();

    let swapped = tls_server(
        &gw.id,
        "tls",
        &listener.id,
        &[(&cert_a, &key_a), (&cert_b, &key_a)],
    );
    for status in [
        create_err(&mut c, swapped.clone()).await,
        validate(&mut c, swapped, &[]).await.unwrap_err(),
    ] {
        let found = violations(&status);
        assert_eq!(
            found,
            [(
                "certificates[1].key".to_string(),
                "the private key does not match the certificate".to_string()
            )]
        );
        assert!(
            !format!("{status:?}").contains(key_a.trim()),
            "no key in errors"
        );
    }
    // A key not known yet at plan time is not judged.
    let planned = tls_server(&gw.id, "tls", &listener.id, &[(&cert_a, "")]);
    validate(&mut c, planned, &["certificates[0].key"])
        .await
        .unwrap();

    // An unreadable certificate or key.
    let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let status = create_err(
        &mut c,
        tls_server(&gw.id, "tls", &listener.id, &[(broken, &key_a)]),
    )
    .await;
    assert_eq!(fields(&status), ["certificates[0].certificate"]);
    let garbled = key_a.replace("PRIVATE KEY-----\n", "PRIVATE KEY-----\n!!");
    let status = create_err(
        &mut c,
        tls_server(&gw.id, "tls", &listener.id, &[(&cert_a, &garbled)]),
    )
    .await;
    assert_eq!(fields(&status), ["certificates[0].key"]);
    assert!(!format!("{status:?}").contains("!!"), "no key in errors");

    // Matching pairs pass; an update may leave a key out (kept).
    let tls = create(
        &mut c,
        tls_server(
            &gw.id,
            "tls",
            &listener.id,
            &[(&cert_a, &key_a), (&cert_b, &key_b)],
        ),
    )
    .await;
    let mut kept = tls.clone();
    if let Some(Spec::ListenerPolicyTlsServer(t)) = &mut kept.spec {
        for pair in &mut t.certificates {
            pair.key = Some(Secret::default());
        }
    }
    c.update_entity(UpdateEntityRequest {
        entity: Some(kept),
        expected_revision: 0,
    })
    .await
    .unwrap();

    // A backend's client identity likewise.
    let mut backend = fixtures::entity(
        &gw.id,
        "kafka",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            tls: Some(BackendTls {
                enabled: true,
                client_identity: Some(CertificateAndKey {
                    certificate: cert_b.clone(),
                    key: fixtures::secret(&key_a),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    let status = create_err(&mut c, backend.clone()).await;
    assert_eq!(fields(&status), ["tls.client_identity.key"]);
    if let Some(Spec::BackendCluster(b)) = &mut backend.spec {
        b.tls
            .as_mut()
            .unwrap()
            .client_identity
            .as_mut()
            .unwrap()
            .key = fixtures::secret(&key_b);
    }
    let backend = create(&mut c, backend).await;
    assert_eq!(backend.kind(), Kind::BackendCluster);
}

#[tokio::test]
async fn proxy_protocol_ranges_are_cidr_ranges() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("pp")).await;
    let with = |ranges: &[&str]| {
        let mut l = fixtures::listener(&gw.id, "edge", &["19092"]);
        if let Some(Spec::Listener(listener)) = &mut l.spec {
            listener.proxy_protocol = Some(ProxyProtocol {
                trusted_ranges: ranges.iter().map(|r| r.to_string()).collect(),
            });
        }
        l
    };
    let status = create_err(
        &mut c,
        with(&[
            "10.0.0.0/8",
            "10.0.0.0/33",
            "::1",
            "lb.example",
            "2001:db8::/129",
        ]),
    )
    .await;
    let found = violations(&status);
    assert_eq!(
        fields(&status),
        [
            "proxy_protocol.trusted_ranges[1]",
            "proxy_protocol.trusted_ranges[3]",
            "proxy_protocol.trusted_ranges[4]"
        ],
        "{found:?}"
    );
    assert!(found[0].1.contains("is not a CIDR range"), "{found:?}");
    let status = create_err(&mut c, with(&[])).await;
    assert_eq!(fields(&status), ["proxy_protocol.trusted_ranges"]);
    // A range with host bits set, and bare addresses, are accepted.
    let ranges = ["10.1.2.3/8", "192.0.2.10", "2001:db8::/32", "::1"];
    let listener = create(&mut c, with(&ranges)).await;
    let Some(Spec::Listener(l)) = &listener.spec else {
        panic!("not a listener")
    };
    assert_eq!(l.proxy_protocol.as_ref().unwrap().trusted_ranges, ranges);
}

#[tokio::test]
async fn a_backend_tls_block_with_settings_must_be_enabled() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("btls")).await;
    let with = |tls: BackendTls| {
        fixtures::entity(
            &gw.id,
            "kafka",
            Spec::BackendCluster(BackendCluster {
                bootstrap_servers: vec!["127.0.0.1:9092".into()],
                tls: Some(tls),
                ..Default::default()
            }),
        )
    };
    let (cert, _) = fixtures::cert_and_key();
    // A CA bundle with enabled left false would mean plaintext (and a
    // SASL password in clear): refused at tls.enabled, naming the setting.
    for (tls, field) in [
        (
            BackendTls {
                versions: vec![sluice_proto::admin::v1::TlsVersion::Tls13 as i32],
                ..Default::default()
            },
            "versions",
        ),
        (
            BackendTls {
                ca_bundle: cert.clone(),
                ..Default::default()
            },
            "ca_bundle",
        ),
        (
            BackendTls {
                insecure_skip_verify: true,
                ..Default::default()
            },
            "insecure_skip_verify",
        ),
    ] {
        let status = create_err(&mut c, with(tls)).await;
        let found = violations(&status);
        assert_eq!(fields(&status), ["tls.enabled"], "{found:?}");
        assert!(
            found[0]
                .1
                .contains(&format!("tls.{field} is set but enabled is false")),
            "{found:?}"
        );
    }
    // An empty block reads like "TLS with the system roots": refused too.
    let status = create_err(&mut c, with(BackendTls::default())).await;
    let found = violations(&status);
    assert_eq!(fields(&status), ["tls.enabled"], "{found:?}");
    assert!(
        found[0]
            .1
            .contains("the tls block is present but enabled is false"),
        "{found:?}"
    );
    // One with enabled = true is accepted.
    let mut enabled = with(BackendTls {
        enabled: true,
        ca_bundle: cert,
        ..Default::default()
    });
    enabled.name = "kafka-tls".into();
    create(&mut c, enabled).await;
}

#[tokio::test]
async fn a_dns_label_is_unique_in_its_gateway() {
    let (_dir, _server, mut c, _) = common::start().await;
    let gw = create(&mut c, fixtures::gateway("labels")).await;
    let other_gw = create(&mut c, fixtures::gateway("labels-2")).await;
    let backend = create(&mut c, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let other_backend = create(
        &mut c,
        fixtures::backend(&other_gw.id, "kafka", "pw-123456"),
    )
    .await;
    let team_a = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "team-a", &backend.id, "team-a"),
    )
    .await;
    // Same label, same gateway: refused at dns_label, naming the holder;
    // a plan only warns (the same plan may rename or delete the holder).
    let clash = fixtures::virtual_cluster(&gw.id, "team-a-2", &backend.id, "team-a");
    let status = create_err(&mut c, clash.clone()).await;
    let found = violations(&status);
    assert_eq!(fields(&status), ["dns_label"], "{found:?}");
    assert!(
        found[0]
            .1
            .contains(&format!("virtual_cluster \"team-a\" ({})", team_a.id)),
        "{found:?}"
    );
    let planned = validate(&mut c, clash, &[]).await.unwrap();
    let warned: Vec<_> = planned.warnings.iter().map(|w| w.field.as_str()).collect();
    assert!(warned.contains(&"dns_label"), "{:?}", planned.warnings);
    // Renaming another cluster onto it is refused the same way.
    let mut team_b = create(
        &mut c,
        fixtures::virtual_cluster(&gw.id, "team-b", &backend.id, "team-b"),
    )
    .await;
    if let Some(Spec::VirtualCluster(vc)) = &mut team_b.spec {
        vc.dns_label = "team-a".into();
    }
    let status = c
        .update_entity(UpdateEntityRequest {
            entity: Some(team_b),
            expected_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["dns_label"]);
    // Another gateway may use it; a cluster keeps its own label on update.
    create(
        &mut c,
        fixtures::virtual_cluster(&other_gw.id, "team-a", &other_backend.id, "team-a"),
    )
    .await;
    let mut renamed = team_a.clone();
    renamed.description = "still team-a".into();
    c.update_entity(UpdateEntityRequest {
        entity: Some(renamed),
        expected_revision: 0,
    })
    .await
    .unwrap();
}

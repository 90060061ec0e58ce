//! Valid entities of every kind, for tests to create and then break.

use sluice_proto::admin::v1::{
    self as pb, AclRule, BackendAuthentication, BackendCluster, BackendSaslPlain,
    CertificateAndKey, ClientAuthentication, ClusterPolicyAcls, ClusterPolicyQuota,
    ConsumePolicyDecrypt, ConsumePolicyModifyHeaders, ConsumePolicySchemaValidation,
    ConsumePolicySkipRecord, DataPlaneCertificate, Entity, EventHook, EventHookConfig, Gateway,
    HeaderAction, HeaderRemove, HeaderSet, KeySource, Kind, Listener,
    ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer, PortMapping, Principal,
    ProducePolicyEncrypt, ProducePolicyModifyHeaders, ProducePolicySchemaValidation, Secret,
    StaticKey, TlsTrustBundle, VirtualCluster, VirtualClusterAuthentication, VirtualSaslPlain,
    backend_authentication, entity::Spec, header_action,
    listener_policy_forward_to_virtual_cluster, virtual_cluster_authentication,
};

/// A self-signed certificate and its key, PEM.
pub(crate) fn cert_and_key() -> (String, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("rcgen");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// A secret with a value.
pub(crate) fn secret(value: &str) -> Option<Secret> {
    Some(Secret {
        value: value.into(),
        fingerprint: String::new(),
    })
}

/// An entity with a name, gateway and spec.
pub(crate) fn entity(gateway_id: &str, name: &str, spec: Spec) -> Entity {
    Entity {
        gateway_id: gateway_id.into(),
        name: name.into(),
        description: format!("test {name}"),
        labels: [("team".to_string(), "platform".to_string())].into(),
        spec: Some(spec),
        ..Default::default()
    }
}

/// A gateway.
pub(crate) fn gateway(name: &str) -> Entity {
    entity("", name, Spec::Gateway(Gateway::default()))
}

/// A backend cluster with SASL/PLAIN credentials.
pub(crate) fn backend(gw: &str, name: &str, password: &str) -> Entity {
    entity(
        gw,
        name,
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec!["127.0.0.1:9092".into(), "[::1]:9093".into()],
            authentication: Some(BackendAuthentication {
                method: Some(backend_authentication::Method::SaslPlain(
                    BackendSaslPlain {
                        username: "svc".into(),
                        password: secret(password),
                    },
                )),
            }),
            ..Default::default()
        }),
    )
}

/// A virtual cluster on `backend_id`.
pub(crate) fn virtual_cluster(gw: &str, name: &str, backend_id: &str, dns_label: &str) -> Entity {
    entity(
        gw,
        name,
        Spec::VirtualCluster(VirtualCluster {
            destination_id: backend_id.into(),
            dns_label: dns_label.into(),
            authentication: vec![VirtualClusterAuthentication {
                method: Some(virtual_cluster_authentication::Method::SaslPlain(
                    VirtualSaslPlain {
                        mediation: pb::Mediation::Terminate as i32,
                        principals: vec![Principal {
                            username: "alice".into(),
                            password: secret("alice-pw-123"),
                            ..Default::default()
                        }],
                    },
                )),
            }],
            acl_mode: pb::AclMode::EnforceOnGateway as i32,
            ..Default::default()
        }),
    )
}

/// A listener on loopback ports.
pub(crate) fn listener(gw: &str, name: &str, ports: &[&str]) -> Entity {
    entity(
        gw,
        name,
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into()],
            ports: ports.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }),
    )
}

/// A port-mapping forward policy.
pub(crate) fn forward(gw: &str, name: &str, listener_id: &str, vc_id: &str) -> Entity {
    entity(
        gw,
        name,
        Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
            listener_id: listener_id.into(),
            config: Some(
                listener_policy_forward_to_virtual_cluster::Config::PortMapping(PortMapping {
                    destination_id: vc_id.into(),
                    advertised_host: "127.0.0.1".into(),
                    ..Default::default()
                }),
            ),
        }),
    )
}

/// The ids a full fixture set needs while it is being created.
#[derive(Default)]
pub(crate) struct Ids {
    pub gateway: String,
    pub backend: String,
    pub virtual_cluster: String,
    pub listener: String,
    pub static_key: String,
    pub trust_bundle: String,
    pub acl_policy: String,
}

/// A valid entity of `kind`, referring to the ids already created.
pub(crate) fn of_kind(kind: Kind, ids: &Ids) -> Entity {
    let gw = ids.gateway.as_str();
    let vc = ids.virtual_cluster.clone();
    let name = format!("{}-1", kind.slug().replace('_', "-"));
    let (cert, key) = cert_and_key();
    let spec = match kind {
        Kind::Gateway => return gateway("gw-fixture"),
        Kind::BackendCluster => return backend(gw, &name, "backend-pw-123"),
        Kind::VirtualCluster => return virtual_cluster(gw, &name, &ids.backend, "team-a"),
        Kind::Listener => return listener(gw, &name, &["19092", "19093-19095"]),
        Kind::ListenerPolicyForwardToVirtualCluster => {
            return forward(gw, &name, &ids.listener, &vc);
        }
        Kind::ListenerPolicyTlsServer => Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: ids.listener.clone(),
            certificates: vec![CertificateAndKey {
                certificate: cert,
                key: secret(&key),
            }],
            client_authentication: Some(ClientAuthentication {
                mode: pb::ClientAuthenticationMode::Requested as i32,
                trust_bundle_ids: vec![ids.trust_bundle.clone()],
            }),
            ..Default::default()
        }),
        Kind::ClusterPolicyAcls => Spec::ClusterPolicyAcls(ClusterPolicyAcls {
            virtual_cluster_id: vc,
            rules: vec![AclRule {
                resource_type: pb::AclResourceType::Topic as i32,
                action: pb::AclAction::Allow as i32,
                operations: vec![
                    pb::AclOperation::Read as i32,
                    pb::AclOperation::Write as i32,
                ],
                resource_names: vec!["orders-*".into()],
            }],
            ..Default::default()
        }),
        Kind::ProducePolicyModifyHeaders => {
            Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
                virtual_cluster_id: vc,
                parent_policy_id: ids.acl_policy.clone(),
                actions: vec![HeaderAction {
                    action: Some(header_action::Action::Set(HeaderSet {
                        key: "x-team".into(),
                        value: "a".into(),
                    })),
                }],
                ..Default::default()
            })
        }
        Kind::ProducePolicySchemaValidation => {
            Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
                virtual_cluster_id: vc,
                schema: r#"{"type":"object"}"#.into(),
                ..Default::default()
            })
        }
        Kind::ProducePolicyEncrypt => Spec::ProducePolicyEncrypt(ProducePolicyEncrypt {
            virtual_cluster_id: vc,
            static_key_id: ids.static_key.clone(),
            ..Default::default()
        }),
        Kind::ConsumePolicyModifyHeaders => {
            Spec::ConsumePolicyModifyHeaders(ConsumePolicyModifyHeaders {
                virtual_cluster_id: vc,
                actions: vec![HeaderAction {
                    action: Some(header_action::Action::Remove(HeaderRemove {
                        key: "x-internal".into(),
                    })),
                }],
                ..Default::default()
            })
        }
        Kind::ConsumePolicySchemaValidation => {
            Spec::ConsumePolicySchemaValidation(ConsumePolicySchemaValidation {
                virtual_cluster_id: vc,
                schema: r#"{"type":"object"}"#.into(),
                ..Default::default()
            })
        }
        Kind::ConsumePolicyDecrypt => Spec::ConsumePolicyDecrypt(ConsumePolicyDecrypt {
            virtual_cluster_id: vc,
            key_sources: vec![KeySource {
                static_key_id: ids.static_key.clone(),
            }],
            ..Default::default()
        }),
        Kind::ConsumePolicySkipRecord => Spec::ConsumePolicySkipRecord(ConsumePolicySkipRecord {
            virtual_cluster_id: vc,
            skip_condition: "headers['x-skip'] == 'true'".into(),
            ..Default::default()
        }),
        Kind::ClusterPolicyQuota => Spec::ClusterPolicyQuota(ClusterPolicyQuota {
            virtual_cluster_id: vc,
            produce_bytes_per_second: 1_000_000,
            per: 2,
            ..Default::default()
        }),
        Kind::StaticKey => Spec::StaticKey(StaticKey {
            value: secret(&"ab".repeat(32)),
        }),
        Kind::TlsTrustBundle => Spec::TlsTrustBundle(TlsTrustBundle { trusted_ca: cert }),
        Kind::DataPlaneCertificate => Spec::DataPlaneCertificate(DataPlaneCertificate {
            generated: true,
            ..Default::default()
        }),
        Kind::EventHook => Spec::EventHook(EventHook {
            source: pb::EventSource::Crud as i32,
            event: "virtual_cluster".into(),
            handler: pb::EventHandler::Webhook as i32,
            config: Some(EventHookConfig {
                url: "http://127.0.0.1:9/hook".into(),
                secret: secret("hook-secret-123"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        Kind::Unspecified => unreachable!(),
    };
    entity(gw, &name, spec)
}

/// An event hook with `url`, signed with `secret` (none when empty), that
/// gives each delivery 5 s.
pub(crate) fn hook(
    gw: &str,
    name: &str,
    source: pb::EventSource,
    event: &str,
    handler: pb::EventHandler,
    url: &str,
    secret: &str,
) -> Entity {
    entity(
        gw,
        name,
        Spec::EventHook(EventHook {
            source: source as i32,
            event: event.into(),
            handler: handler as i32,
            config: Some(EventHookConfig {
                url: url.into(),
                secret: (!secret.is_empty()).then(|| self::secret(secret)).flatten(),
                timeout: 5,
                ..Default::default()
            }),
            snooze_seconds: 0,
        }),
    )
}

//! Defaults the server fills in, so every read (and Terraform's plan) shows
//! the value in force rather than an unset field.

use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use sluice_proto::admin::v1::{
    AclMode, Anonymous, BackendAuthentication, BootstrapPort, BrokerHostFormat,
    ClientAuthenticationMode, Entity, FailureMode, Mediation, QuotaPer, RecordPart, SchemaType,
    TlsVersion, TlsVersionRange, VirtualClusterAuthentication, backend_authentication,
    entity::Spec, listener_policy_forward_to_virtual_cluster::Config,
    virtual_cluster_authentication,
};
use sluice_proto::facts;

/// Default `metadata_update_interval_seconds`.
pub const METADATA_UPDATE_INTERVAL: u32 = 60;

fn default_enum(field: &mut i32, value: i32) {
    if *field == 0 {
        *field = value;
    }
}

fn default_u32(field: &mut u32, value: u32) {
    if *field == 0 {
        *field = value;
    }
}

fn default_parts(parts: &mut Vec<i32>) {
    if parts.is_empty() {
        parts.push(RecordPart::Value as i32);
    }
}

/// Clears what a client cannot set on create: every field declared
/// `output_only` (what the server computes or issues).
pub fn clear_output_only(entity: &mut Entity) -> anyhow::Result<()> {
    let mut message = facts::to_dynamic(entity)?;
    clear(&mut message);
    *entity = message.transcode_to()?;
    Ok(())
}

fn clear(message: &mut DynamicMessage) {
    for field in message.descriptor().fields() {
        if facts::of(&field).output_only {
            message.clear_field(&field);
        } else if message.has_field(&field) && !field.is_map() {
            match message.get_field_mut(&field) {
                Value::Message(inner) => clear(inner),
                Value::List(items) => items
                    .iter_mut()
                    .filter_map(Value::as_message_mut)
                    .for_each(clear),
                _ => {}
            }
        }
    }
}

/// Fills every unset field that has a default.
pub fn apply(entity: &mut Entity) {
    let Some(spec) = entity.spec.as_mut() else {
        return;
    };
    spec.default_policy_enabled();
    match spec {
        Spec::BackendCluster(b) => {
            default_u32(
                &mut b.metadata_update_interval_seconds,
                METADATA_UPDATE_INTERVAL,
            );
            let auth = b
                .authentication
                .get_or_insert_with(BackendAuthentication::default);
            auth.method
                .get_or_insert(backend_authentication::Method::Anonymous(Anonymous {}));
            if let Some(tls) = b.tls.as_mut()
                && tls.enabled
                && tls.versions.is_empty()
            {
                tls.versions = vec![TlsVersion::Tls12 as i32, TlsVersion::Tls13 as i32];
            }
        }
        Spec::ClusterPolicyQuota(q) => default_enum(&mut q.per, QuotaPer::VirtualCluster as i32),
        Spec::VirtualCluster(vc) => {
            default_enum(&mut vc.acl_mode, AclMode::Passthrough as i32);
            if vc.authentication.is_empty() {
                vc.authentication.push(VirtualClusterAuthentication {
                    method: Some(virtual_cluster_authentication::Method::Anonymous(
                        Anonymous {},
                    )),
                });
            }
            for rule in &mut vc.authentication {
                match rule.method.as_mut() {
                    Some(virtual_cluster_authentication::Method::SaslPlain(p)) => {
                        default_enum(&mut p.mediation, Mediation::Passthrough as i32)
                    }
                    Some(virtual_cluster_authentication::Method::OauthBearer(o)) => {
                        default_enum(&mut o.mediation, Mediation::Passthrough as i32);
                        if let Some(jwks) = o.jwks.as_mut() {
                            default_u32(&mut jwks.timeout, 10);
                            default_u32(&mut jwks.cache_expiration, 3600);
                        }
                    }
                    _ => {}
                }
            }
        }
        Spec::ListenerPolicyTlsServer(t) => {
            let versions = t.versions.get_or_insert(TlsVersionRange::default());
            default_enum(&mut versions.min, TlsVersion::Tls12 as i32);
            default_enum(&mut versions.max, TlsVersion::Tls13 as i32);
            if let Some(ca) = t.client_authentication.as_mut() {
                default_enum(&mut ca.mode, ClientAuthenticationMode::Required as i32);
            }
        }
        Spec::ListenerPolicyForwardToVirtualCluster(f) => match f.config.as_mut() {
            Some(Config::PortMapping(p)) => {
                default_enum(&mut p.bootstrap_port, BootstrapPort::AtStart as i32)
            }
            Some(Config::Sni(s)) => {
                default_enum(
                    &mut s.broker_host_format,
                    BrokerHostFormat::PerClusterSuffix as i32,
                );
            }
            None => {}
        },
        Spec::ProducePolicySchemaValidation(p) => {
            default_enum(&mut p.r#type, SchemaType::Json as i32);
            default_enum(&mut p.failure_mode, FailureMode::Reject as i32);
        }
        Spec::ConsumePolicySchemaValidation(p) => {
            default_enum(&mut p.r#type, SchemaType::Json as i32);
            default_enum(&mut p.failure_mode, FailureMode::Error as i32);
        }
        Spec::ProducePolicyEncrypt(p) => {
            default_parts(&mut p.part_of_record);
            default_enum(&mut p.failure_mode, FailureMode::Reject as i32);
        }
        Spec::ConsumePolicyDecrypt(p) => {
            default_parts(&mut p.part_of_record);
            default_enum(&mut p.failure_mode, FailureMode::Error as i32);
        }
        Spec::EventHook(h) => {
            if let Some(config) = h.config.as_mut() {
                config.ssl_verify.get_or_insert(true);
                default_u32(&mut config.timeout, 10);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{DataPlaneCertificate, Gateway};

    use super::*;

    #[test]
    fn output_only_fields_are_cleared_on_create() {
        let now = Some(prost_types::Timestamp::default());
        let mut gateway = Entity {
            name: "gw".into(),
            revision: 7,
            created_at: now,
            updated_at: now,
            spec: Some(Spec::Gateway(Gateway {
                revision: 7,
                nodes_total: 2,
                virtual_clusters_total: 3,
            })),
            ..Default::default()
        };
        clear_output_only(&mut gateway).unwrap();
        assert_eq!(
            gateway,
            Entity {
                name: "gw".into(),
                spec: Some(Spec::Gateway(Gateway::default())),
                ..Default::default()
            }
        );
        let mut certificate = Entity {
            spec: Some(Spec::DataPlaneCertificate(DataPlaneCertificate {
                certificate: "c".into(),
                generated: true,
                private_key: "k".into(),
                fingerprint: "f".into(),
                expires_at: now,
                csr: "r".into(),
            })),
            ..Default::default()
        };
        clear_output_only(&mut certificate).unwrap();
        assert_eq!(
            certificate.spec,
            Some(Spec::DataPlaneCertificate(DataPlaneCertificate {
                generated: true,
                csr: "r".into(),
                ..Default::default()
            }))
        );
    }
}

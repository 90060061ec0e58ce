//! The checks that follow from the facts declared on the entity fields
//! (`sluice/admin/v1/options.proto`, read by `sluice_proto::facts`): a
//! `required` field is set, a `reference` holds an id-sized value, and an
//! update leaves every `immutable` field as it was. A new field with an
//! option is checked without code here.

use std::collections::BTreeMap;

use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use sluice_proto::{
    admin::v1::{Entity, Kind},
    facts::{self, Visit},
};

use crate::error::Violations;

/// The longest id a reference may hold (ids are UUIDs).
const MAX_ID: usize = 64;

/// The message type of write-only secrets.
const SECRET: &str = "sluice.admin.v1.Secret";

/// Records every `required` field left empty and every reference longer
/// than an id, in field order. Runs after the kind's own rules: a field
/// they already faulted keeps their more specific description.
pub fn required(entity: &Entity, v: &mut Violations) -> anyhow::Result<()> {
    facts::walk(&facts::to_dynamic(entity)?, &mut |field| {
        if v.has(&field.path) {
            return;
        }
        if field.facts.required && is_empty(&field) {
            let description = if secret(field.value).is_some() {
                "must be set (write-only secret)"
            } else {
                "must be set"
            };
            v.add(field.path, description);
        } else if !field.facts.reference.is_empty()
            && field
                .value
                .as_str()
                .is_some_and(|id| id.chars().count() > MAX_ID)
        {
            v.add(field.path, format!("must be at most {MAX_ID} characters"));
        }
    });
    Ok(())
}

/// Records every `immutable` field an update would change. `old` is the
/// stored entity and `new` the update with stored secrets carried over, so
/// a secret is compared by its fingerprint.
pub fn immutable(old: &Entity, new: &Entity, kind: Kind, v: &mut Violations) -> anyhow::Result<()> {
    let (old, new) = (fixed(old)?, fixed(new)?);
    for (path, value) in &new {
        if old.get(path) != Some(value) {
            v.add(
                path.as_str(),
                format!("cannot change; create a new {} instead", kind.slug()),
            );
        }
    }
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        v.add(
            path.as_str(),
            format!("cannot change; create a new {} instead", kind.slug()),
        );
    }
    Ok(())
}

/// The value of every `immutable` field by path; a secret as the
/// fingerprint of its value.
fn fixed(entity: &Entity) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    facts::walk(&facts::to_dynamic(entity)?, &mut |field| {
        if field.facts.immutable {
            let value = match secret(field.value) {
                Some(secret) => Value::String(fingerprint(secret)),
                None => field.value.clone(),
            };
            out.insert(field.path, value);
        }
    });
    Ok(out)
}

fn is_empty(field: &Visit<'_>) -> bool {
    match field.value {
        Value::String(s) => s.is_empty(),
        Value::List(items) => items.is_empty(),
        Value::EnumNumber(n) => *n == 0,
        value => match secret(value) {
            Some(secret) => {
                text(secret, "value").is_empty() && text(secret, "fingerprint").is_empty()
            }
            None => !field.set,
        },
    }
}

/// The `Secret` a value holds, if it is one.
fn secret(value: &Value) -> Option<&DynamicMessage> {
    value
        .as_message()
        .filter(|m| m.descriptor().full_name() == SECRET)
}

/// A secret's fingerprint: `secrets::carry_over` fills it in (keyed) for
/// a value sent as for one kept.
fn fingerprint(secret: &DynamicMessage) -> String {
    text(secret, "fingerprint")
}

fn text(secret: &DynamicMessage, field: &str) -> String {
    secret
        .get_field_by_name(field)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{
        BackendAuthentication, BackendCluster, BackendSaslPlain, ClusterPolicyAcls,
        ConsumePolicyDecrypt, DataPlaneCertificate, KeySource,
        ListenerPolicyForwardToVirtualCluster, PortMapping, Secret, StaticKey,
        backend_authentication, entity::Spec, listener_policy_forward_to_virtual_cluster::Config,
    };

    use super::*;

    fn entity(spec: Spec) -> Entity {
        Entity {
            id: "e".into(),
            gateway_id: "gw".into(),
            name: "n".into(),
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn faults(check: impl FnOnce(&mut Violations)) -> Vec<(String, String)> {
        let mut v = Violations::default();
        check(&mut v);
        match v.into_result("test") {
            Ok(()) => Vec::new(),
            Err(crate::error::ApiError::Invalid { violations, .. }) => violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn required_fields_must_be_set_at_any_depth() {
        let backend = entity(Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec!["kafka:9092".into()],
            authentication: Some(BackendAuthentication {
                method: Some(backend_authentication::Method::SaslPlain(
                    BackendSaslPlain {
                        username: String::new(),
                        password: Some(Secret::default()),
                    },
                )),
            }),
            ..Default::default()
        }));
        assert_eq!(
            faults(|v| required(&backend, v).unwrap()),
            pairs(&[
                ("authentication.sasl_plain.username", "must be set"),
                (
                    "authentication.sasl_plain.password",
                    "must be set (write-only secret)"
                ),
            ])
        );
        let forward = entity(Spec::ListenerPolicyForwardToVirtualCluster(
            ListenerPolicyForwardToVirtualCluster {
                listener_id: "l".repeat(65),
                config: Some(Config::PortMapping(PortMapping::default())),
            },
        ));
        assert_eq!(
            faults(|v| required(&forward, v).unwrap()),
            pairs(&[
                ("listener_id", "must be at most 64 characters"),
                ("port_mapping.destination_id", "must be set"),
            ])
        );
        let decrypt = entity(Spec::ConsumePolicyDecrypt(ConsumePolicyDecrypt {
            virtual_cluster_id: "vc".into(),
            key_sources: vec![
                KeySource {
                    static_key_id: "k".into(),
                },
                KeySource::default(),
            ],
            ..Default::default()
        }));
        assert_eq!(
            faults(|v| required(&decrypt, v).unwrap()),
            pairs(&[("key_sources[1].static_key_id", "must be set")])
        );
        // A fault the kind's rules found first keeps their description.
        let unnamed = Entity {
            name: String::new(),
            ..entity(Spec::ClusterPolicyAcls(ClusterPolicyAcls::default()))
        };
        assert_eq!(
            faults(|v| {
                v.add("name", "must not be empty");
                required(&unnamed, v).unwrap()
            }),
            pairs(&[
                ("name", "must not be empty"),
                ("virtual_cluster_id", "must be set"),
            ])
        );
    }

    #[test]
    fn immutable_fields_cannot_change() {
        let policy = |vc: &str| {
            entity(Spec::ClusterPolicyAcls(ClusterPolicyAcls {
                virtual_cluster_id: vc.into(),
                condition: "a".into(),
                ..Default::default()
            }))
        };
        // Mutable fields may change.
        let mut other = policy("vc");
        other.name = "renamed".into();
        if let Some(Spec::ClusterPolicyAcls(p)) = other.spec.as_mut() {
            p.condition = "b".into();
        }
        assert!(
            faults(|v| immutable(&policy("vc"), &other, Kind::ClusterPolicyAcls, v).unwrap())
                .is_empty()
        );
        let mut moved = policy("vc2");
        moved.gateway_id = "gw2".into();
        assert_eq!(
            faults(|v| immutable(&policy("vc"), &moved, Kind::ClusterPolicyAcls, v).unwrap()),
            pairs(&[
                (
                    "gateway_id",
                    "cannot change; create a new cluster_policy_acls instead"
                ),
                (
                    "virtual_cluster_id",
                    "cannot change; create a new cluster_policy_acls instead"
                ),
            ])
        );
        // A secret compares by fingerprint: the stored one against the
        // value sent again, or carried over.
        let key = |value: &str, fingerprint: &str| {
            entity(Spec::StaticKey(StaticKey {
                value: Some(Secret {
                    value: value.into(),
                    fingerprint: fingerprint.into(),
                }),
            }))
        };
        let master = crate::secrets::MasterKey::random();
        let stored = key("", &master.fingerprint("k1"));
        for same in [
            key("k1", &master.fingerprint("k1")),
            key("", &master.fingerprint("k1")),
        ] {
            assert!(faults(|v| immutable(&stored, &same, Kind::StaticKey, v).unwrap()).is_empty());
        }
        for changed in [
            key("k2", &master.fingerprint("k2")),
            Entity {
                spec: Some(Spec::StaticKey(StaticKey::default())),
                ..key("", "")
            },
        ] {
            assert_eq!(
                faults(|v| immutable(&stored, &changed, Kind::StaticKey, v).unwrap()),
                pairs(&[("value", "cannot change; create a new static_key instead")])
            );
        }
        let certificate = |generated| {
            entity(Spec::DataPlaneCertificate(DataPlaneCertificate {
                generated,
                ..Default::default()
            }))
        };
        assert_eq!(
            faults(|v| {
                let (old, new) = (certificate(true), certificate(false));
                immutable(&old, &new, Kind::DataPlaneCertificate, v).unwrap()
            }),
            pairs(&[(
                "generated",
                "cannot change; create a new data_plane_certificate instead"
            )])
        );
    }
}

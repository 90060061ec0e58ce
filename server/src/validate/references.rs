//! What each kind refers to, and the scope its name is unique in.

use sluice_proto::admin::v1::{
    Entity, Kind, entity::Spec, listener_policy_forward_to_virtual_cluster::Config,
};

/// Every virtual-cluster policy kind (a `parent_policy_id` may name any).
const POLICY_KINDS: &[Kind] = &[
    Kind::ClusterPolicyAcls,
    Kind::ProducePolicyModifyHeaders,
    Kind::ProducePolicySchemaValidation,
    Kind::ProducePolicyEncrypt,
    Kind::ConsumePolicyModifyHeaders,
    Kind::ConsumePolicySchemaValidation,
    Kind::ConsumePolicyDecrypt,
    Kind::ConsumePolicySkipRecord,
];

/// One reference field of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The field path (`destination_id`, `key_sources[0].static_key_id`).
    pub field: String,
    /// The id it holds.
    pub target: String,
    /// The kinds the target may be.
    pub kinds: &'static [Kind],
}

fn push(out: &mut Vec<Reference>, field: impl Into<String>, target: &str, kinds: &'static [Kind]) {
    if !target.is_empty() {
        out.push(Reference {
            field: field.into(),
            target: target.to_string(),
            kinds,
        });
    }
}

/// Every non-empty reference the entity holds, `gateway_id` included.
pub fn references(entity: &Entity) -> Vec<Reference> {
    let mut out = Vec::new();
    push(&mut out, "gateway_id", &entity.gateway_id, &[Kind::Gateway]);
    let Some(spec) = &entity.spec else {
        return out;
    };
    if let Some(policy) = spec.policy() {
        push(
            &mut out,
            "virtual_cluster_id",
            policy.virtual_cluster_id,
            &[Kind::VirtualCluster],
        );
        push(
            &mut out,
            "parent_policy_id",
            policy.parent_policy_id,
            POLICY_KINDS,
        );
    }
    match spec {
        Spec::VirtualCluster(vc) => push(
            &mut out,
            "destination_id",
            &vc.destination_id,
            &[Kind::BackendCluster],
        ),
        Spec::ListenerPolicyTlsServer(t) => {
            push(&mut out, "listener_id", &t.listener_id, &[Kind::Listener]);
            if let Some(ca) = &t.client_authentication {
                for (i, id) in ca.trust_bundle_ids.iter().enumerate() {
                    push(
                        &mut out,
                        format!("client_authentication.trust_bundle_ids[{i}]"),
                        id,
                        &[Kind::TlsTrustBundle],
                    );
                }
            }
        }
        Spec::ListenerPolicyForwardToVirtualCluster(f) => {
            push(&mut out, "listener_id", &f.listener_id, &[Kind::Listener]);
            if let Some(Config::PortMapping(p)) = &f.config {
                push(
                    &mut out,
                    "port_mapping.destination_id",
                    &p.destination_id,
                    &[Kind::VirtualCluster],
                );
            }
        }
        Spec::ProducePolicyEncrypt(p) => push(
            &mut out,
            "static_key_id",
            &p.static_key_id,
            &[Kind::StaticKey],
        ),
        Spec::ConsumePolicyDecrypt(p) => {
            for (i, source) in p.key_sources.iter().enumerate() {
                push(
                    &mut out,
                    format!("key_sources[{i}].static_key_id"),
                    &source.static_key_id,
                    &[Kind::StaticKey],
                );
            }
        }
        _ => {}
    }
    out
}

/// The parent an entity's name is unique in, and the family of kinds that
/// share that name space: gateways are unique globally, listener policies
/// within their listener, virtual-cluster policies within their virtual
/// cluster, everything else per kind within its gateway.
pub fn name_scope(entity: &Entity) -> (String, &'static str) {
    let kind = entity.kind();
    match &entity.spec {
        Some(Spec::Gateway(_)) => (String::new(), "gateway"),
        Some(Spec::ListenerPolicyTlsServer(t)) => (t.listener_id.clone(), "listener_policy"),
        Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) => {
            (f.listener_id.clone(), "listener_policy")
        }
        Some(spec) if kind.is_virtual_cluster_policy() => (
            spec.policy()
                .map(|p| p.virtual_cluster_id.to_string())
                .unwrap_or_default(),
            "virtual_cluster_policy",
        ),
        _ => (entity.gateway_id.clone(), kind.slug()),
    }
}

/// The parent an entity is listed under (`ListEntitiesRequest.parent_id`):
/// the listener or virtual cluster of a policy, else its gateway.
pub fn parent_id(entity: &Entity) -> String {
    match name_scope(entity) {
        (scope, "listener_policy" | "virtual_cluster_policy") => scope,
        _ => entity.gateway_id.clone(),
    }
}

//! The references an entity holds, the scope its name is unique in, and
//! the parent it is listed under. What each kind refers to is declared on
//! its fields with the `(reference)` option and listed by
//! `Entity::references` in the proto crate, shared with the data plane.

use sluice_proto::admin::v1::{Entity, entity::Spec};
pub use sluice_proto::entity::Reference;

/// Every non-empty reference the entity holds, `gateway_id` included: what
/// the store resolves and records in `entity_refs`.
pub fn references(entity: &Entity) -> Vec<Reference> {
    entity.references()
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

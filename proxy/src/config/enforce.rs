//! Fail closed: what this node's configuration asks for that this
//! version of sluice-proxy does not enforce yet. A connection whose path
//! (listener ▸ virtual cluster ▸ backend cluster) involves any of it is
//! refused at accept, before the broker is dialled, with a hop-named
//! `not_enforced` error: serving it anyway would hand out unauthenticated
//! plaintext access that the configuration forbids. Each feature leaves
//! this list in the change that enforces it.

use sluice_proto::admin::v1::{AclMode, Entity, Kind, NamespaceMode, entity::Spec};

use std::collections::HashMap;

use super::Config;
use crate::hop::{Hop, HopError, Kind as ErrorKind};

/// One thing configured that this node cannot enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEnforced {
    /// Where on the path it is configured.
    pub hop: Hop,
    /// The entity that configures it (listener, virtual cluster, backend).
    pub entity: String,
    /// The field path (or policy kind and id) that is not enforced.
    pub feature: String,
}

impl NotEnforced {
    fn new(hop: Hop, entity: &str, feature: impl Into<String>) -> Self {
        Self {
            hop,
            entity: entity.to_string(),
            feature: feature.into(),
        }
    }

    /// The error a refused connection reports.
    pub fn error(&self) -> HopError {
        let target = match self.hop {
            Hop::Listener => "this listener",
            Hop::BackendCluster => "this backend cluster",
            _ => "this virtual cluster",
        };
        HopError::new(
            self.hop,
            self.entity.clone(),
            ErrorKind::NotEnforced,
            format!(
                "feature={} not enforced by sluice-proxy {}: connections to {target} are refused",
                self.feature,
                env!("CARGO_PKG_VERSION")
            ),
        )
    }
}

/// The policy kinds this node enforces.
const ENFORCED: [Kind; 9] = [
    Kind::ClusterPolicyAcls,
    Kind::ClusterPolicyQuota,
    Kind::ProducePolicyModifyHeaders,
    Kind::ProducePolicySchemaValidation,
    Kind::ProducePolicyEncrypt,
    Kind::ConsumePolicyModifyHeaders,
    Kind::ConsumePolicySchemaValidation,
    Kind::ConsumePolicyDecrypt,
    Kind::ConsumePolicySkipRecord,
];

/// The first enabled policy (by id) of each virtual cluster, found in
/// one pass over the configuration.
pub(crate) fn first_policies(config: &Config) -> HashMap<&str, &Entity> {
    let mut first: HashMap<&str, &Entity> = HashMap::new();
    for entity in config.entities() {
        let Some(fields) = entity.spec.as_ref().and_then(|s| s.policy()) else {
            continue;
        };
        // ACL and record policies are enforced (by the virtual
        // cluster's chain); a policy kind added later is not, until it is
        // listed here.
        if fields.enabled == Some(false) || ENFORCED.contains(&entity.kind()) {
            continue;
        }
        first
            .entry(fields.virtual_cluster_id)
            .and_modify(|p| {
                if entity.id < p.id {
                    *p = entity;
                }
            })
            .or_insert(entity);
    }
    first
}

/// What a virtual cluster's own fields and policies ask for that is not
/// enforced (the first such thing, in field order). What this node cannot
/// read (a method or mode from a newer control plane) is not enforced
/// either: it is refused, never taken for the default.
pub(crate) fn virtual_cluster(
    entity: &Entity,
    policies: &HashMap<&str, &Entity>,
) -> Option<NotEnforced> {
    let Some(Spec::VirtualCluster(vc)) = &entity.spec else {
        return None;
    };
    let at = |feature: String| Some(NotEnforced::new(Hop::VirtualCluster, &entity.id, feature));
    for (i, rule) in vc.authentication.iter().enumerate() {
        if rule.method.is_none() {
            return at(format!(
                "authentication[{i}]: a method unknown to this node"
            ));
        }
    }
    if let Some(ns) = &vc.namespace {
        let known = [
            NamespaceMode::HidePrefix as i32,
            NamespaceMode::EnforcePrefix as i32,
        ];
        if !known.contains(&ns.mode) {
            return at("namespace.mode: a mode unknown to this node".into());
        }
        if ns.prefix.is_empty() {
            return at("namespace.prefix: empty (every name would be visible)".into());
        }
    }
    let known = [
        AclMode::Unspecified as i32,
        AclMode::Passthrough as i32,
        AclMode::EnforceOnGateway as i32,
    ];
    if !known.contains(&vc.acl_mode) {
        return at("acl_mode: a mode unknown to this node".into());
    }
    policies
        .get(entity.id.as_str())
        .and_then(|p| at(format!("{}({})", p.kind().slug(), p.id)))
}

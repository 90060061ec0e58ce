//! A virtual cluster's `cluster_policy_acls`, compiled once per revision:
//! oldest first (for reports; decisions do not depend on it), each with
//! its enforcement, the conditions it runs under (its own and its
//! parents') and its rules.

use std::sync::Arc;

use sluice_proto::{
    admin::v1::{Kind, PolicyEnforcement, entity::Spec},
    condition::Condition,
};

use super::{
    access::{Access, Held},
    rules::{self, Rule},
};
use crate::{config::Config, filter::conditions};

/// One compiled ACL policy.
#[derive(Debug)]
pub(super) struct Policy {
    /// The policy's id.
    pub(super) id: String,
    /// Decided, counted and reported, never applied.
    pub(super) shadow: bool,
    /// Its own condition and its parents' (all must hold).
    pub(super) conditions: Vec<Arc<Condition>>,
    /// Its rules, in order.
    pub(super) rules: Vec<Rule>,
}

/// The ACL policies of one virtual cluster.
#[derive(Debug)]
pub struct AclPolicies {
    /// The virtual cluster's id.
    pub(super) virtual_cluster: String,
    /// Enabled policies, in order.
    pub(super) policies: Vec<Policy>,
    /// The virtual cluster leaves ACLs to the backend (`acl_mode =
    /// passthrough`): every policy is evaluated like a shadow one — what
    /// it would deny is reported, nothing is denied. The way to try rules
    /// out on a live cluster before `enforce_on_gateway`.
    pub(super) report_only: bool,
}

impl AclPolicies {
    /// The ACL policies of virtual cluster `vc` in `config`, or why they
    /// cannot be enforced (an unknown enforcement, a condition that does
    /// not compile, a parent that is missing or nested too deeply).
    pub fn compile(config: &Config, vc: &str, report_only: bool) -> Result<AclPolicies, String> {
        let mut entities = conditions::policies_of(config, Kind::ClusterPolicyAcls, vc);
        entities.sort_by_key(|e| {
            let created = e.created_at.as_ref().map(|t| (t.seconds, t.nanos));
            (created, e.id.as_str())
        });
        let mut compiled = conditions::Compiled::new();
        let mut policies = Vec::new();
        for entity in entities {
            let Some(Spec::ClusterPolicyAcls(spec)) = &entity.spec else {
                continue;
            };
            let Some(conditions) = conditions::of(config, entity, &mut compiled)? else {
                continue; // disabled, or nested under a disabled parent
            };
            let shadow = match PolicyEnforcement::try_from(spec.enforcement) {
                Ok(PolicyEnforcement::Shadow) => true,
                Ok(PolicyEnforcement::Enforce | PolicyEnforcement::Unspecified) => false,
                Err(_) => {
                    return Err(format!(
                        "cluster_policy_acls({}).enforcement: {} unknown to this node",
                        entity.id, spec.enforcement
                    ));
                }
            };
            policies.push(Policy {
                id: entity.id.clone(),
                shadow,
                conditions,
                rules: rules::compile(&entity.id, spec)?,
            });
        }
        Ok(AclPolicies {
            virtual_cluster: vc.to_string(),
            policies,
            report_only,
        })
    }

    /// Whether the gateway decides (`enforce_on_gateway`) rather than
    /// only reporting what the rules would deny.
    pub fn decides(&self) -> bool {
        !self.report_only
    }

    /// Whether there is any enabled policy to evaluate.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The decisions for one request, whose context is `values` (the
    /// variables of [`sluice_proto::condition::CLUSTER_VARIABLES`]): each policy's
    /// conditions evaluated once.
    pub fn access(self: &Arc<Self>, principal: &str, values: &[(&str, &str)]) -> Access {
        let mut failures = Vec::new();
        let held = self
            .policies
            .iter()
            .map(|p| {
                for c in &p.conditions {
                    match c.holds(values) {
                        Ok(true) => {}
                        Ok(false) => return Held::No,
                        Err(e) => {
                            failures.push((p.id.clone(), e));
                            return Held::Failed;
                        }
                    }
                }
                Held::Yes
            })
            .collect();
        Access::new(self.clone(), principal, held, failures)
    }
}

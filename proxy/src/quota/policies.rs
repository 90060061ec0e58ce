//! A virtual cluster's `cluster_policy_quota`s, compiled once per
//! revision: limits, what one bucket holds, enforcement and the
//! conditions each runs under (its own and its parents').

use std::sync::Arc;

use sluice_proto::{
    admin::v1::{Kind, PolicyEnforcement, QuotaPer, entity::Spec},
    condition::Condition,
};

use super::Metric;
use crate::{config::Config, filter::conditions};

/// What one bucket of a policy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Per {
    /// The whole virtual cluster.
    VirtualCluster,
    /// One principal.
    Principal,
    /// One client id.
    ClientId,
}

/// One compiled quota policy.
#[derive(Debug)]
pub(crate) struct Policy {
    /// The policy's id.
    pub(crate) id: Arc<str>,
    /// Counted and reported, never throttles or refuses.
    pub(crate) shadow: bool,
    /// Its own condition and its parents' (all must hold).
    pub(crate) conditions: Vec<Arc<Condition>>,
    /// What one bucket holds.
    pub(crate) per: Per,
    /// Gateway-wide limits per metric (0: none).
    pub(crate) produce_bytes: u64,
    pub(crate) fetch_bytes: u64,
    pub(crate) requests: u64,
    pub(crate) connections: u64,
}

impl Policy {
    /// The gateway-wide limit of `metric`, if the policy sets one.
    pub(crate) fn limit(&self, metric: Metric) -> Option<u64> {
        let limit = match metric {
            Metric::ProduceBytes => self.produce_bytes,
            Metric::FetchBytes => self.fetch_bytes,
            Metric::Requests => self.requests,
            Metric::Connections => self.connections,
        };
        (limit > 0).then_some(limit)
    }
}

/// The quota policies of one virtual cluster.
#[derive(Debug)]
pub struct QuotaPolicies {
    /// Enabled policies, by id.
    pub(crate) policies: Vec<Policy>,
    /// Whether any key or condition depends on the request's client id
    /// (else it is never read).
    pub(crate) reads_client_id: bool,
    /// Whether any condition reads the API (else one decision serves
    /// every request of a connection).
    pub(crate) reads_api: bool,
}

impl QuotaPolicies {
    /// The enabled quota policies of virtual cluster `vc`, `None` when it
    /// has none, or why they cannot be enforced (an enforcement or `per`
    /// unknown to this node, a condition that does not compile).
    pub fn compile(config: &Config, vc: &str) -> Result<Option<QuotaPolicies>, String> {
        let mut entities = conditions::policies_of(config, Kind::ClusterPolicyQuota, vc);
        entities.sort_by(|a, b| a.id.cmp(&b.id));
        let mut compiled = conditions::Compiled::new();
        let mut policies = Vec::new();
        for entity in entities {
            let Some(Spec::ClusterPolicyQuota(spec)) = &entity.spec else {
                continue;
            };
            let Some(conditions) = conditions::of(config, entity, &mut compiled)? else {
                continue; // disabled, or nested under a disabled parent
            };
            let at = |field: &str, value: i32| {
                format!(
                    "cluster_policy_quota({}).{field}: {value} unknown to this node",
                    entity.id
                )
            };
            let shadow = match PolicyEnforcement::try_from(spec.enforcement) {
                Ok(PolicyEnforcement::Shadow) => true,
                Ok(PolicyEnforcement::Enforce | PolicyEnforcement::Unspecified) => false,
                Err(_) => return Err(at("enforcement", spec.enforcement)),
            };
            let per = match QuotaPer::try_from(spec.per) {
                Ok(QuotaPer::VirtualCluster | QuotaPer::Unspecified) => Per::VirtualCluster,
                Ok(QuotaPer::Principal) => Per::Principal,
                Ok(QuotaPer::ClientId) => Per::ClientId,
                Err(_) => return Err(at("per", spec.per)),
            };
            policies.push(Policy {
                id: entity.id.as_str().into(),
                shadow,
                conditions,
                per,
                produce_bytes: spec.produce_bytes_per_second,
                fetch_bytes: spec.fetch_bytes_per_second,
                requests: spec.requests_per_second,
                connections: u64::from(spec.max_connections),
            });
        }
        if policies.is_empty() {
            return Ok(None);
        }
        let reads = |name: &str| {
            policies
                .iter()
                .any(|p| p.conditions.iter().any(|c| c.reads(name)))
        };
        let reads_client_id = reads("client_id") || policies.iter().any(|p| p.per == Per::ClientId);
        let reads_api = reads("api");
        Ok(Some(QuotaPolicies {
            policies,
            reads_client_id,
            reads_api,
        }))
    }
}

//! The ACL decisions of one request: which policies apply to it (their
//! conditions, evaluated once), the decision for each (resource, name,
//! operation) it needs, and the denials to report.
//!
//! Enforced policies decide as Kafka's authorizer does: a matching deny
//! wins, else a matching allow, and nothing matching is a denial (also
//! when every policy is in shadow). Shadow policies change nothing: the
//! decision all policies together would make is compared, and what they
//! would deny that is allowed is reported with `shadow = true`. Where the
//! backend decides (`acl_mode = passthrough`) every policy is evaluated
//! like a shadow one and nothing is denied.

use std::sync::Arc;

use super::{
    policies::AclPolicies,
    rules::{Operation, ResourceType},
};

/// The resource name of the cluster.
pub const CLUSTER: &str = "kafka-cluster";

/// The most denials one request keeps by name (the rest are counted).
const KEPT: usize = 256;

/// Whether a policy's conditions held for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// They held: its rules apply.
    Yes,
    /// One did not: its rules do not apply.
    No,
    /// One could not be evaluated: its deny rules apply, its allow rules
    /// do not (fail closed).
    Failed,
}

/// One denial, for the node's counts, log and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The resource type.
    pub resource: ResourceType,
    /// The resource's name as the virtual cluster shows it.
    pub name: String,
    /// The operation denied.
    pub operation: Operation,
    /// The policy whose rule decided, and the rule's position; `None`:
    /// no rule allowed it (denied by default).
    pub rule: Option<(String, usize)>,
    /// A shadow decision: reported, not applied.
    pub shadow: bool,
}

/// The ACL decisions of one request.
#[derive(Debug)]
pub struct Access {
    policies: Arc<AclPolicies>,
    principal: String,
    held: Vec<Held>,
    /// Policies whose condition could not be evaluated, and why.
    pub failures: Vec<(String, String)>,
    /// What was denied (at most [`KEPT`]).
    pub denials: Vec<Denial>,
    /// Denials beyond those kept.
    pub more: usize,
}

impl Access {
    pub(super) fn new(
        policies: Arc<AclPolicies>,
        principal: &str,
        held: Vec<Held>,
        failures: Vec<(String, String)>,
    ) -> Access {
        Access {
            policies,
            principal: principal.to_string(),
            held,
            failures,
            denials: Vec::new(),
            more: 0,
        }
    }

    /// The principal decided for.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The virtual cluster's id.
    pub fn virtual_cluster(&self) -> &str {
        &self.policies.virtual_cluster
    }

    /// Decides `operation` on `name`, recording a denial (or a shadow
    /// one); false only when it is denied for real.
    pub fn permit(&mut self, resource: ResourceType, name: &str, operation: Operation) -> bool {
        if !self.policies.report_only {
            let enforced = self.deciding(resource, name, operation, false);
            if !enforced.as_ref().is_some_and(|(_, _, allow)| *allow) {
                self.record(resource, name, operation, enforced, false);
                return false;
            }
        }
        if self.policies.report_only || self.policies.policies.iter().any(|p| p.shadow) {
            let all = self.deciding(resource, name, operation, true);
            if !all.as_ref().is_some_and(|(_, _, allow)| *allow) {
                self.record(resource, name, operation, all, true);
            }
        }
        true
    }

    /// The enforced decision, nothing recorded (for what a listing may
    /// show, and for alternatives such as create on the cluster).
    pub fn may(&self, resource: ResourceType, name: &str, operation: Operation) -> bool {
        self.policies.report_only
            || self
                .deciding(resource, name, operation, false)
                .is_some_and(|(_, _, allow)| allow)
    }

    /// Whether the gateway decides (else it only reports).
    pub fn decides(&self) -> bool {
        self.policies.decides()
    }

    /// Kafka's bit set of the operations the principal may perform on
    /// `name` (`1 << code` per operation), for the `authorized_operations`
    /// fields of Metadata, DescribeTopicPartitions and group descriptions:
    /// the gateway's decisions, never the broker's view of its own ACLs.
    pub fn authorized_operations(&self, resource: ResourceType, name: &str) -> i32 {
        use Operation::*;
        let candidates: &[Operation] = match resource {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Delete, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::TransactionalId => &[Write, Describe],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
        };
        candidates
            .iter()
            .filter(|o| self.may(resource, name, **o))
            .fold(0, |bits, o| bits | (1 << o.code()))
    }

    /// Whether some enforced rule that applies could allow `operation` on
    /// some resource of `resource` type (an idempotent producer may start
    /// when it may write to some topic).
    pub fn may_any(&self, resource: ResourceType, operation: Operation) -> bool {
        self.policies.report_only
            || self.applying(false).any(|(_, rule)| {
                rule.allow
                    && rule.resource_type == resource
                    && rule
                        .operations
                        .iter()
                        .any(|o| *o == operation || *o == Operation::All)
            })
    }

    /// The enforced allow and deny rules that apply to this request, for
    /// DescribeAcls: (policy id, rule).
    pub fn rules(&self) -> impl Iterator<Item = (&str, &super::rules::Rule)> {
        self.applying(false).map(|(p, r)| (p.id.as_str(), r))
    }

    fn applying(
        &self,
        with_shadow: bool,
    ) -> impl Iterator<Item = (&super::policies::Policy, &super::rules::Rule)> {
        self.policies
            .policies
            .iter()
            .zip(&self.held)
            .filter(move |(p, held)| (with_shadow || !p.shadow) && **held != Held::No)
            .flat_map(|(p, held)| {
                p.rules
                    .iter()
                    .filter(move |r| *held == Held::Yes || !r.allow)
                    .map(move |r| (p, r))
            })
    }

    fn deciding(
        &self,
        resource: ResourceType,
        name: &str,
        operation: Operation,
        with_shadow: bool,
    ) -> Option<(String, usize, bool)> {
        // As in Kafka, a matching deny wins over any allow: the order of
        // rules and policies (created in parallel by Terraform) never
        // changes a decision.
        let matching = || {
            self.applying(with_shadow)
                .filter(|(_, r)| r.matches(resource, name, operation))
        };
        matching()
            .find(|(_, r)| !r.allow)
            .or_else(|| matching().next())
            .map(|(p, r)| (p.id.clone(), r.index, r.allow))
    }

    fn record(
        &mut self,
        resource: ResourceType,
        name: &str,
        operation: Operation,
        rule: Option<(String, usize, bool)>,
        shadow: bool,
    ) {
        if self.denials.len() >= KEPT {
            self.more += 1;
            return;
        }
        self.denials.push(Denial {
            resource,
            name: name.to_string(),
            operation,
            rule: rule.map(|(id, index, _)| (id, index)),
            shadow,
        });
    }
}

//! ACL rules compiled from `cluster_policy_acls` entities, and the
//! decision for one (resource type, name, operation).

use sluice_proto::admin::v1::{AclAction, AclOperation, AclResourceType, ClusterPolicyAcls};

use crate::filter::namespace::glob;

/// A Kafka resource type an ACL rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// A transactional id.
    TransactionalId,
    /// The cluster itself.
    Cluster,
}

/// A Kafka ACL operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Every operation.
    All,
    /// Alter.
    Alter,
    /// AlterConfigs.
    AlterConfigs,
    /// Create.
    Create,
    /// Delete.
    Delete,
    /// Describe.
    Describe,
    /// DescribeConfigs.
    DescribeConfigs,
    /// IdempotentWrite.
    IdempotentWrite,
    /// Read.
    Read,
    /// Write.
    Write,
}

impl Operation {
    /// Whether allowing `self` also allows `asked` (Kafka's implied
    /// operations: read, write, delete and alter imply describe;
    /// alter_configs implies describe_configs; all implies everything).
    /// Denials imply nothing: denying read does not deny describe.
    fn allows(self, asked: Operation) -> bool {
        use Operation::*;
        self == asked
            || self == All
            || (asked == Describe && matches!(self, Read | Write | Delete | Alter))
            || (asked == DescribeConfigs && self == AlterConfigs)
    }
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    policy_id: String,
    resource_type: ResourceType,
    allow: bool,
    operations: Vec<Operation>,
    names: Vec<String>,
}

impl Rule {
    fn matches(&self, resource_type: ResourceType, name: &str, asked: Operation) -> bool {
        let operation = |o: &Operation| {
            if self.allow {
                o.allows(asked)
            } else {
                *o == asked || *o == Operation::All
            }
        };
        self.resource_type == resource_type
            && self.operations.iter().any(operation)
            && self.names.iter().any(|pattern| glob(pattern, name))
    }
}

/// A virtual cluster's ACL rules, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acls {
    rules: Vec<Rule>,
}

/// What the rules decided, and which policy decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the operation is allowed.
    pub allowed: bool,
    /// The policy whose rule decided; `None`: no rule matched (denied by
    /// default).
    pub policy_id: Option<String>,
}

impl Acls {
    /// The rules of `policies` (id and spec, in the virtual cluster's
    /// order), or which field cannot be compiled: a value this node does
    /// not know is never read as another (the policy is refused).
    pub fn compile(policies: &[(&str, &ClusterPolicyAcls)]) -> Result<Acls, String> {
        let mut rules = Vec::new();
        for (id, policy) in policies {
            for (i, rule) in policy.rules.iter().enumerate() {
                let at = |field: &str| format!("cluster_policy_acls({id}).rules[{i}].{field}");
                let resource_type = match AclResourceType::try_from(rule.resource_type) {
                    Ok(AclResourceType::Topic) => ResourceType::Topic,
                    Ok(AclResourceType::Group) => ResourceType::Group,
                    Ok(AclResourceType::TransactionalId) => ResourceType::TransactionalId,
                    Ok(AclResourceType::Cluster) => ResourceType::Cluster,
                    _ => return Err(format!("{}: unknown to this node", at("resource_type"))),
                };
                let allow = match AclAction::try_from(rule.action) {
                    Ok(AclAction::Allow) => true,
                    Ok(AclAction::Deny) => false,
                    _ => return Err(format!("{}: unknown to this node", at("action"))),
                };
                let operations = rule
                    .operations
                    .iter()
                    .map(|o| {
                        operation(*o).ok_or_else(|| {
                            format!("{}: {o} unknown to this node", at("operations"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if operations.is_empty() || rule.resource_names.is_empty() {
                    return Err(format!(
                        "{}: a rule needs operations and resource_names",
                        at("")
                    ));
                }
                rules.push(Rule {
                    policy_id: id.to_string(),
                    resource_type,
                    allow,
                    operations,
                    names: rule.resource_names.clone(),
                });
            }
        }
        Ok(Acls { rules })
    }

    /// The decision for `asked` on the resource `name` of `resource_type`:
    /// the first rule that matches, or denied when none does.
    pub fn decide(&self, resource_type: ResourceType, name: &str, asked: Operation) -> Decision {
        match self
            .rules
            .iter()
            .find(|r| r.matches(resource_type, name, asked))
        {
            Some(rule) => Decision {
                allowed: rule.allow,
                policy_id: Some(rule.policy_id.clone()),
            },
            None => Decision {
                allowed: false,
                policy_id: None,
            },
        }
    }
}

fn operation(value: i32) -> Option<Operation> {
    use Operation::*;
    Some(match AclOperation::try_from(value).ok()? {
        AclOperation::All => All,
        AclOperation::Alter => Alter,
        AclOperation::AlterConfigs => AlterConfigs,
        AclOperation::Create => Create,
        AclOperation::Delete => Delete,
        AclOperation::Describe => Describe,
        AclOperation::DescribeConfigs => DescribeConfigs,
        AclOperation::IdempotentWrite => IdempotentWrite,
        AclOperation::Read => Read,
        AclOperation::Write => Write,
        AclOperation::Unspecified => return None,
    })
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::AclRule;

    use super::*;

    fn rule(
        resource_type: AclResourceType,
        action: AclAction,
        ops: &[AclOperation],
        names: &[&str],
    ) -> AclRule {
        AclRule {
            resource_type: resource_type as i32,
            action: action as i32,
            operations: ops.iter().map(|o| *o as i32).collect(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_nothing_matching_denies() {
        use AclOperation as O;
        use AclResourceType as T;
        let policy = ClusterPolicyAcls {
            rules: vec![
                rule(T::Topic, AclAction::Deny, &[O::Write], &["payments"]),
                rule(
                    T::Topic,
                    AclAction::Allow,
                    &[O::Read, O::Write],
                    &["pay*", "orders"],
                ),
                rule(T::Group, AclAction::Allow, &[O::All], &["*"]),
            ],
            ..Default::default()
        };
        let acls = Acls::compile(&[("acl-1", &policy)]).unwrap();
        let decide = |t, n, o| acls.decide(t, n, o);
        use Operation::*;
        use ResourceType::*;
        assert!(!decide(Topic, "payments", Write).allowed, "denied first");
        assert_eq!(
            decide(Topic, "payments", Write).policy_id.as_deref(),
            Some("acl-1")
        );
        assert!(decide(Topic, "payments", Read).allowed);
        assert!(
            decide(Topic, "payments", Describe).allowed,
            "read implies describe"
        );
        assert!(decide(Topic, "payouts", Write).allowed, "glob");
        assert!(!decide(Topic, "orders", Delete).allowed);
        assert_eq!(
            decide(Topic, "orders", Delete).policy_id,
            None,
            "denied by default"
        );
        assert!(!decide(Topic, "other", Read).allowed);
        assert!(decide(Group, "anything", Read).allowed, "all");
        assert!(!decide(TransactionalId, "tx", Write).allowed);
        assert!(!decide(Cluster, "kafka-cluster", Create).allowed);
    }

    #[test]
    fn a_denial_implies_nothing() {
        use AclOperation as O;
        let policy = ClusterPolicyAcls {
            rules: vec![
                rule(AclResourceType::Topic, AclAction::Deny, &[O::Read], &["*"]),
                rule(
                    AclResourceType::Topic,
                    AclAction::Allow,
                    &[O::Describe],
                    &["*"],
                ),
            ],
            ..Default::default()
        };
        let acls = Acls::compile(&[("p", &policy)]).unwrap();
        assert!(
            acls.decide(ResourceType::Topic, "t", Operation::Describe)
                .allowed
        );
        assert!(
            !acls
                .decide(ResourceType::Topic, "t", Operation::Read)
                .allowed
        );
    }

    #[test]
    fn values_unknown_to_this_node_are_refused() {
        let mut bad = rule(
            AclResourceType::Topic,
            AclAction::Allow,
            &[AclOperation::Read],
            &["*"],
        );
        bad.operations.push(42);
        let policy = ClusterPolicyAcls {
            rules: vec![bad],
            ..Default::default()
        };
        let err = Acls::compile(&[("p", &policy)]).unwrap_err();
        assert!(err.contains("rules[0].operations: 42"), "{err}");
    }
}

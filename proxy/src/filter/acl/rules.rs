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

impl ResourceType {
    /// Kafka's code for it (DescribeAcls).
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    /// The name in logs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Topic => "topic",
            ResourceType::Group => "group",
            ResourceType::Cluster => "cluster",
            ResourceType::TransactionalId => "transactional_id",
        }
    }
}

impl Operation {
    /// Kafka's code for it (DescribeAcls).
    pub fn code(self) -> i8 {
        use Operation::*;
        match self {
            All => 2,
            Read => 3,
            Write => 4,
            Create => 5,
            Delete => 6,
            Alter => 7,
            Describe => 8,
            DescribeConfigs => 10,
            AlterConfigs => 11,
            IdempotentWrite => 12,
        }
    }

    /// The name in logs and events.
    pub fn as_str(self) -> &'static str {
        use Operation::*;
        match self {
            All => "all",
            Alter => "alter",
            AlterConfigs => "alter_configs",
            Create => "create",
            Delete => "delete",
            Describe => "describe",
            DescribeConfigs => "describe_configs",
            IdempotentWrite => "idempotent_write",
            Read => "read",
            Write => "write",
        }
    }
}

/// One compiled rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its position in the policy's `rules`.
    pub index: usize,
    /// The resource type it covers.
    pub resource_type: ResourceType,
    /// Allow (true) or deny.
    pub allow: bool,
    /// The operations it covers.
    pub operations: Vec<Operation>,
    /// Exact names or `*` globs.
    pub names: Vec<String>,
}

impl Rule {
    /// Whether the rule covers `asked` on `name`: an allow also covers
    /// the operations its own imply, a deny only its own.
    pub fn matches(&self, resource_type: ResourceType, name: &str, asked: Operation) -> bool {
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

/// The rules of one `cluster_policy_acls` (`id`), or which field cannot
/// be compiled: a value this node does not know is never read as another
/// (the policy is refused).
pub(super) fn compile(id: &str, policy: &ClusterPolicyAcls) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
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
                operation(*o)
                    .ok_or_else(|| format!("{}: {o} unknown to this node", at("operations")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if operations.is_empty() || rule.resource_names.is_empty() {
            return Err(format!(
                "{}: a rule needs operations and resource_names",
                at("")
            ));
        }
        rules.push(Rule {
            index: i,
            resource_type,
            allow,
            operations,
            names: rule.resource_names.clone(),
        });
    }
    Ok(rules)
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
    fn allows_imply_and_denials_do_not() {
        use AclOperation as O;
        let policy = ClusterPolicyAcls {
            rules: vec![
                rule(AclResourceType::Topic, AclAction::Deny, &[O::Read], &["*"]),
                rule(
                    AclResourceType::Topic,
                    AclAction::Allow,
                    &[O::Read, O::Write],
                    &["pay*"],
                ),
            ],
            ..Default::default()
        };
        let rules = compile("p", &policy).unwrap();
        use Operation::*;
        use ResourceType::*;
        assert!(rules[0].matches(Topic, "x", Read));
        assert!(
            !rules[0].matches(Topic, "x", Describe),
            "a denial implies nothing"
        );
        assert!(
            rules[1].matches(Topic, "payments", Describe),
            "read implies describe"
        );
        assert!(!rules[1].matches(Topic, "orders", Write), "glob");
        assert!(!rules[1].matches(Group, "payments", Read), "resource type");
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
        let err = compile("p", &policy).unwrap_err();
        assert!(err.contains("rules[0].operations: 42"), "{err}");
    }
}

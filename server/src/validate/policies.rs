//! Field checks of virtual-cluster policies: what every policy shares
//! (its condition, compiled with its phase's variables; its enforcement),
//! ACL rules, and each record policy's own fields (header actions,
//! schemas compiled as nodes compile them, record parts and field paths).

use sluice_proto::admin::v1::{
    AclAction, AclOperation, AclResourceType, ClusterPolicyQuota, FailureMode, HeaderAction,
    PolicyEnforcement, QuotaPer, RecordPart, entity::Spec, header_action,
};
use sluice_proto::condition::{self, Condition};

use super::rules::{self, MAX_CONDITION};
use crate::error::Violations;

/// What every policy shares: `condition` and `enforcement`.
pub(super) fn check_common(v: &mut Violations, spec: &Spec) {
    if let Some(policy) = spec.policy() {
        rules::max_len(v, "condition", policy.condition, MAX_CONDITION);
        rules::enum_set::<PolicyEnforcement>(
            v,
            "enforcement",
            policy.enforcement,
            "enforce, shadow",
        );
        // Conditions are evaluated per request (cluster phase) or per
        // record (produce and consume) by every node: one that cannot
        // compile with its phase's variables is refused here, with its
        // place.
        let variables = match spec {
            Spec::ClusterPolicyAcls(_) | Spec::ClusterPolicyQuota(_) => {
                condition::CLUSTER_VARIABLES
            }
            _ => condition::RECORD_VARIABLES,
        };
        if !policy.condition.is_empty()
            && let Err(e) = Condition::compile(policy.condition, variables)
        {
            v.add("condition", e);
        }
    }
}

/// The fields of a policy of one kind.
pub(super) fn check(v: &mut Violations, spec: &Spec) {
    match spec {
        Spec::ClusterPolicyAcls(p) => {
            if p.rules.is_empty() {
                v.add("rules", "at least one rule is required");
            }
            for (i, rule) in p.rules.iter().enumerate() {
                let at = format!("rules[{i}]");
                rules::enum_set::<AclResourceType>(
                    v,
                    &format!("{at}.resource_type"),
                    rule.resource_type,
                    "topic, group, transactional_id, cluster",
                );
                rules::enum_set::<AclAction>(
                    v,
                    &format!("{at}.action"),
                    rule.action,
                    "allow, deny",
                );
                if rule.operations.is_empty() {
                    v.add(
                        format!("{at}.operations"),
                        "at least one operation is required",
                    );
                }
                for (j, op) in rule.operations.iter().enumerate() {
                    rules::enum_set::<AclOperation>(
                        v,
                        &format!("{at}.operations[{j}]"),
                        *op,
                        "all, alter, alter_configs, create, delete, describe, describe_configs, \
                         idempotent_write, read, write",
                    );
                }
                if rule.resource_names.is_empty() {
                    v.add(
                        format!("{at}.resource_names"),
                        "at least one name or glob is required",
                    );
                }
                for (j, name) in rule.resource_names.iter().enumerate() {
                    rules::required(v, &format!("{at}.resource_names[{j}]"), name, 249);
                    // The cluster has one name; a rule naming another
                    // would never match (silently).
                    if rule.resource_type == AclResourceType::Cluster as i32
                        && !sluice_proto::names::glob(name, "kafka-cluster")
                    {
                        v.add(
                            format!("{at}.resource_names[{j}]"),
                            "a cluster rule names the cluster as \"kafka-cluster\" (or a glob \
                             matching it)",
                        );
                    }
                }
            }
        }
        Spec::ProducePolicyModifyHeaders(p) => header_actions(v, &p.actions),
        Spec::ConsumePolicyModifyHeaders(p) => header_actions(v, &p.actions),
        Spec::ProducePolicySchemaValidation(p) => {
            schema(v, p.r#type, &p.schema);
            rules::enum_in(
                v,
                "failure_mode",
                p.failure_mode,
                &[
                    (FailureMode::Reject as i32, "reject"),
                    (FailureMode::Passthrough as i32, "passthrough"),
                    (FailureMode::Mark as i32, "mark"),
                ],
            );
        }
        Spec::ConsumePolicySchemaValidation(p) => {
            schema(v, p.r#type, &p.schema);
            rules::enum_in(
                v,
                "failure_mode",
                p.failure_mode,
                &[
                    (FailureMode::Error as i32, "error"),
                    (FailureMode::Skip as i32, "skip"),
                    (FailureMode::Passthrough as i32, "passthrough"),
                    (FailureMode::Mark as i32, "mark"),
                ],
            );
        }
        Spec::ProducePolicyEncrypt(p) => {
            rules::required(v, "static_key_id", &p.static_key_id, 64);
            record_parts(v, &p.part_of_record);
            fields(v, &p.part_of_record, &p.fields);
            rules::enum_in(
                v,
                "failure_mode",
                p.failure_mode,
                &[
                    (FailureMode::Reject as i32, "reject"),
                    (FailureMode::Passthrough as i32, "passthrough"),
                ],
            );
        }
        Spec::ConsumePolicyDecrypt(p) => {
            if p.key_sources.is_empty() {
                v.add("key_sources", "at least one key source is required");
            }
            record_parts(v, &p.part_of_record);
            fields(v, &p.part_of_record, &p.fields);
            rules::enum_in(
                v,
                "failure_mode",
                p.failure_mode,
                &[
                    (FailureMode::Error as i32, "error"),
                    (FailureMode::Skip as i32, "skip"),
                    (FailureMode::Passthrough as i32, "passthrough"),
                ],
            );
        }
        Spec::ConsumePolicySkipRecord(p) => {
            rules::required(v, "skip_condition", &p.skip_condition, MAX_CONDITION);
            if !p.skip_condition.is_empty()
                && let Err(e) = Condition::compile(&p.skip_condition, condition::RECORD_VARIABLES)
            {
                v.add("skip_condition", e);
            }
        }
        Spec::ClusterPolicyQuota(p) => quota(v, p),
        _ => {}
    }
}

/// The largest rate a quota takes (1 TB/s, or a trillion requests a
/// second): far above anything real, and small enough that a node's
/// arithmetic in f64 stays exact to the byte.
const MAX_RATE: u64 = 1_000_000_000_000;

fn quota(v: &mut Violations, p: &ClusterPolicyQuota) {
    let rates = [
        ("produce_bytes_per_second", p.produce_bytes_per_second),
        ("fetch_bytes_per_second", p.fetch_bytes_per_second),
        ("requests_per_second", p.requests_per_second),
    ];
    for (field, rate) in rates {
        if rate > MAX_RATE {
            v.add(field, format!("at most {MAX_RATE}"));
        }
    }
    if rates.iter().all(|(_, r)| *r == 0) && p.max_connections == 0 {
        v.add(
            "produce_bytes_per_second",
            "set at least one of produce_bytes_per_second, fetch_bytes_per_second, \
             requests_per_second, max_connections (a quota without a limit limits nothing)",
        );
    }
    // Connections are counted when a client connects, before any
    // request: `api` is empty then, and such a condition never holds.
    if p.max_connections > 0
        && let Ok(c) = Condition::compile(&p.condition, condition::CLUSTER_VARIABLES)
        && !p.condition.is_empty()
        && c.reads("api")
    {
        v.add(
            "condition",
            "reads `api`, but max_connections is counted when a client connects, before any \
             request (`api` is empty then): put max_connections in a quota of its own",
        );
    }
    rules::enum_in(
        v,
        "per",
        p.per,
        &[
            (QuotaPer::VirtualCluster as i32, "virtual_cluster"),
            (QuotaPer::Principal as i32, "principal"),
            (QuotaPer::ClientId as i32, "client_id"),
        ],
    );
}

fn header_actions(v: &mut Violations, actions: &[HeaderAction]) {
    if actions.is_empty() {
        v.add("actions", "at least one action is required");
    }
    for (i, action) in actions.iter().enumerate() {
        match &action.action {
            None => v.add(format!("actions[{i}]"), "set one of set, remove"),
            Some(header_action::Action::Set(s)) => {
                rules::max_len(v, &format!("actions[{i}].set.key"), &s.key, 255)
            }
            Some(header_action::Action::Remove(r)) => {
                rules::max_len(v, &format!("actions[{i}].remove.key"), &r.key, 255)
            }
        }
    }
}

fn schema(v: &mut Violations, kind: i32, schema: &str) {
    rules::enum_in(
        v,
        "type",
        kind,
        &[(sluice_proto::admin::v1::SchemaType::Json as i32, "json")],
    );
    if schema.trim().is_empty() {
        v.add("schema", "must be set");
    } else {
        match serde_json::from_str::<serde_json::Value>(schema) {
            Err(e) => v.add(
                "schema",
                format!("must be a JSON document (a JSON Schema): {e}"),
            ),
            // Compiled as nodes compile it (no remote or file references):
            // a schema no node could use is refused here, not at apply.
            Ok(document) => {
                if let Err(e) = jsonschema::options().build(&document) {
                    v.add("schema", format!("not a usable JSON Schema: {e}"));
                }
            }
        }
    }
}

/// Field-level encryption paths: object members of the value.
fn fields(v: &mut Violations, parts: &[i32], fields: &[String]) {
    use sluice_proto::record_policy::{MAX_FIELDS, field_path};
    if fields.is_empty() {
        return;
    }
    if fields.len() > MAX_FIELDS {
        v.add("fields", format!("at most {MAX_FIELDS} paths"));
    }
    if parts.contains(&(RecordPart::Key as i32)) {
        v.add_comparing(
            "part_of_record",
            ["fields"],
            "fields are paths in the value: leave part_of_record empty or [value]",
        );
    }
    for (i, f) in fields.iter().enumerate() {
        if let Err(e) = field_path(f) {
            v.add(format!("fields[{i}]"), e);
        }
    }
}

fn record_parts(v: &mut Violations, parts: &[i32]) {
    for (i, part) in parts.iter().enumerate() {
        rules::enum_set::<RecordPart>(v, &format!("part_of_record[{i}]"), *part, "key, value");
    }
}

//! Where a policy runs: its own `condition` and its parents' (nested by
//! `parent_policy_id`), compiled once per revision with the variables of
//! each policy's phase — a child runs only where every one of them holds.

use std::{collections::HashMap, sync::Arc};

use sluice_proto::{
    admin::v1::{Entity, Kind},
    condition::{self, Condition},
};

use crate::config::Config;

/// How many parents a policy may be nested under.
const MAX_NESTING: usize = 8;

/// Conditions compiled so far in one revision, by source and variables.
pub(crate) type Compiled = HashMap<(String, usize), Arc<Condition>>;

/// The variables a policy of `kind` reads: the request's for ACL (and
/// quota) policies, the record's too for produce and consume policies.
pub(crate) fn variables_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::ProducePolicyModifyHeaders
        | Kind::ProducePolicySchemaValidation
        | Kind::ProducePolicyEncrypt
        | Kind::ConsumePolicyModifyHeaders
        | Kind::ConsumePolicySchemaValidation
        | Kind::ConsumePolicyDecrypt
        | Kind::ConsumePolicySkipRecord => condition::RECORD_VARIABLES,
        _ => condition::CLUSTER_VARIABLES,
    }
}

/// Whether `entity` is a policy of virtual cluster `vc`.
pub(crate) fn belongs_to(entity: &Entity, vc: &str) -> bool {
    entity
        .spec
        .as_ref()
        .and_then(|s| s.policy())
        .is_some_and(|p| p.virtual_cluster_id == vc)
}

/// The policies of `kind` of virtual cluster `vc`, in no order.
pub(crate) fn policies_of<'a>(config: &'a Config, kind: Kind, vc: &str) -> Vec<&'a Entity> {
    config.of_kind(kind).filter(|e| belongs_to(e, vc)).collect()
}

/// The conditions `entity` runs under, its own first then its parents';
/// `None` when it or a parent is disabled.
pub(crate) fn of(
    config: &Config,
    entity: &Entity,
    compiled: &mut Compiled,
) -> Result<Option<Vec<Arc<Condition>>>, String> {
    let mut out = Vec::new();
    let mut current = entity;
    for _ in 0..=MAX_NESTING {
        let Some(fields) = current.spec.as_ref().and_then(|s| s.policy()) else {
            return Err(format!(
                "{}: parent_policy_id {} is not a policy",
                entity.id, current.id
            ));
        };
        if fields.enabled == Some(false) {
            return Ok(None);
        }
        if !fields.condition.is_empty() {
            let variables = variables_of(current.kind());
            let key = (fields.condition.to_string(), variables.len());
            let c = match compiled.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = Condition::compile(fields.condition, variables)
                        .map_err(|e| format!("{}.condition: {e}", current.id))?;
                    let c = Arc::new(c);
                    compiled.insert(key, c.clone());
                    c
                }
            };
            out.push(c);
        }
        if fields.parent_policy_id.is_empty() {
            out.reverse(); // parents first: a child's runs only where they hold
            return Ok(Some(out));
        }
        current = config.get(fields.parent_policy_id).ok_or_else(|| {
            format!(
                "{}.parent_policy_id: {} is not on this node",
                current.id, fields.parent_policy_id
            )
        })?;
    }
    Err(format!(
        "{}.parent_policy_id: nested more than {MAX_NESTING} deep (or in a cycle)",
        entity.id
    ))
}

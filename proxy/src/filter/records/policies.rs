//! A virtual cluster's produce and consume policies, compiled once per
//! revision: per phase in a fixed order of kinds (then oldest first), each with its enforcement, the
//! conditions it runs under (parents first) and what it does. Anything a
//! node cannot enforce as written (an unknown failure mode, a schema that
//! does not compile, a key that is not on the node) is an error: the
//! virtual cluster's connections are refused rather than served without
//! the policy.

use std::sync::Arc;

use sluice_proto::{
    admin::v1::{
        Entity, FailureMode, HeaderAction, Kind, PolicyEnforcement, RecordPart, SchemaType,
        entity::Spec, header_action,
    },
    condition::{self, Condition},
    record_policy,
};

use super::crypto::Key;
use crate::{config::Config, filter::conditions};

/// When a policy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// On records a client produces, before the broker has them.
    Produce,
    /// On records a broker answers a Fetch with, before the client has them.
    Consume,
}

/// One compiled record policy.
#[derive(Debug)]
pub(super) struct Policy {
    /// The policy's id.
    pub(super) id: String,
    /// Decided, counted and reported, never applied.
    pub(super) shadow: bool,
    /// Its parents' conditions and its own (all must hold).
    pub(super) conditions: Vec<Arc<Condition>>,
    /// Whether every condition reads only what is the same for a whole
    /// partition (evaluated once per partition, not per record).
    pub(super) by_partition: bool,
    /// What it does to a record it applies to.
    pub(super) action: Action,
}

/// A header change.
#[derive(Debug, Clone)]
pub(super) enum HeaderOp {
    /// Set `key` to `value` (replacing it when present).
    Set(String, String),
    /// Remove `key`.
    Remove(String),
}

/// Where a crypto policy works: whole parts, or JSON fields of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// The key and/or the value, whole.
    Parts { key: bool, value: bool },
    /// Members of the value (a JSON object), by path.
    Fields(Vec<Vec<String>>),
}

/// What a policy does.
#[derive(Debug)]
pub(super) enum Action {
    /// modify_headers.
    Headers(Vec<HeaderOp>),
    /// skip_record: records its condition matches are left out.
    Skip(Arc<Condition>),
    /// schema_validation: the value checked against a JSON Schema.
    Validate {
        schema: Box<jsonschema::Validator>,
        on_invalid: FailureMode,
    },
    /// encrypt with one key.
    Encrypt {
        key: Arc<Key>,
        target: Target,
        on_failure: FailureMode,
    },
    /// decrypt with any of these keys (rotation).
    Decrypt {
        keys: Vec<Arc<Key>>,
        target: Target,
        on_failure: FailureMode,
    },
}

/// The produce and consume policies of one virtual cluster.
#[derive(Debug, Default)]
pub(super) struct Phases {
    pub(super) produce: Vec<Policy>,
    pub(super) consume: Vec<Policy>,
}

/// The record policy kinds and their phase.
const KINDS: [(Kind, Phase); 7] = [
    (Kind::ProducePolicyModifyHeaders, Phase::Produce),
    (Kind::ProducePolicySchemaValidation, Phase::Produce),
    (Kind::ProducePolicyEncrypt, Phase::Produce),
    (Kind::ConsumePolicyModifyHeaders, Phase::Consume),
    (Kind::ConsumePolicySchemaValidation, Phase::Consume),
    (Kind::ConsumePolicyDecrypt, Phase::Consume),
    (Kind::ConsumePolicySkipRecord, Phase::Consume),
];

/// The order policies of a phase run in, by kind.
const RANK: [Kind; 7] = [
    Kind::ProducePolicyModifyHeaders,
    Kind::ProducePolicySchemaValidation,
    Kind::ProducePolicyEncrypt,
    Kind::ConsumePolicyDecrypt,
    Kind::ConsumePolicySkipRecord,
    Kind::ConsumePolicySchemaValidation,
    Kind::ConsumePolicyModifyHeaders,
];

impl Phases {
    /// The record policies of virtual cluster `vc` in `config`, or why
    /// they cannot be enforced.
    pub(super) fn compile(config: &Config, vc: &str) -> Result<Phases, String> {
        let mut entities: Vec<(&Entity, Phase)> = KINDS
            .iter()
            .flat_map(|&(kind, phase)| config.of_kind(kind).map(move |e| (e, phase)))
            .filter(|(e, _)| conditions::belongs_to(e, vc))
            .collect();
        // A fixed order of kinds per phase (Terraform creates resources in
        // parallel, so creation order is no order): on produce headers,
        // then validation (of the plaintext), then encryption; on consume
        // decryption first (the rest sees plaintext), then skip, then
        // validation, then headers. Within a kind, oldest first.
        entities.sort_by_key(|(e, _)| {
            let rank = RANK
                .iter()
                .position(|k| *k == e.kind())
                .unwrap_or(RANK.len());
            let created = e.created_at.as_ref().map(|t| (t.seconds, t.nanos));
            (rank, created, e.id.as_str())
        });
        let mut compiled = conditions::Compiled::new();
        let mut phases = Phases::default();
        for (entity, phase) in entities {
            let Some(conditions) = conditions::of(config, entity, &mut compiled)? else {
                continue; // disabled, or nested under a disabled parent
            };
            let at = |field: &str| format!("{}({}).{field}", entity.kind().slug(), entity.id);
            let Some(fields) = entity.spec.as_ref().and_then(|s| s.policy()) else {
                continue;
            };
            let shadow = match PolicyEnforcement::try_from(fields.enforcement) {
                Ok(PolicyEnforcement::Shadow) => true,
                Ok(PolicyEnforcement::Enforce | PolicyEnforcement::Unspecified) => false,
                Err(_) => return Err(format!("{}: unknown to this node", at("enforcement"))),
            };
            let action = action(config, entity, &at)?;
            let mut reads_by_partition = conditions
                .iter()
                .all(|c| c.reads_only(condition::PARTITION_VARIABLES));
            if let Action::Skip(c) = &action {
                // Its skip condition is the policy's decision, per record.
                reads_by_partition &= c.reads_only(condition::PARTITION_VARIABLES);
            }
            let policy = Policy {
                id: entity.id.clone(),
                shadow,
                conditions,
                by_partition: reads_by_partition,
                action,
            };
            match phase {
                Phase::Produce => phases.produce.push(policy),
                Phase::Consume => phases.consume.push(policy),
            }
        }
        Ok(phases)
    }
}

/// What `entity` does, compiled.
fn action(config: &Config, entity: &Entity, at: &dyn Fn(&str) -> String) -> Result<Action, String> {
    let mode =
        |value: i32, allowed: &[FailureMode], default: FailureMode| match FailureMode::try_from(
            value,
        ) {
            Ok(FailureMode::Unspecified) => Ok(default),
            Ok(m) if allowed.contains(&m) => Ok(m),
            _ => Err(format!(
                "{}: {value} is not enforced here",
                at("failure_mode")
            )),
        };
    use FailureMode::{Error, Mark, Passthrough, Reject, Skip};
    Ok(match &entity.spec {
        Some(Spec::ProducePolicyModifyHeaders(p)) => Action::Headers(headers(&p.actions, at)?),
        Some(Spec::ConsumePolicyModifyHeaders(p)) => Action::Headers(headers(&p.actions, at)?),
        Some(Spec::ConsumePolicySkipRecord(p)) => Action::Skip(Arc::new(
            Condition::compile(&p.skip_condition, condition::RECORD_VARIABLES)
                .map_err(|e| format!("{}: {e}", at("skip_condition")))?,
        )),
        Some(Spec::ProducePolicySchemaValidation(p)) => Action::Validate {
            schema: Box::new(schema(p.r#type, &p.schema, at)?),
            on_invalid: mode(p.failure_mode, &[Reject, Passthrough, Mark], Reject)?,
        },
        Some(Spec::ConsumePolicySchemaValidation(p)) => Action::Validate {
            schema: Box::new(schema(p.r#type, &p.schema, at)?),
            on_invalid: mode(p.failure_mode, &[Error, Skip, Passthrough, Mark], Error)?,
        },
        Some(Spec::ProducePolicyEncrypt(p)) => Action::Encrypt {
            key: key(config, &p.static_key_id, &at("static_key_id"))?,
            target: target(&p.part_of_record, &p.fields, at)?,
            on_failure: mode(p.failure_mode, &[Reject, Passthrough], Reject)?,
        },
        Some(Spec::ConsumePolicyDecrypt(p)) => Action::Decrypt {
            keys: p
                .key_sources
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    key(
                        config,
                        &k.static_key_id,
                        &at(&format!("key_sources[{i}].static_key_id")),
                    )
                })
                .collect::<Result<_, _>>()?,
            target: target(&p.part_of_record, &p.fields, at)?,
            on_failure: mode(p.failure_mode, &[Error, Skip, Passthrough], Error)?,
        },
        _ => return Err(format!("{}: not a record policy", at("kind"))),
    })
}

fn headers(actions: &[HeaderAction], at: &dyn Fn(&str) -> String) -> Result<Vec<HeaderOp>, String> {
    if actions.is_empty() {
        return Err(format!("{}: empty", at("actions")));
    }
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| match &a.action {
            Some(header_action::Action::Set(s)) if !s.key.is_empty() => {
                Ok(HeaderOp::Set(s.key.clone(), s.value.clone()))
            }
            Some(header_action::Action::Remove(r)) if !r.key.is_empty() => {
                Ok(HeaderOp::Remove(r.key.clone()))
            }
            _ => Err(format!(
                "{}: neither a set nor a remove with a key",
                at(&format!("actions[{i}]"))
            )),
        })
        .collect()
}

fn schema(
    kind: i32,
    text: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<jsonschema::Validator, String> {
    if !matches!(
        SchemaType::try_from(kind),
        Ok(SchemaType::Json | SchemaType::Unspecified)
    ) {
        return Err(format!("{}: only json is enforced", at("type")));
    }
    compile_schema(text).map_err(|e| format!("{}: {e}", at("schema")))
}

/// Compiles a JSON Schema document (no remote or file references).
fn compile_schema(text: &str) -> Result<jsonschema::Validator, String> {
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    jsonschema::options()
        .build(&document)
        .map_err(|e| format!("not a usable JSON Schema: {e}"))
}

fn key(config: &Config, id: &str, at: &str) -> Result<Arc<Key>, String> {
    let entity = config
        .get(id)
        .ok_or_else(|| format!("{at}: static_key {id} is not on this node"))?;
    let Some(Spec::StaticKey(k)) = &entity.spec else {
        return Err(format!("{at}: {id} is not a static_key"));
    };
    let text = k.value.as_ref().map(|s| s.value.as_str()).unwrap_or("");
    let bytes = record_policy::decode_key(text)
        .ok_or_else(|| format!("{at}: static_key {id} has no usable 32-byte value on this node"))?;
    Key::new(id, &bytes)
        .map(Arc::new)
        .map_err(|e| format!("{at}: {e}"))
}

fn target(parts: &[i32], fields: &[String], at: &dyn Fn(&str) -> String) -> Result<Target, String> {
    let (mut key, mut value) = (false, false);
    for (i, part) in parts.iter().enumerate() {
        match RecordPart::try_from(*part) {
            Ok(RecordPart::Key) => key = true,
            Ok(RecordPart::Value) => value = true,
            _ => {
                return Err(format!(
                    "{}: unknown to this node",
                    at(&format!("part_of_record[{i}]"))
                ));
            }
        }
    }
    if fields.is_empty() {
        return Ok(Target::Parts {
            key,
            value: value || !key,
        });
    }
    if key {
        return Err(format!(
            "{}: fields are in the value; the key cannot be named with them",
            at("part_of_record")
        ));
    }
    if fields.len() > record_policy::MAX_FIELDS {
        return Err(format!(
            "{}: more than {}",
            at("fields"),
            record_policy::MAX_FIELDS
        ));
    }
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            record_policy::field_path(f)
                .map_err(|e| format!("{}: {e}", at(&format!("fields[{i}]"))))
        })
        .collect::<Result<_, _>>()
        .map(Target::Fields)
}

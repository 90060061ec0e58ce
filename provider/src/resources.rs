//! Every entity resource behaves the same way: plan through the server's
//! `Validate` dry run (defaults, references and every rule, with attribute
//! paths; values not known yet are named, not guessed), apply through
//! Create/Update/Delete with the revision read at plan time (a change made
//! in between fails instead of being overwritten), read through Get.

use sluice_proto::{
    admin::v1::{
        CreateEntityRequest, DeleteEntityRequest, Entity, GetEntityRequest, UpdateEntityRequest,
        ValidateRequest, validate_request::Operation,
    },
    tfplugin6::{AttributePath, Diagnostic},
};
use tonic::Code;

use crate::{
    client::Admin,
    convert::{to_entity, to_value},
    diagnostics::{
        attribute_path, attribute_path_in, diagnostic, status_diagnostics, status_diagnostics_in,
        validate_warning, violated_attributes,
    },
    plan::{self, SecretMode},
    plugin::value::Value,
    schema::{FORCE_DESTROY, ResourceSchema, Source},
    secrets::{self, Phase, Sources},
};

/// What a plan decided.
pub struct Plan {
    /// The planned state.
    pub planned: Value,
    /// Attributes whose change replaces the resource.
    pub requires_replace: Vec<AttributePath>,
    /// Errors and warnings, with attribute paths.
    pub diagnostics: Vec<Diagnostic>,
    /// The private state to plan with.
    pub private: Private,
}

/// The provider's private state of a resource: the entity's revision as
/// last read or written, sent back as `expected_revision`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Private {
    /// The entity's revision (0: unknown, no check).
    pub revision: i64,
    /// Planned: the id of the entity this create replaces (Terraform plans
    /// a replacement's create with a null prior state and this private
    /// state, so the dry run can judge it as if the old one were gone).
    pub replacing: Option<String>,
}

impl Private {
    /// Reads private state bytes (anything unreadable: no revision).
    pub fn decode(bytes: &[u8]) -> Private {
        let json = serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_default();
        Private {
            revision: json["revision"].as_i64().unwrap_or_default(),
            replacing: json["replacing"].as_str().map(str::to_string),
        }
    }

    /// Private state bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut json = serde_json::json!({ "revision": self.revision });
        if let Some(id) = &self.replacing {
            json["replacing"] = serde_json::Value::String(id.clone());
        }
        json.to_string().into_bytes()
    }
}

/// Whether a non-secret attribute that replaces the resource is set to
/// something other than its prior value (or to a value not known yet).
fn replacing(schema: &ResourceSchema, prior: &Value, config: &Value) -> bool {
    !prior.is_null()
        && schema.attrs.iter().any(|a| {
            a.replaces
                && !a.source.is_secret_value()
                && !config.get(&a.name).is_null()
                && config.get(&a.name) != prior.get(&a.name)
        })
}

/// The server's dry run of `desired` as a create or an update.
async fn dry_run(
    admin: &mut Admin,
    schema: &ResourceSchema,
    desired: &Value,
    unknown: &[String],
    create: bool,
    replaces: Option<&str>,
) -> Result<(Value, Vec<Diagnostic>), tonic::Status> {
    let mut entity = to_entity(schema, desired)
        .map_err(|e| tonic::Status::invalid_argument(format!("{e:#}")))?;
    let operation = if create {
        entity.id.clear();
        Operation::Create(CreateEntityRequest {
            entity: Some(entity),
        })
    } else {
        Operation::Update(UpdateEntityRequest {
            entity: Some(entity),
            expected_revision: 0,
        })
    };
    let reply = admin
        .validate(ValidateRequest {
            operation: Some(operation),
            unknown_fields: unknown.to_vec(),
            replaces_id: match create {
                true => replaces.unwrap_or_default().to_string(),
                false => String::new(),
            },
        })
        .await?
        .into_inner();
    let warnings = reply
        .warnings
        .iter()
        .map(|w| validate_warning(schema, w))
        .collect();
    let view = match reply.entity.map(|e| to_value(schema, &e)) {
        Some(Ok(v)) => v,
        _ => Value::Null,
    };
    Ok((view, warnings))
}

/// Whether an update's refusal names only attributes that replace the
/// resource (a changed immutable secret, say): the replacement's create
/// decides instead.
fn refused_for_immutability(schema: &ResourceSchema, status: &tonic::Status) -> bool {
    let named = violated_attributes(status);
    !named.is_empty()
        && named
            .iter()
            .all(|n| schema.attrs.iter().any(|a| a.replaces && a.name == *n))
}

/// Plans a create or update of `config` over `prior`; `private` is the
/// prior private state (a replacement's create finds there what it
/// replaces).
pub async fn plan(
    admin: Option<&mut Admin>,
    schema: &ResourceSchema,
    prior: &Value,
    config: &Value,
    private: Private,
    mode: SecretMode,
) -> Plan {
    let refused = |status: &tonic::Status| {
        status_diagnostics_in(
            &schema.ty,
            &format!("{} would be refused", schema.type_name),
            status,
        )
    };
    let mut out = Plan {
        planned: Value::Null,
        requires_replace: Vec::new(),
        diagnostics: Vec::new(),
        private: Private {
            revision: private.revision,
            replacing: None,
        },
    };
    let mut empty = Vec::new();
    plan::empty_secrets(&schema.attrs, config, "", &mut empty);
    if !empty.is_empty() {
        out.diagnostics = empty
            .iter()
            .map(|path| {
                diagnostic(
                    &format!("{}: invalid {path}", schema.type_name),
                    "a secret must not be empty (the server would keep the stored one)",
                    Some(attribute_path_in(&schema.ty, path)),
                )
            })
            .collect();
        return out;
    }
    let mut unknown = Vec::new();
    let mut desired = plan::known_part(&schema.attrs, config, "", &mut unknown);
    if let (Value::Map(m), Some(id)) = (&mut desired, prior.get("id").as_str()) {
        m.insert("id".into(), Value::String(id.to_string()));
    }
    // What this plan's create replaces: the prior entity (first plan of a
    // replacement), or what the first plan noted (Terraform's second plan,
    // with a null prior).
    let replaces = match prior.get("id").as_str() {
        Some(id) => Some(id.to_string()),
        None => private.replacing.clone(),
    };
    let mut dry = None;
    let mut refused_update = None;
    if let Some(admin) = admin {
        let create = prior.is_null() || replacing(schema, prior, config);
        let replaces = replaces.as_deref();
        let mut answer = dry_run(admin, schema, &desired, &unknown, create, replaces).await;
        // A secret that replaces the resource (a static key's value) is
        // refused by an update: the replacement's create decides.
        if let Err(status) = &answer
            && !create
            && status.code() == Code::InvalidArgument
            && refused_for_immutability(schema, status)
        {
            refused_update = Some(status.clone());
            answer = dry_run(admin, schema, &desired, &unknown, true, replaces).await;
        }
        match answer {
            Ok((view, warnings)) => {
                out.diagnostics.extend(warnings);
                dry = Some(view);
            }
            Err(status) => {
                out.diagnostics.extend(refused(&status));
                return out;
            }
        }
    }
    let defaults_known = !plan::unknown_beyond_secrets(&schema.attrs, &unknown);
    let planned = plan::plan(
        &schema.attrs,
        config,
        prior,
        dry.as_ref(),
        defaults_known,
        mode,
    );
    if let Some(status) = refused_update
        && planned.requires_replace.is_empty()
    {
        out.diagnostics.extend(refused(&status));
        return out;
    }
    if !planned.mismatches.is_empty() {
        out.diagnostics
            .extend(planned.mismatches.iter().map(|(path, configured, stored)| {
                diagnostic(
                    &format!("{}: invalid {path}", schema.type_name),
                    &format!(
                        "the server would store {} for the configured {}: configure {} or leave \
                         the attribute out",
                        shown(stored),
                        shown(configured),
                        shown(stored)
                    ),
                    Some(attribute_path_in(&schema.ty, path)),
                )
            }));
        return out;
    }
    out.requires_replace = planned
        .requires_replace
        .iter()
        .map(|name| attribute_path(name))
        .collect();
    if !out.requires_replace.is_empty() {
        out.private.replacing = prior.get("id").as_str().map(str::to_string);
    }
    out.planned = planned.planned;
    out
}

/// A value as HCL would spell it, for messages.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Unknown => "(known after apply)".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(shown).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k} = {}", shown(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A refusal because the entity changed since it was read (plan time).
fn changed_since_plan(schema: &ResourceSchema, status: &tonic::Status) -> Vec<Diagnostic> {
    vec![diagnostic(
        &format!("{} changed since it was planned", schema.type_name),
        &format!(
            "{} Someone changed it outside this run; run `terraform plan` again to see the \
             change before applying.",
            status.message()
        ),
        None,
    )]
}

/// The state after the server's answer `stored`: what the server returns,
/// secret values per `mode` (from `config` before Terraform 1.11), and a
/// generated private key kept from `prior` (it is returned only once).
fn state_of(
    schema: &ResourceSchema,
    stored: &Entity,
    prior: &Value,
    config: &Value,
    mode: SecretMode,
    phase: Phase,
) -> Result<Value, Vec<Diagnostic>> {
    let mut state = to_value(schema, stored)
        .map_err(|e| vec![diagnostic("unreadable reply", &format!("{e:#}"), None)])?;
    if mode == SecretMode::InState {
        let sources = Sources {
            values: config,
            prior,
        };
        secrets::keep(&schema.attrs, &mut state, sources, phase);
    }
    if let Value::Map(m) = &mut state {
        for a in schema
            .attrs
            .iter()
            .filter(|a| a.source == Source::ProviderOnly)
        {
            let held = match phase {
                Phase::Apply => config.get(&a.name),
                Phase::Read => prior.get(&a.name),
            };
            m.insert(a.name.clone(), held.clone());
        }
    }
    if let Value::Map(m) = &mut state
        && matches!(m.get("private_key"), Some(Value::String(k)) if k.is_empty())
        && let Some(kept @ Value::String(_)) = prior.get("private_key").into()
    {
        m.insert("private_key".into(), kept.clone());
    }
    Ok(state)
}

/// Applies a plan: create, update or (planned null) delete. Returns the
/// new state and private state.
pub async fn apply(
    admin: &mut Admin,
    schema: &ResourceSchema,
    prior: &Value,
    planned: &Value,
    config: &Value,
    private: Private,
    mode: SecretMode,
) -> Result<(Value, Private), Vec<Diagnostic>> {
    let failed = |what: &str, status: tonic::Status| {
        if status.code() == Code::Aborted {
            return changed_since_plan(schema, &status);
        }
        status_diagnostics(&format!("{what} {}", schema.type_name), &status)
    };
    if planned.is_null() {
        let id = prior.get("id").as_str().unwrap_or_default().to_string();
        return match admin
            .delete_entity(DeleteEntityRequest {
                kind: schema.kind as i32,
                id,
                expected_revision: private.revision,
                force: prior.get(FORCE_DESTROY) == &Value::Bool(true),
            })
            .await
        {
            Ok(_) => Ok((Value::Null, Private::default())),
            Err(s) if s.code() == Code::NotFound => Ok((Value::Null, Private::default())),
            Err(s) => Err(failed("deleting", s)),
        };
    }
    let sent = plan::with_secrets(&schema.attrs, planned, config);
    let entity = to_entity(schema, &sent)
        .map_err(|e| vec![diagnostic("invalid plan", &format!("{e:#}"), None)])?;
    let stored = if prior.is_null() {
        admin
            .create_entity(CreateEntityRequest {
                entity: Some(entity),
            })
            .await
            .map_err(|s| failed("creating", s))?
    } else {
        admin
            .update_entity(UpdateEntityRequest {
                entity: Some(entity),
                expected_revision: private.revision,
            })
            .await
            .map_err(|s| failed("updating", s))?
    }
    .into_inner();
    let state = state_of(schema, &stored, prior, config, mode, Phase::Apply)?;
    Ok((
        state,
        Private {
            revision: stored.revision,
            replacing: None,
        },
    ))
}

/// Reads the current state (null when the entity is gone) and the
/// revision it is at.
pub async fn read(
    admin: &mut Admin,
    schema: &ResourceSchema,
    id: &str,
    prior: &Value,
    mode: SecretMode,
) -> Result<(Value, Private), Vec<Diagnostic>> {
    match admin
        .get_entity(GetEntityRequest {
            kind: schema.kind as i32,
            id: id.to_string(),
        })
        .await
    {
        Ok(reply) => {
            let stored = reply.into_inner();
            let state = state_of(schema, &stored, prior, prior, mode, Phase::Read)?;
            Ok((
                state,
                Private {
                    revision: stored.revision,
                    replacing: None,
                },
            ))
        }
        Err(s) if s.code() == Code::NotFound => Ok((Value::Null, Private::default())),
        Err(s) => Err(status_diagnostics(
            &format!("reading {}", schema.type_name),
            &s,
        )),
    }
}

//! Every entity resource behaves the same way: plan through the server's
//! `Validate` dry run (defaults, references and every rule, with attribute
//! paths), apply through Create/Update/Delete, read through Get.

use sluice_proto::{
    admin::v1::{
        CreateEntityRequest, DeleteEntityRequest, GetEntityRequest, Kind, UpdateEntityRequest,
        ValidateRequest, validate_request::Operation,
    },
    tfplugin6::{AttributePath, Diagnostic},
};
use tonic::Code;

use crate::{
    client::Admin,
    convert::{to_entity, to_value},
    diagnostics::{attribute_path, diagnostic, not_enforced, status_diagnostics},
    plugin::value::Value,
    schema::{Attr, ResourceSchema},
    secrets::{self, Phase, Sources},
};

/// Sets every output attribute (top level) to unknown.
fn outputs_unknown(attrs: &[Attr], value: &mut Value, keep: &[&str]) {
    if let Value::Map(m) = value {
        for a in attrs
            .iter()
            .filter(|a| a.is_output() && !keep.contains(&a.name.as_str()))
        {
            m.insert(a.name.clone(), Value::Unknown);
        }
    }
}

/// Takes the server's value for every attribute the config leaves null
/// (defaults), recursively.
fn fill_defaults(attrs: &[Attr], planned: &mut Value, server: &Value, config: &Value) {
    let Value::Map(m) = planned else { return };
    for a in attrs {
        let c = config.get(&a.name);
        let s = server.get(&a.name);
        if a.is_output() || a.required {
            continue;
        }
        if c.is_null() {
            if a.computed && !a.source.is_secret_value() {
                m.insert(a.name.clone(), s.clone());
            }
        } else if let (Some((_, inner)), Some(child)) = (&a.nested, m.get_mut(&a.name)) {
            match (child, s, c) {
                (Value::List(items), Value::List(servers), Value::List(configs)) => {
                    for ((item, sv), cv) in items.iter_mut().zip(servers).zip(configs) {
                        fill_defaults(inner, item, sv, cv);
                    }
                }
                (child @ Value::Map(_), sv, cv) => fill_defaults(inner, child, sv, cv),
                _ => {}
            }
        }
    }
}

/// Marks every attribute the config leaves null, and the server may fill,
/// as unknown (the server's defaults are not known until the references
/// in the config are).
fn unset_unknown(attrs: &[Attr], planned: &mut Value, config: &Value) {
    let Value::Map(m) = planned else { return };
    for a in attrs {
        if a.is_output() || a.required || a.source.is_secret_value() {
            continue;
        }
        let c = config.get(&a.name);
        if c.is_null() {
            if a.computed {
                m.insert(a.name.clone(), Value::Unknown);
            }
        } else if let (Some((_, inner)), Some(child)) = (&a.nested, m.get_mut(&a.name)) {
            match (child, c) {
                (Value::List(items), Value::List(configs)) => {
                    for (item, cv) in items.iter_mut().zip(configs) {
                        unset_unknown(inner, item, cv);
                    }
                }
                (child @ Value::Map(_), cv) => unset_unknown(inner, child, cv),
                _ => {}
            }
        }
    }
}

/// Whether two values differ in anything but output attributes.
fn differs(attrs: &[Attr], a: &Value, b: &Value) -> bool {
    attrs
        .iter()
        .filter(|x| !x.is_output())
        .any(|x| a.get(&x.name) != b.get(&x.name))
}

/// What a plan decided.
pub struct Plan {
    /// The planned state.
    pub planned: Value,
    /// Attributes whose change replaces the resource.
    pub requires_replace: Vec<AttributePath>,
    /// Errors, with attribute paths.
    pub diagnostics: Vec<Diagnostic>,
}

/// Plans a create or update.
pub async fn plan(
    admin: Option<&mut Admin>,
    schema: &ResourceSchema,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> Plan {
    let mut planned = proposed.clone();
    let mut out = Plan {
        planned: Value::Null,
        requires_replace: Vec::new(),
        diagnostics: Vec::new(),
    };
    let creating = prior.is_null();
    if creating && !config.is_wholly_known() {
        unset_unknown(&schema.attrs, &mut planned, config);
    }
    // The entity as the server's dry run would store it: defaults, and the
    // fingerprints of the configured secrets (keyed: only it can compute
    // them).
    let mut server_view = None;
    if let (Some(admin), true) = (admin, config.is_wholly_known()) {
        let entity = match to_entity(schema, &planned) {
            Ok(e) => e,
            Err(e) => {
                out.diagnostics
                    .push(diagnostic("invalid configuration", &format!("{e:#}"), None));
                return out;
            }
        };
        let operation = if creating {
            Operation::Create(CreateEntityRequest {
                entity: Some(entity),
            })
        } else {
            Operation::Update(UpdateEntityRequest {
                entity: Some(entity),
                expected_revision: 0,
            })
        };
        match admin
            .validate(ValidateRequest {
                operation: Some(operation),
            })
            .await
        {
            Ok(reply) => {
                let reply = reply.into_inner();
                out.diagnostics
                    .extend(reply.warnings.iter().map(|w| not_enforced(schema, w)));
                if let Some(Ok(server)) = reply.entity.map(|e| to_value(schema, &e)) {
                    fill_defaults(&schema.attrs, &mut planned, &server, config);
                    server_view = Some(server);
                }
            }
            // A changed gateway or parent replaces the resource: the update
            // dry run refuses it, the replacement's create will check it.
            Err(status)
                if !creating
                    && status.code() == Code::InvalidArgument
                    && replaces(schema, prior, &planned) => {}
            Err(status) => {
                out.diagnostics.extend(status_diagnostics(
                    &format!("{} would be refused", schema.type_name),
                    &status,
                ));
                return out;
            }
        }
    }
    let sources = Sources {
        values: config,
        prior,
        server: server_view.as_ref(),
    };
    secrets::keep(&schema.attrs, &mut planned, sources, Phase::Plan);
    if creating {
        outputs_unknown(&schema.attrs, &mut planned, &[]);
        // Fingerprints of secrets set in config are known now.
        secrets::keep(&schema.attrs, &mut planned, sources, Phase::Plan);
    } else if !differs(&schema.attrs, &planned, prior)
        && !secrets::fingerprints_changed(&schema.attrs, &planned, prior)
    {
        planned = prior.clone();
    } else {
        outputs_unknown(&schema.attrs, &mut planned, &["id", "created_at"]);
        secrets::keep(&schema.attrs, &mut planned, sources, Phase::Plan);
        for name in schema.requires_replace() {
            if planned.get(name) != prior.get(name) {
                out.requires_replace.push(attribute_path(name));
            }
        }
    }
    out.planned = planned;
    out
}

fn replaces(schema: &ResourceSchema, prior: &Value, planned: &Value) -> bool {
    schema
        .requires_replace()
        .any(|n| prior.get(n) != planned.get(n))
}

/// Applies a plan: create, update or (planned null) delete.
pub async fn apply(
    admin: &mut Admin,
    schema: &ResourceSchema,
    prior: &Value,
    planned: &Value,
) -> Result<Value, Vec<Diagnostic>> {
    let failed = |what: &str, status: tonic::Status| {
        status_diagnostics(&format!("{what} {}", schema.type_name), &status)
    };
    if planned.is_null() {
        let id = prior.get("id").as_str().unwrap_or_default().to_string();
        return match admin
            .delete_entity(DeleteEntityRequest {
                kind: schema.kind as i32,
                id,
                expected_revision: 0,
            })
            .await
        {
            Ok(_) => Ok(Value::Null),
            Err(s) if s.code() == Code::NotFound => Ok(Value::Null),
            Err(s) => Err(failed("deleting", s)),
        };
    }
    let entity = to_entity(schema, planned)
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
                expected_revision: 0,
            })
            .await
            .map_err(|s| failed("updating", s))?
    }
    .into_inner();
    let mut state = to_value(schema, &stored)
        .map_err(|e| vec![diagnostic("unreadable reply", &format!("{e:#}"), None)])?;
    let sources = Sources {
        values: planned,
        prior: &Value::Null,
        server: None,
    };
    secrets::keep(&schema.attrs, &mut state, sources, Phase::Apply);
    Ok(state)
}

/// Reads the current state; null when the entity is gone.
pub async fn read(
    admin: &mut Admin,
    schema: &ResourceSchema,
    kind: Kind,
    id: &str,
    prior: &Value,
) -> Result<Value, Vec<Diagnostic>> {
    match admin
        .get_entity(GetEntityRequest {
            kind: kind as i32,
            id: id.to_string(),
        })
        .await
    {
        Ok(reply) => {
            let mut state = to_value(schema, &reply.into_inner())
                .map_err(|e| vec![diagnostic("unreadable reply", &format!("{e:#}"), None)])?;
            let sources = Sources {
                values: prior,
                prior,
                server: None,
            };
            secrets::keep(&schema.attrs, &mut state, sources, Phase::Read);
            Ok(state)
        }
        Err(s) if s.code() == Code::NotFound => Ok(Value::Null),
        Err(s) => Err(status_diagnostics(
            &format!("reading {}", schema.type_name),
            &s,
        )),
    }
}

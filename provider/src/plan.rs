//! The planned state of a resource, framework-style: built from the
//! configuration (never from Terraform's proposed state, so removing an
//! optional attribute plans its default), with the server's dry run of the
//! change for defaults and secret fingerprints, and the prior state only
//! for what the server alone sets.
//!
//! - A configured value is planned as configured; an unknown one unknown.
//! - An attribute the configuration leaves null takes the server's
//!   default from the dry run, or is unknown when the dry run could not
//!   know it (values still unknown in the configuration).
//! - A secret is write-only: null in plan and state (or, for Terraform
//!   before 1.11, the configured value). Its `*_fingerprint` is the dry
//!   run's fingerprint of the configured value, unknown while the value
//!   is; a change of fingerprint is what plans an update (or replacement).
//! - Output attributes keep their prior value on update (an update changes
//!   none of them but `updated_at`), and are unknown on create.

use std::collections::BTreeMap;

use crate::{
    plugin::value::Value,
    schema::{Attr, Nesting, Source},
};

/// Where secret values live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    /// Terraform ≥ 1.11: write-only, only in the configuration.
    WriteOnly,
    /// Older Terraform: in plan and state too, marked sensitive.
    InState,
}

/// A plan's values and what replaces the resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The planned state.
    pub planned: Value,
    /// Top-level attribute names whose change replaces the resource.
    pub requires_replace: Vec<String>,
    /// Configured values the server's dry run stores differently (a value
    /// it replaces with its default, say): `(path, configured, stored)`.
    /// Applying them would fail as an inconsistent result.
    pub mismatches: Vec<(String, Value, Value)>,
}

#[derive(Clone, Copy)]
struct Cx {
    creating: bool,
    defaults_known: bool,
    mode: SecretMode,
}

/// Plans `config` against `prior` (null when creating), with `dry` the
/// server's dry run of the change (None when it did not run) and
/// `defaults_known` whether its defaults hold (no unknown configuration
/// value could change them).
pub fn plan(
    attrs: &[Attr],
    config: &Value,
    prior: &Value,
    dry: Option<&Value>,
    defaults_known: bool,
    mode: SecretMode,
) -> Planned {
    let cx = Cx {
        creating: prior.is_null(),
        defaults_known: defaults_known && dry.is_some(),
        mode,
    };
    let mut mismatches = Vec::new();
    let dry = dry.unwrap_or(&Value::Null);
    let mut planned = object(attrs, config, prior, dry, cx, "", &mut mismatches);
    if cx.creating || planned == *prior {
        return Planned {
            planned,
            requires_replace: Vec::new(),
            mismatches,
        };
    }
    if let Value::Map(m) = &mut planned
        && m.contains_key("updated_at")
    {
        m.insert("updated_at".into(), Value::Unknown);
    }
    let requires_replace = attrs
        .iter()
        .filter(|a| a.replaces)
        .filter_map(|a| {
            let compared = match &a.source {
                Source::SecretValue(name) | Source::SecretMapValue(name) => {
                    format!("{name}_fingerprint")
                }
                _ => a.name.clone(),
            };
            (planned.get(&compared) != prior.get(&compared)).then_some(compared)
        })
        .collect();
    Planned {
        planned,
        requires_replace,
        mismatches,
    }
}

fn at(v: &Value, i: usize) -> &Value {
    match v {
        Value::List(items) => items.get(i).unwrap_or(&Value::Null),
        _ => &Value::Null,
    }
}

fn object(
    attrs: &[Attr],
    config: &Value,
    prior: &Value,
    dry: &Value,
    cx: Cx,
    path: &str,
    mismatches: &mut Vec<(String, Value, Value)>,
) -> Value {
    let mut out = BTreeMap::new();
    for a in attrs {
        let (c, p, d) = (config.get(&a.name), prior.get(&a.name), dry.get(&a.name));
        let here = match path {
            "" => a.name.clone(),
            _ => format!("{path}.{}", a.name),
        };
        let value = match &a.source {
            Source::SecretValue(_) | Source::SecretMapValue(_) => match cx.mode {
                SecretMode::WriteOnly => Value::Null,
                SecretMode::InState => c.clone(),
            },
            Source::SecretFingerprint(secret) => fingerprint(config.get(secret), d),
            Source::SecretMapFingerprint(secret) => map_fingerprints(config.get(secret), d),
            _ if a.is_output() => match cx.creating {
                true => Value::Unknown,
                false => p.clone(),
            },
            _ => match c {
                Value::Unknown => Value::Unknown,
                Value::Null if a.computed && cx.defaults_known => d.clone(),
                // What replaces the resource cannot change by default: an
                // unknown elsewhere must not plan a replacement.
                Value::Null if a.computed && a.replaces && !cx.creating => p.clone(),
                Value::Null if a.computed => Value::Unknown,
                Value::Null => Value::Null,
                known => match (&a.nested, known) {
                    (Some((Nesting::List, inner)), Value::List(items)) => {
                        let stored = match d {
                            Value::List(stored) => stored.len(),
                            _ => 0,
                        };
                        if cx.defaults_known && stored != items.len() {
                            mismatches.push((here.clone(), known.clone(), d.clone()));
                        }
                        Value::List(
                            items
                                .iter()
                                .enumerate()
                                .map(|(i, item)| match item {
                                    Value::Map(_) => object(
                                        inner,
                                        item,
                                        at(p, i),
                                        at(d, i),
                                        cx,
                                        &format!("{here}[{i}]"),
                                        mismatches,
                                    ),
                                    other => other.clone(),
                                })
                                .collect(),
                        )
                    }
                    (Some((Nesting::Single, inner)), Value::Map(_)) => {
                        object(inner, known, p, d, cx, &here, mismatches)
                    }
                    _ => {
                        if cx.defaults_known && a.source != Source::ProviderOnly && d != known {
                            mismatches.push((here.clone(), known.clone(), d.clone()));
                        }
                        known.clone()
                    }
                },
            },
        };
        out.insert(a.name.clone(), value);
    }
    Value::Map(out)
}

/// The planned fingerprint of a secret configured as `secret`, the dry run
/// having printed `dry`.
fn fingerprint(secret: &Value, dry: &Value) -> Value {
    match (secret, dry) {
        // Not configured: what the server keeps (a stored secret is kept
        // when a change leaves it out), as its dry run shows.
        (Value::Null, Value::String(print)) => Value::String(print.clone()),
        (Value::Null, _) => Value::Null,
        (Value::String(_), Value::String(print)) => Value::String(print.clone()),
        _ => Value::Unknown,
    }
}

/// The planned fingerprints of a map of secrets, key by key; an empty map
/// has none (null, as the server reports it).
fn map_fingerprints(secrets: &Value, dry: &Value) -> Value {
    match secrets {
        Value::Map(entries) if !entries.is_empty() => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), fingerprint(v, dry.get(k))))
                .collect(),
        ),
        Value::Unknown => Value::Unknown,
        _ => match dry {
            Value::Map(kept) if !kept.is_empty() => dry.clone(),
            _ => Value::Null,
        },
    }
}

/// Paths of secrets configured as `""` (the server reads an empty secret
/// as "keep the stored one", so it would be silently ignored).
pub fn empty_secrets(attrs: &[Attr], config: &Value, prefix: &str, out: &mut Vec<String>) {
    for a in attrs {
        let path = match prefix {
            "" => a.name.clone(),
            _ => format!("{prefix}.{}", a.name),
        };
        match (&a.source, &a.nested, config.get(&a.name)) {
            (Source::SecretValue(_), _, Value::String(v)) if v.is_empty() => out.push(path),
            (Source::SecretMapValue(_), _, Value::Map(entries)) => out.extend(
                entries
                    .iter()
                    .filter(|(_, v)| v.as_str() == Some(""))
                    .map(|(k, _)| format!("{path}[{k}]")),
            ),
            (_, Some((_, inner)), Value::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    empty_secrets(inner, item, &format!("{path}[{i}]"), out);
                }
            }
            (_, Some((_, inner)), object @ Value::Map(_)) => {
                empty_secrets(inner, object, &path, out)
            }
            _ => {}
        }
    }
}

/// `value` with every unknown replaced by null (what the dry run can be
/// sent), and the field paths of the unknowns (`ports`, `labels[team]`,
/// `authentication[0].sasl_plain.principals[1].password`) added to
/// `unknown`. A scalar list with any unknown item is unknown as a whole.
pub fn known_part(attrs: &[Attr], value: &Value, prefix: &str, unknown: &mut Vec<String>) -> Value {
    let Value::Map(fields) = value else {
        return value.clone();
    };
    let mut out = fields.clone();
    for a in attrs {
        let path = match prefix {
            "" => a.name.clone(),
            _ => format!("{prefix}.{}", a.name),
        };
        let Some(v) = fields.get(&a.name) else {
            continue;
        };
        let known = match (v, &a.nested) {
            (Value::Unknown, _) => {
                unknown.push(path);
                Value::Null
            }
            (Value::List(items), Some((_, inner))) => Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::Unknown => {
                            unknown.push(format!("{path}[{i}]"));
                            Value::Null
                        }
                        _ => known_part(inner, item, &format!("{path}[{i}]"), unknown),
                    })
                    .collect(),
            ),
            (Value::List(_), None) if !v.is_wholly_known() => {
                unknown.push(path);
                Value::Null
            }
            (Value::Map(_), Some((_, inner))) => known_part(inner, v, &path, unknown),
            (Value::Map(entries), None) => Value::Map(
                entries
                    .iter()
                    .filter(|(k, e)| {
                        let is_unknown = matches!(e, Value::Unknown);
                        if is_unknown {
                            unknown.push(format!("{path}[{k}]"));
                        }
                        !is_unknown
                    })
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(a.name.clone(), known);
    }
    Value::Map(out)
}

/// Whether any unknown in `unknown` lies outside secret values (an unknown
/// secret changes no default; any other unknown may).
pub fn unknown_beyond_secrets(attrs: &[Attr], unknown: &[String]) -> bool {
    unknown.iter().any(|path| !is_secret_path(attrs, path))
}

fn is_secret_path(attrs: &[Attr], path: &str) -> bool {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let name = head.split('[').next().unwrap_or(head);
    let Some(a) = attrs.iter().find(|a| a.name == name) else {
        return false;
    };
    match (&a.source, &a.nested, rest) {
        (Source::SecretValue(_) | Source::SecretMapValue(_), _, None) => true,
        (_, Some((_, inner)), Some(rest)) => is_secret_path(inner, rest),
        _ => false,
    }
}

/// `planned` with the configured secret values put back (what is sent to
/// the server on apply: write-only values are only in the configuration).
pub fn with_secrets(attrs: &[Attr], planned: &Value, config: &Value) -> Value {
    let Value::Map(fields) = planned else {
        return planned.clone();
    };
    let mut out = fields.clone();
    for a in attrs {
        let c = config.get(&a.name);
        match (&a.source, &a.nested, fields.get(&a.name)) {
            (Source::SecretValue(_) | Source::SecretMapValue(_), _, _) => {
                out.insert(a.name.clone(), c.clone());
            }
            (_, Some((_, inner)), Some(Value::List(items))) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| with_secrets(inner, item, at(c, i)))
                    .collect();
                out.insert(a.name.clone(), Value::List(items));
            }
            (_, Some((_, inner)), Some(object @ Value::Map(_))) => {
                out.insert(a.name.clone(), with_secrets(inner, object, c));
            }
            _ => {}
        }
    }
    Value::Map(out)
}

#[cfg(test)]
mod tests;

//! UpgradeResourceState: stored state, JSON or Terraform 0.11's flatmap
//! (`a.0.b`, `list.#`, `map.%`), read by the current schema and brought to
//! [`SCHEMA_VERSION`].
//!
//! Version 0 is every state written before resource schemas had a
//! version: attributes the schema no longer has (the gateway's
//! `revision`, `nodes_total`, `virtual_clusters_total`) are dropped and
//! secret values, write-only since version 1, are set to null. A value of
//! the wrong type becomes null (the next refresh reads it from the server)
//! rather than failing the whole state.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Bound,
};

use sluice_proto::tfplugin6::{Diagnostic, RawState};

use crate::{
    diagnostics::diagnostic,
    plugin::value::{self, Type, Value},
    schema::{Attr, ResourceSchema},
};

/// The version of every resource schema (`Schema.version`).
pub const SCHEMA_VERSION: i64 = 1;

/// What flatmap state holds for a value not known when it was written.
const FLATMAP_UNKNOWN: &str = "74D93920-ED26-11E3-AC10-0800200C9A66";

/// Stored state of `version`, as a value of `schema`'s current version.
/// `keep_secret_values` keeps the secrets of older state (a Terraform
/// without write-only attributes holds them in state).
pub fn upgrade(
    schema: &ResourceSchema,
    version: i64,
    raw: Option<&RawState>,
    keep_secret_values: bool,
) -> Result<Value, Vec<Diagnostic>> {
    if version > SCHEMA_VERSION {
        return Err(vec![diagnostic(
            &format!("{} state from a newer provider", schema.type_name),
            &format!(
                "the state has schema version {version}; this terraform-provider-sluice knows \
                 versions up to {SCHEMA_VERSION}. Use the provider version that wrote it, or newer."
            ),
            None,
        )]);
    }
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    let mut state = if !raw.json.is_empty() {
        let json: serde_json::Value = serde_json::from_slice(&raw.json).map_err(|e| {
            vec![diagnostic(
                &format!("unreadable {} state", schema.type_name),
                &format!("stored state is not JSON: {e}"),
                None,
            )]
        })?;
        if version == SCHEMA_VERSION {
            value::from_json(&json, &schema.ty).map_err(|e| {
                vec![diagnostic(
                    &format!("unreadable {} state", schema.type_name),
                    &format!("{e:#}"),
                    None,
                )]
            })?
        } else {
            from_json_lenient(&json, &schema.ty)
        }
    } else if !raw.flatmap.is_empty() {
        from_flatmap(&raw.flatmap, &schema.ty)
    } else {
        Value::Null
    };
    // Whatever wrote it (a provider before version 1, or this one under a
    // Terraform before 1.11), a Terraform with write-only attributes must
    // never get a secret value back from state.
    if !keep_secret_values {
        null_secrets(&schema.attrs, &mut state);
    }
    Ok(state)
}

/// Sets every secret value (write-only) attribute to null, at any depth.
pub fn null_secrets(attrs: &[Attr], value: &mut Value) {
    let Value::Map(object) = value else { return };
    for attr in attrs {
        let Some(v) = object.get_mut(&attr.name) else {
            continue;
        };
        if attr.write_only || attr.source.is_secret_value() {
            *v = Value::Null;
        } else if let Some((_, inner)) = &attr.nested {
            match v {
                Value::List(items) => items.iter_mut().for_each(|i| null_secrets(inner, i)),
                object => null_secrets(inner, object),
            }
        }
    }
}

/// A scalar written as text (flatmap, or an older type) as `ty`; null when
/// it is not one.
fn scalar(text: &str, ty: &Type) -> Value {
    match ty {
        _ if text == FLATMAP_UNKNOWN => Value::Null,
        Type::String => Value::String(text.to_string()),
        Type::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map_or(Value::Null, Value::Number),
        Type::Bool => match text {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// JSON as a value of `ty`, forgivingly: attributes `ty` does not have are
/// dropped, a scalar of another type is converted when it can be and null
/// otherwise, and a single object stored as a list of one is unwrapped.
pub fn from_json_lenient(json: &serde_json::Value, ty: &Type) -> Value {
    use serde_json::Value as J;
    match (json, ty) {
        (J::Null, _) => Value::Null,
        (J::String(s), _) => scalar(s, ty),
        (J::Number(n), Type::String) => Value::String(n.to_string()),
        (J::Number(n), _) => scalar(&n.to_string(), ty),
        (J::Bool(b), Type::String) => Value::String(b.to_string()),
        (J::Bool(b), Type::Bool) => Value::Bool(*b),
        (J::Array(items), Type::List(t)) => {
            Value::List(items.iter().map(|i| from_json_lenient(i, t)).collect())
        }
        (J::Array(items), Type::Object(_)) if items.len() == 1 => from_json_lenient(&items[0], ty),
        (J::Object(m), Type::Map(t)) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), from_json_lenient(v, t)))
                .collect(),
        ),
        (J::Object(m), Type::Object(attrs)) => Value::Map(
            attrs
                .iter()
                .map(|(k, t)| {
                    let v = m.get(k).map_or(Value::Null, |v| from_json_lenient(v, t));
                    (k.clone(), v)
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Flatmap state (Terraform 0.11: `name`, `list.#` and `list.0`, `map.%`
/// and `map.key`, a single block as `block.#` = 1 and `block.0.field`) as
/// a value of `ty`.
pub fn from_flatmap(flat: &HashMap<String, String>, ty: &Type) -> Value {
    let sorted: BTreeMap<&str, &str> = flat.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match ty {
        Type::Object(attrs) => object(&sorted, "", attrs),
        _ => Value::Null,
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The keys below `prefix.` (their rest after it).
fn below<'a>(flat: &BTreeMap<&'a str, &'a str>, prefix: &str) -> Vec<(&'a str, &'a str)> {
    let start = format!("{prefix}.");
    flat.range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(&start))
        .map(|(k, v)| {
            let k: &'a str = k;
            (&k[start.len()..], *v)
        })
        .collect()
}

fn object(flat: &BTreeMap<&str, &str>, prefix: &str, attrs: &BTreeMap<String, Type>) -> Value {
    Value::Map(
        attrs
            .iter()
            .map(|(name, t)| (name.clone(), flat_value(flat, &join(prefix, name), t)))
            .collect(),
    )
}

fn flat_value(flat: &BTreeMap<&str, &str>, at: &str, ty: &Type) -> Value {
    match ty {
        Type::String | Type::Number | Type::Bool => {
            flat.get(at).map_or(Value::Null, |text| scalar(text, ty))
        }
        Type::List(item) => {
            let entries = below(flat, at);
            if entries.is_empty() && !flat.contains_key(at) {
                return Value::Null;
            }
            // `#` says how many; never trust it past the items there are
            // (flatmap cannot hold a null item, so none is lost).
            let highest = entries
                .iter()
                .filter_map(|(k, _)| k.split('.').next()?.parse::<usize>().ok())
                .max()
                .map_or(0, |i| i + 1);
            let count = match flat.get(format!("{at}.#").as_str()) {
                Some(n) if *n == FLATMAP_UNKNOWN => return Value::Null,
                Some(n) => n.parse::<usize>().unwrap_or(highest).min(highest),
                None => highest,
            };
            Value::List(
                (0..count)
                    .map(|i| flat_value(flat, &format!("{at}.{i}"), item))
                    .collect(),
            )
        }
        Type::Map(item) => {
            let entries = below(flat, at);
            if entries.is_empty() {
                return Value::Null;
            }
            if flat.get(format!("{at}.%").as_str()) == Some(&FLATMAP_UNKNOWN) {
                return Value::Null;
            }
            let mut out = BTreeMap::new();
            for (key, text) in entries.into_iter().filter(|(k, _)| *k != "%") {
                match &**item {
                    // A key may hold dots: everything after the map's name.
                    Type::String | Type::Number | Type::Bool => {
                        out.insert(key.to_string(), scalar(text, item));
                    }
                    nested => {
                        let key = key.split('.').next().unwrap_or(key);
                        if !out.contains_key(key) {
                            let v = flat_value(flat, &format!("{at}.{key}"), nested);
                            out.insert(key.to_string(), v);
                        }
                    }
                }
            }
            Value::Map(out)
        }
        Type::Object(attrs) => {
            // A single block was a list of one.
            if flat.contains_key(format!("{at}.#").as_str()) {
                return match flat_value(flat, at, &Type::List(Box::new(ty.clone()))) {
                    Value::List(mut items) if !items.is_empty() => items.swap_remove(0),
                    _ => Value::Null,
                };
            }
            if below(flat, at).is_empty() {
                return Value::Null;
            }
            object(flat, at, attrs)
        }
    }
}

#[cfg(test)]
#[path = "upgrade_tests.rs"]
mod tests;

//! Diagnostics for Terraform: errors and warnings at attribute paths, and
//! the admin API's field violations turned into them.

use sluice_proto::{
    admin::v1::ValidateWarning,
    tfplugin6::{AttributePath, Diagnostic, attribute_path, diagnostic::Severity},
};

use std::collections::BTreeMap;

use sluice_proto::tfplugin6::DynamicValue;

use crate::{
    plugin::value::{self, Type, Value},
    schema::{Attr, ResourceSchema},
};

/// An error for Terraform, optionally at an attribute.
pub fn diagnostic(summary: &str, detail: &str, path: Option<AttributePath>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: path,
    }
}

/// A warning for Terraform from the server's `Validate` (configuration
/// accepted but not enforced on the data plane, or accepted at plan time
/// but refused at apply unless something else exists first), at its
/// attribute.
pub fn validate_warning(schema: &ResourceSchema, warning: &ValidateWarning) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning as i32,
        summary: if warning.summary.is_empty() {
            format!(
                "{}: {} is not enforced by the data plane",
                schema.type_name, warning.field
            )
        } else {
            format!("{}: {}", schema.type_name, warning.summary)
        },
        detail: warning.message.clone(),
        attribute: Some(attribute_path_in(&schema.ty, &warning.field)),
    }
}

/// `authentication.sasl_plain.username` / `ports[1]` / `labels[k]` as an
/// attribute path (the server's field-violation spelling).
///
/// Brackets are read before dots, so a map key may hold dots
/// (`labels[app.kubernetes.io/name]`) and `[`; a key ends at the first
/// `]` that ends the path or is followed by `.` or `[`, so a key holding
/// `]` followed by one of those cannot be told apart (the server never
/// writes such keys in paths). A bracketed integer is a list index, other
/// keys are map keys; [`attribute_path_in`] decides by the type instead.
pub fn attribute_path(field: &str) -> AttributePath {
    attribute_path_typed(field, None)
}

/// [`attribute_path`] reading each bracket by the type it indexes: a
/// map's key stays a string even when it looks like a number.
pub fn attribute_path_in(ty: &Type, field: &str) -> AttributePath {
    attribute_path_typed(field, Some(ty))
}

/// Where the bracketed key starting `s` ends (the index of its `]`).
fn key_end(s: &str) -> Option<usize> {
    s.match_indices(']')
        .map(|(i, _)| i)
        .find(|&i| matches!(s[i + 1..].chars().next(), None | Some('.' | '[')))
}

fn attribute_path_typed(field: &str, mut ty: Option<&Type>) -> AttributePath {
    use attribute_path::step::Selector;
    let mut steps = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let (key, tail) = match key_end(after) {
                Some(i) => (&after[..i], &after[i + 1..]),
                None => (after, ""),
            };
            let (selector, inner) = match ty {
                Some(Type::Map(t)) => (Selector::ElementKeyString(key.into()), Some(&**t)),
                Some(Type::List(t)) => (
                    key.parse().map_or_else(
                        |_| Selector::ElementKeyString(key.into()),
                        Selector::ElementKeyInt,
                    ),
                    Some(&**t),
                ),
                _ => (
                    key.parse().map_or_else(
                        |_| Selector::ElementKeyString(key.into()),
                        Selector::ElementKeyInt,
                    ),
                    None,
                ),
            };
            steps.push(selector);
            ty = inner;
            rest = tail.strip_prefix('.').unwrap_or(tail);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let name = &rest[..end];
            if !name.is_empty() {
                steps.push(Selector::AttributeName(name.to_string()));
                ty = match ty {
                    Some(Type::Object(attrs)) => attrs.get(name),
                    _ => None,
                };
            }
            rest = &rest[end..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
        }
    }
    AttributePath {
        steps: steps
            .into_iter()
            .map(|s| attribute_path::Step { selector: Some(s) })
            .collect(),
    }
}

/// Diagnostics for a failed admin call: one per field violation, pointing
/// at the attribute.
pub fn status_diagnostics(what: &str, status: &tonic::Status) -> Vec<Diagnostic> {
    violation_diagnostics(None, what, status)
}

/// [`status_diagnostics`] for a resource of type `ty`: a bracket is read
/// by what it indexes (`labels[8080]` is a map key, not a list index).
pub fn status_diagnostics_in(ty: &Type, what: &str, status: &tonic::Status) -> Vec<Diagnostic> {
    violation_diagnostics(Some(ty), what, status)
}

/// The top-level attribute names the server's field violations name
/// (none when the refusal is not about fields).
pub fn violated_attributes(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations)
        .unwrap_or_default()
        .iter()
        .map(|v| {
            v.field
                .split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn violation_diagnostics(ty: Option<&Type>, what: &str, status: &tonic::Status) -> Vec<Diagnostic> {
    use tonic_types::StatusExt;
    let violations = status
        .get_details_bad_request()
        .map(|b| b.field_violations)
        .unwrap_or_default();
    if violations.is_empty() {
        return vec![diagnostic(what, status.message(), None)];
    }
    violations
        .iter()
        .map(|v| {
            let path = match ty {
                Some(ty) => attribute_path_in(ty, &v.field),
                None => attribute_path(&v.field),
            };
            diagnostic(
                &format!("{what}: invalid {}", v.field),
                &v.description,
                Some(path),
            )
        })
        .collect()
}

/// A value Terraform sent, decoded against `ty`; a value that does not
/// match (another schema, corrupt bytes) is an error diagnostic naming
/// `what` ("configuration", "prior state"...), not a gRPC error (which
/// Terraform shows as a provider crash). Absent or empty is null.
pub fn decode_or_diagnostic(
    value: Option<&DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Vec<Diagnostic>> {
    let unreadable = |e: String| {
        vec![diagnostic(
            &format!("unreadable {what}"),
            &format!(
                "{e}. The value Terraform sent does not match this provider's schema: \
                 was it written by another version of terraform-provider-sluice? \
                 Run `terraform init -upgrade` and try again."
            ),
            None,
        )]
    };
    let Some(v) = value else {
        return Ok(Value::Null);
    };
    if !v.msgpack.is_empty() {
        return value::from_msgpack(&v.msgpack, ty).map_err(|e| unreadable(format!("{e:#}")));
    }
    if !v.json.is_empty() {
        let json: serde_json::Value =
            serde_json::from_slice(&v.json).map_err(|e| unreadable(e.to_string()))?;
        return value::from_json(&json, ty).map_err(|e| unreadable(format!("{e:#}")));
    }
    Ok(Value::Null)
}

/// The diagnostic for a type name this provider does not have.
pub fn unknown_type(what: &str, type_name: &str) -> Vec<Diagnostic> {
    vec![diagnostic(
        &format!("unknown {what} {type_name}"),
        &format!(
            "terraform-provider-sluice has no {what} named {type_name}: check the name, \
             or run `terraform init -upgrade` if it comes with a newer provider"
        ),
        None,
    )]
}

/// Every value in a resource configuration that cannot become an entity
/// field (an enum name that does not exist, a number where a string
/// goes...), one error each at its attribute. `to_entity` stops at the
/// first error, so each set leaf is converted on its own (everything else
/// null) and the errors are gathered.
pub fn config_errors(schema: &ResourceSchema, config: &Value) -> Vec<Diagnostic> {
    let mut found: Vec<(String, String)> = Vec::new();
    let note = |found: &mut Vec<(String, String)>, e: anyhow::Error| {
        let error = (e.to_string(), e.root_cause().to_string());
        if !found.contains(&error) {
            found.push(error);
        }
    };
    for leaf in leaves(&schema.attrs, config) {
        if let Err(e) = crate::convert::to_entity(schema, &leaf) {
            note(&mut found, e);
        }
    }
    // What only the whole configuration shows, if anything.
    if found.is_empty()
        && let Err(e) = crate::convert::to_entity(schema, config)
    {
        note(&mut found, e);
    }
    found
        .into_iter()
        .map(|(path, cause)| {
            let at =
                (!path.is_empty() && path != cause).then(|| attribute_path_in(&schema.ty, &path));
            diagnostic(&format!("invalid {path}"), &cause, at)
        })
        .collect()
}

/// Objects with one leaf of `value` set each (every other attribute null,
/// list items before it null so that it keeps its index).
fn leaves(attrs: &[Attr], value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for attr in attrs {
        let v = value.get(&attr.name);
        if matches!(v, Value::Null | Value::Unknown) {
            continue;
        }
        let one = |inner: Value| Value::Map(BTreeMap::from([(attr.name.clone(), inner)]));
        match (&attr.nested, v) {
            (Some((_, inner)), Value::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    for leaf in leaves(inner, item) {
                        let mut list = vec![Value::Null; i];
                        list.push(leaf);
                        out.push(one(Value::List(list)));
                    }
                }
            }
            (Some((_, inner)), object @ Value::Map(_)) => {
                out.extend(leaves(inner, object).into_iter().map(one));
            }
            _ => out.push(one(v.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_become_attribute_paths() {
        use attribute_path::step::Selector as S;
        let steps = |p: &str| {
            attribute_path(p)
                .steps
                .into_iter()
                .filter_map(|s| s.selector)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            steps("authentication.sasl_plain.username"),
            [
                S::AttributeName("authentication".into()),
                S::AttributeName("sasl_plain".into()),
                S::AttributeName("username".into())
            ]
        );
        assert_eq!(
            steps("ports[1]"),
            [S::AttributeName("ports".into()), S::ElementKeyInt(1)]
        );
        assert_eq!(
            steps("authentication[0].sasl_plain.principals[2].password"),
            [
                S::AttributeName("authentication".into()),
                S::ElementKeyInt(0),
                S::AttributeName("sasl_plain".into()),
                S::AttributeName("principals".into()),
                S::ElementKeyInt(2),
                S::AttributeName("password".into())
            ]
        );
        assert_eq!(
            steps("labels[team]"),
            [
                S::AttributeName("labels".into()),
                S::ElementKeyString("team".into())
            ]
        );
    }

    fn names(path: &AttributePath) -> Vec<String> {
        use attribute_path::step::Selector as S;
        path.steps
            .iter()
            .filter_map(|s| match s.selector.as_ref()? {
                S::AttributeName(n) => Some(n.clone()),
                S::ElementKeyString(k) => Some(format!("[{k:?}]")),
                S::ElementKeyInt(i) => Some(format!("[{i}]")),
            })
            .collect()
    }

    #[test]
    fn map_keys_may_hold_dots_and_brackets() {
        let p = |f: &str| names(&attribute_path(f));
        assert_eq!(p("labels[team.x]"), ["labels", "[\"team.x\"]"]);
        assert_eq!(
            p("labels[app.kubernetes.io/name].x"),
            ["labels", "[\"app.kubernetes.io/name\"]", "x"]
        );
        // `[` inside a key, and `]` not followed by `.`, `[` or the end.
        assert_eq!(p("labels[a[b]"), ["labels", "[\"a[b\"]"]);
        assert_eq!(p("labels[a]b]"), ["labels", "[\"a]b\"]"]);
        assert_eq!(p("rules[1][k.2]"), ["rules", "[1]", "[\"k.2\"]"]);
        // Never a panic on odd input.
        for odd in ["", ".", "[", "]", "a..b", "a[", "[]", "a[]b", "ä[ö.ü]"] {
            attribute_path(odd);
        }
        // By the type, a map key that looks like a number stays a key.
        let ty = Type::Object(BTreeMap::from([
            ("labels".into(), Type::Map(Box::new(Type::String))),
            ("ports".into(), Type::List(Box::new(Type::String))),
        ]));
        assert_eq!(
            names(&attribute_path_in(&ty, "labels[7]")),
            ["labels", "[\"7\"]"]
        );
        assert_eq!(names(&attribute_path_in(&ty, "ports[7]")), ["ports", "[7]"]);
    }

    #[test]
    fn a_value_that_does_not_match_the_schema_is_a_diagnostic() {
        let ty = Type::Object(BTreeMap::from([("name".into(), Type::String)]));
        let bad = DynamicValue {
            msgpack: vec![0x81, 0xa1, b'z', 0x01],
            json: Vec::new(),
        };
        let d = decode_or_diagnostic(Some(&bad), &ty, "prior state").unwrap_err();
        assert_eq!(d[0].summary, "unreadable prior state");
        assert!(d[0].detail.contains("unsupported attribute"), "{d:?}");
        let json = DynamicValue {
            msgpack: Vec::new(),
            json: b"{oops".to_vec(),
        };
        assert!(decode_or_diagnostic(Some(&json), &ty, "state").is_err());
        assert_eq!(decode_or_diagnostic(None, &ty, "state"), Ok(Value::Null));
    }

    #[test]
    fn every_invalid_value_is_reported_at_its_attribute() {
        use sluice_proto::admin::v1::Kind;
        let schema = crate::schema::resource(Kind::VirtualCluster);
        let s = |t: &str| Value::String(t.into());
        let object = |pairs: Vec<(&str, Value)>| {
            Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
        };
        let config = object(vec![
            ("gateway_id", s("gw")),
            ("name", s("team")),
            ("labels", object(vec![("a.b", s("c"))])),
            ("acl_mode", s("nope")),
            (
                "namespace",
                object(vec![("mode", s("sideways")), ("prefix", s("p"))]),
            ),
            (
                "authentication",
                Value::List(vec![
                    object(vec![("anonymous", object(vec![]))]),
                    object(vec![(
                        "sasl_plain",
                        object(vec![("mediation", s("maybe"))]),
                    )]),
                ]),
            ),
        ]);
        let d = config_errors(&schema, &config);
        let mut at: Vec<Vec<String>> = d
            .iter()
            .map(|d| names(d.attribute.as_ref().unwrap()))
            .collect();
        at.sort();
        assert_eq!(
            at,
            [
                vec!["acl_mode".to_string()],
                vec![
                    "authentication".into(),
                    "[1]".into(),
                    "sasl_plain".into(),
                    "mediation".into()
                ],
                vec!["namespace".into(), "mode".into()],
            ],
            "{d:?}"
        );
        assert!(
            d.iter().all(|d| d.detail.contains("is not one of")),
            "{d:?}"
        );
        let fine = object(vec![("gateway_id", s("gw")), ("name", s("team"))]);
        assert!(config_errors(&schema, &fine).is_empty());
    }
}

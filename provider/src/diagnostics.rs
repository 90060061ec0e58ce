//! Diagnostics for Terraform: errors and warnings at attribute paths, and
//! the admin API's field violations turned into them.

use sluice_proto::{
    admin::v1::ValidateWarning,
    tfplugin6::{AttributePath, Diagnostic, attribute_path, diagnostic::Severity},
};

use crate::schema::ResourceSchema;

/// An error for Terraform, optionally at an attribute.
pub fn diagnostic(summary: &str, detail: &str, path: Option<AttributePath>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: path,
    }
}

/// A warning for Terraform about configuration that is accepted but not
/// enforced on the data plane (the server's `Validate` warnings), at its
/// attribute.
pub fn not_enforced(schema: &ResourceSchema, warning: &ValidateWarning) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning as i32,
        summary: format!(
            "{}: {} is not enforced by the data plane",
            schema.type_name, warning.field
        ),
        detail: warning.message.clone(),
        attribute: Some(attribute_path(&warning.field)),
    }
}

/// `authentication.sasl_plain.username` / `ports[1]` / `labels[k]` as an
/// attribute path.
pub fn attribute_path(field: &str) -> AttributePath {
    use attribute_path::step::Selector;
    let mut steps = Vec::new();
    for part in field.split('.') {
        let (name, rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            steps.push(Selector::AttributeName(name.to_string()));
        }
        for index in rest
            .split('[')
            .map(|s| s.trim_end_matches(']'))
            .filter(|s| !s.is_empty())
        {
            steps.push(match index.parse::<i64>() {
                Ok(i) => Selector::ElementKeyInt(i),
                Err(_) => Selector::ElementKeyString(index.to_string()),
            });
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
            diagnostic(
                &format!("{what}: invalid {}", v.field),
                &v.description,
                Some(attribute_path(&v.field)),
            )
        })
        .collect()
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
}

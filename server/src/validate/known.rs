//! Which fields of a write are known. `Validate` may name fields whose
//! values are not known yet (`ValidateRequest.unknown_fields`: Terraform
//! plans a new stack before the ids it refers to exist); the entity holds
//! placeholders there, and every verdict that depends on one is skipped.
//!
//! Paths are spelled like field violations: relative to the kind's spec
//! for spec fields, dots between fields, `[i]` for a list item and `[key]`
//! for a map entry (`authentication[0].sasl_plain.principals[1].password`,
//! `labels[team]`, `gateway_id`).

use std::{collections::BTreeSet, ops::Bound};

use prost_reflect::{Kind as FieldKind, MessageDescriptor};
use sluice_proto::{
    admin::v1::{Entity, ValidateWarning},
    facts,
};

use crate::{
    error::{ApiError, Violations},
    secrets::{self, Naming},
};

/// At most this many `unknown_fields` in one request.
pub const MAX_UNKNOWN_FIELDS: usize = 1_000;
/// At most this many bytes in one `unknown_fields` path.
pub const MAX_UNKNOWN_FIELD_BYTES: usize = 256;

/// The fields of a write whose values are not known; empty for an
/// ordinary write, where everything is. Sorted, so a path's unknown
/// ancestors and descendants are a few lookups away (a verdict is judged
/// in time independent of how many paths are unknown).
#[derive(Debug, Clone, Default)]
pub struct Known {
    unknown: BTreeSet<String>,
}

/// The ends of the fields `path` lies in: `a.b[0].c` gives `a`, `a.b`,
/// `a.b[0]` and itself (and, as a plain prefix test would, the text before
/// any `.` or `[` inside a key: no unknown path ends there).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices(['.', '['])
        .map(|(i, _)| &path[..i])
        .chain(std::iter::once(path))
}

impl Known {
    /// Every field is known (an ordinary write).
    pub fn everything() -> Self {
        Self::default()
    }

    /// The unknown fields a request names, each checked to be a field path
    /// of the entity's kind; names every path that is not one. At most
    /// [`MAX_UNKNOWN_FIELDS`] paths of at most [`MAX_UNKNOWN_FIELD_BYTES`].
    pub fn parse(entity: &Entity, paths: &[String]) -> Result<Self, ApiError> {
        if paths.len() > MAX_UNKNOWN_FIELDS {
            return Err(ApiError::invalid(
                "validate request",
                "unknown_fields",
                &format!(
                    "names {} paths; at most {MAX_UNKNOWN_FIELDS} are allowed",
                    paths.len()
                ),
            ));
        }
        let spec = entity
            .spec
            .as_ref()
            .and_then(|s| facts::spec_message(s.kind()));
        let mut v = Violations::default();
        for (i, path) in paths.iter().enumerate() {
            if path.len() > MAX_UNKNOWN_FIELD_BYTES {
                v.add(
                    format!("unknown_fields[{i}]"),
                    format!(
                        "is {} bytes long; a field path has at most {MAX_UNKNOWN_FIELD_BYTES}",
                        path.len()
                    ),
                );
            } else if let Some(spec) = &spec
                && let Err(why) = resolve(spec, path)
            {
                v.add(
                    format!("unknown_fields[{i}]"),
                    format!(
                        "{path:?} is not a field path of {}: {why}",
                        entity.kind().slug()
                    ),
                );
            }
        }
        // Without a spec the write itself is refused for that.
        v.into_result("validate request")?;
        Ok(Self {
            unknown: paths.iter().cloned().collect(),
        })
    }

    /// Whether every field is known.
    pub fn is_everything(&self) -> bool {
        self.unknown.is_empty()
    }

    /// Whether `path` is known: neither unknown itself nor inside an
    /// unknown field.
    pub fn is_known(&self, path: &str) -> bool {
        self.is_everything() || !ancestors(path).any(|a| self.unknown.contains(a))
    }

    /// Whether everything at `path` is known: also nothing below it is
    /// unknown (a list or message with an unknown part is not).
    pub fn is_whole(&self, path: &str) -> bool {
        self.is_known(path) && !self.unknown_below(path)
    }

    /// Whether an unknown path lies below `path` (`path.x`, `path[0]`):
    /// the first unknown path at or after `path.` (and `path[`) says.
    fn unknown_below(&self, path: &str) -> bool {
        ['.', '['].into_iter().any(|sep| {
            let below = format!("{path}{sep}");
            self.unknown
                .range::<str, _>((Bound::Included(below.as_str()), Bound::Unbounded))
                .next()
                .is_some_and(|u| u.starts_with(&below))
        })
    }

    /// Marks `path` known again (an update's immutable field taken from
    /// the stored entity).
    pub fn learn(&mut self, path: &str) {
        self.unknown.remove(path);
    }

    /// Drops the violations that cannot be judged: of a field that is not
    /// wholly known, or compared with one that is not.
    pub fn keep_judged(&self, v: &mut Violations) {
        if self.is_everything() {
            return;
        }
        v.retain(|field, compared| {
            self.is_whole(field) && compared.iter().all(|c| self.is_whole(c))
        });
    }

    /// Drops the warnings about a field that is not known.
    pub fn keep_warnings(&self, warnings: Vec<ValidateWarning>) -> Vec<ValidateWarning> {
        warnings
            .into_iter()
            .filter(|w| self.is_known(&w.field))
            .collect()
    }

    /// Removes the fingerprint (and any value) of every secret that is not
    /// known: its placeholder has no fingerprint worth comparing with.
    pub fn forget_secrets(&self, entity: &mut Entity) -> anyhow::Result<()> {
        if self.is_everything() {
            return Ok(());
        }
        secrets::for_each_secret(entity, Naming::Position, |path, secret| {
            if !self.is_known(path) {
                secret.value.clear();
                secret.fingerprint.clear();
            }
        })
    }
}

/// Follows `path` through the fields of the entity (the kind's `spec` and
/// the common fields); says what is wrong when it leads nowhere.
fn resolve(spec: &MessageDescriptor, path: &str) -> Result<(), String> {
    let segments = split(path)?;
    let entity = facts::entity_message();
    let mut message = Some(spec.clone());
    for (n, (name, keys)) in segments.iter().enumerate() {
        let Some(current) = message.take() else {
            return Err(format!("{:?} holds no fields", segments[n - 1].0));
        };
        let field = current.get_field_by_name(name).or_else(|| {
            // The common fields (`gateway_id`, `labels`) sit beside the spec.
            (n == 0)
                .then(|| entity.get_field_by_name(name))
                .flatten()
                .filter(|f| f.containing_oneof().is_none())
        });
        let Some(field) = field else {
            return Err(format!("no field {name:?} there"));
        };
        let holds = |kind: FieldKind| match kind {
            FieldKind::Message(m) => Some(m),
            _ => None,
        };
        message = match keys.as_slice() {
            [] if field.is_list() || field.is_map() => {
                // A whole list or map: nothing may follow.
                (n + 1 == segments.len())
                    .then_some(None)
                    .ok_or_else(|| format!("{name:?} is a list or map: name an item with [..]"))?
            }
            [] => holds(field.kind()),
            [index] if field.is_list() => {
                index
                    .parse::<usize>()
                    .map_err(|_| format!("{name:?} is a list: its items are [0], [1], ..."))?;
                holds(field.kind())
            }
            [_key] if field.is_map() => match field.kind() {
                FieldKind::Message(entry) => holds(entry.map_entry_value_field().kind()),
                _ => return Err(format!("{name:?} is not a map")),
            },
            _ => return Err(format!("{name:?} takes no [..] here")),
        };
    }
    Ok(())
}

/// Splits a path into field names and their `[..]` keys; a key may hold
/// any character but `]` (label keys hold dots and slashes).
fn split(path: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut segments = Vec::new();
    let mut rest = path;
    loop {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        let named = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !named {
            return Err("expected a field name like `dns_label`".into());
        }
        rest = &rest[end..];
        let mut keys = Vec::new();
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or("a `[` is not closed")?;
            keys.push(inner[..close].to_string());
            rest = &inner[close + 1..];
        }
        segments.push((name.to_string(), keys));
        match rest.strip_prefix('.') {
            Some(next) => rest = next,
            None if rest.is_empty() => return Ok(segments),
            None => return Err("expected `.` after `]`".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{VirtualCluster, entity::Spec};

    use super::*;

    fn vc() -> Entity {
        Entity {
            spec: Some(Spec::VirtualCluster(VirtualCluster::default())),
            ..Default::default()
        }
    }

    fn parse(paths: &[&str]) -> Result<Known, String> {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        Known::parse(&vc(), &paths).map_err(|e| e.to_string())
    }

    #[test]
    fn real_paths_parse_and_others_are_named() {
        parse(&[
            "gateway_id",
            "dns_label",
            "labels[app.kubernetes.io/name]",
            "authentication[0].sasl_plain.principals[1].password",
            "authentication",
            "destination_id",
            "namespace.additional.topics.glob",
        ])
        .unwrap();
        for bad in [
            "nope",
            "dns_label.x",
            "authentication.sasl_plain",
            "authentication[x]",
            "dns_label[0]",
            "labels[a",
            "",
            "Gateway_id",
            "virtual_cluster",
            "gateway",
        ] {
            let err = parse(&["dns_label", bad]).unwrap_err();
            assert!(
                err.contains("unknown_fields[1]") && err.contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn known_whole_and_judged() {
        let known = parse(&["authentication[0].sasl_plain.principals[1].password"]).unwrap();
        assert!(known.is_known("authentication[0].sasl_plain"));
        assert!(!known.is_whole("authentication[0].sasl_plain"));
        assert!(!known.is_known("authentication[0].sasl_plain.principals[1].password"));
        assert!(known.is_whole("authentication[0].sasl_plain.principals[0].password"));
        assert!(known.is_whole("authentication[0].sasl_plain.principals[10]"));
        let mut v = Violations::default();
        v.add("dns_label", "bad");
        v.add("authentication[0].sasl_plain.principals", "bad");
        v.add_comparing("name", ["authentication"], "bad");
        known.keep_judged(&mut v);
        assert!(v.has("dns_label"));
        assert!(!v.has("authentication[0].sasl_plain.principals"));
        assert!(!v.has("name"));
    }

    #[test]
    fn unknown_below_and_at_keep_to_field_boundaries() {
        let known = parse(&["labels[app.kubernetes.io/name]", "dns_label"]).unwrap();
        assert!(!known.is_known("labels[app.kubernetes.io/name]"));
        assert!(known.is_known("labels[app]"));
        assert!(known.is_known("labels"));
        assert!(!known.is_whole("labels"));
        assert!(known.is_whole("labels[app.kubernetes.io/name2]"));
        assert!(!known.is_known("dns_label"));
        assert!(known.is_whole("dns"));
        assert!(known.is_whole("name"));
        assert!(Known::everything().is_whole("anything"));
    }

    #[test]
    fn too_many_or_too_long_paths_are_refused() {
        let many: Vec<String> = (0..=MAX_UNKNOWN_FIELDS)
            .map(|i| format!("labels[k{i}]"))
            .collect();
        let err = Known::parse(&vc(), &many).unwrap_err().to_string();
        assert!(
            err.contains("unknown_fields") && err.contains("1001"),
            "{err}"
        );
        Known::parse(&vc(), &many[..MAX_UNKNOWN_FIELDS]).unwrap();
        let long = format!("labels[{}]", "k".repeat(MAX_UNKNOWN_FIELD_BYTES));
        let err = Known::parse(&vc(), &["dns_label".into(), long])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown_fields[1]") && err.contains("256"),
            "{err}"
        );
    }
}

//! Secret values in state, for Terraform before 1.11 (no write-only
//! attributes: the configured value is kept in state, marked sensitive).
//! With write-only attributes (`plan::SecretMode::WriteOnly`) none of this
//! runs: values are null in state and only fingerprints are kept.
//!
//! The server never returns a secret, only its fingerprint (`hmac-sha256:`,
//! keyed with a key only the server holds). Hence:
//!
//! - apply: the value from the configuration, the fingerprint from the
//!   reply;
//! - read: the prior value stays while the server's fingerprint is the one
//!   the state holds; a secret changed behind Terraform's back becomes
//!   null, so the next plan sets it again.
//!
//! A fingerprint of older servers (`sha256:` of the value, unkeyed) is
//! still understood, in the state and from a server: it is checked
//! against the value itself.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{
    plugin::value::Value,
    schema::{Attr, Source},
};

/// How servers before keyed fingerprints printed a secret.
const LEGACY_PREFIX: &str = "sha256:";

fn legacy_fingerprint(secret: &str) -> String {
    format!(
        "{LEGACY_PREFIX}{}",
        hex::encode(Sha256::digest(secret.as_bytes()))
    )
}

fn is_legacy(print: &str) -> bool {
    print.starts_with(LEGACY_PREFIX)
}

/// Which step of a resource's life the values are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `new` is the state from the server's reply; `values` the plan.
    Apply,
    /// `new` is the state from the server; `values` the prior state.
    Read,
}

/// Where secrets come from, at one level of nesting.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The configuration (apply) or the prior state (read).
    pub values: &'a Value,
    /// The prior state (null for apply).
    pub prior: &'a Value,
}

impl<'a> Sources<'a> {
    fn child(&self, name: &str) -> Sources<'a> {
        Sources {
            values: self.values.get(name),
            prior: self.prior.get(name),
        }
    }

    fn item(&self, i: usize) -> Sources<'a> {
        fn at(v: &Value, i: usize) -> &Value {
            match v {
                Value::List(items) => items.get(i).unwrap_or(&Value::Null),
                _ => &Value::Null,
            }
        }
        Sources {
            values: at(self.values, i),
            prior: at(self.prior, i),
        }
    }
}

/// Whether `value` is still the secret a server reports as `server`, the
/// state having last seen it as `prior`.
fn still_same(value: &str, server: &str, prior: &Value) -> bool {
    if prior.as_str() == Some(server) {
        return true;
    }
    if is_legacy(server) {
        // An older server: its fingerprint is the value's digest.
        return legacy_fingerprint(value) == server;
    }
    // State written against an older server meets a keyed fingerprint:
    // the value is kept while the state agrees with itself, and the next
    // plan compares the server's fingerprint of the configured value.
    prior
        .as_str()
        .is_some_and(|p| is_legacy(p) && legacy_fingerprint(value) == p)
}

/// One `Secret` attribute and its fingerprint.
fn single(
    object: &mut BTreeMap<String, Value>,
    name: &str,
    print_attr: &str,
    from: Sources<'_>,
    phase: Phase,
) {
    let value = from.values.get(name).clone();
    match phase {
        Phase::Apply => {
            object.insert(name.to_string(), value);
        }
        Phase::Read => {
            let kept = match (&value, object.get(print_attr)) {
                (Value::String(s), Some(Value::String(server)))
                    if still_same(s, server, from.prior.get(print_attr)) =>
                {
                    value
                }
                _ => Value::Null,
            };
            object.insert(name.to_string(), kept);
        }
    }
}

/// A `map<string, Secret>` attribute and its fingerprints, entry by entry;
/// the fingerprints' map has the shape of the values' (null, empty or not).
fn map(
    object: &mut BTreeMap<String, Value>,
    name: &str,
    print_attr: &str,
    from: Sources<'_>,
    phase: Phase,
) {
    let value = from.values.get(name).clone();
    let entries = |v: &Value| match v {
        Value::Map(m) => m.clone(),
        _ => BTreeMap::new(),
    };
    match phase {
        // The fingerprints stay as the server reports them (null for no
        // entries), as the plan has them.
        Phase::Apply => {
            object.insert(name.to_string(), value);
        }
        Phase::Read => {
            let server = entries(object.get(print_attr).unwrap_or(&Value::Null));
            let prior_prints = entries(from.prior.get(print_attr));
            let kept = match &value {
                Value::Map(values) if server.is_empty() && values.is_empty() => value.clone(),
                Value::Map(values) if !server.is_empty() => Value::Map(
                    server
                        .iter()
                        .filter_map(|(k, print)| {
                            let v = values.get(k)?.as_str()?;
                            let p = print.as_str()?;
                            still_same(v, p, prior_prints.get(k).unwrap_or(&Value::Null))
                                .then(|| (k.clone(), Value::String(v.to_string())))
                        })
                        .collect(),
                ),
                _ => Value::Null,
            };
            object.insert(name.to_string(), kept);
        }
    }
}

/// Sets the secret values of `new` for `phase`, recursively (state kept
/// for Terraform before 1.11).
pub fn keep(attrs: &[Attr], new: &mut Value, from: Sources<'_>, phase: Phase) {
    let Value::Map(object) = new else { return };
    for attr in attrs {
        match (&attr.source, &attr.nested) {
            (Source::SecretValue(name), _) => {
                single(object, name, &format!("{name}_fingerprint"), from, phase)
            }
            (Source::SecretMapValue(name), _) => {
                map(object, name, &format!("{name}_fingerprint"), from, phase)
            }
            (_, Some((_, inner))) => {
                let from = from.child(&attr.name);
                match object.get_mut(&attr.name) {
                    Some(Value::List(items)) => {
                        for (i, item) in items.iter_mut().enumerate() {
                            keep(inner, item, from.item(i), phase);
                        }
                    }
                    Some(child @ Value::Map(_)) => keep(inner, child, from, phase),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    /// The static key schema: `value` and `value_fingerprint` at the top.
    fn attrs() -> Vec<Attr> {
        schema::resource(sluice_proto::admin::v1::Kind::StaticKey).attrs
    }

    fn read(server_print: &str, prior: &Value) -> Value {
        let mut state = object(&[
            ("value", Value::Null),
            ("value_fingerprint", s(server_print)),
        ]);
        let from = Sources {
            values: prior,
            prior,
        };
        keep(&attrs(), &mut state, from, Phase::Read);
        state.get("value").clone()
    }

    #[test]
    fn reads_keep_a_secret_while_the_server_reports_the_same_fingerprint() {
        let prior = object(&[
            ("value", s("k1")),
            ("value_fingerprint", s("hmac-sha256:aa")),
        ]);
        assert_eq!(read("hmac-sha256:aa", &prior), s("k1"));
        // Changed behind Terraform's back: null, so the next plan sets it.
        assert_eq!(read("hmac-sha256:bb", &prior), Value::Null);
        assert_eq!(read("", &prior), Value::Null);
    }

    #[test]
    fn state_from_before_keyed_fingerprints_reads_without_drift() {
        // Applied against an older server, read from an upgraded one.
        let prior = object(&[
            ("value", s("k1")),
            ("value_fingerprint", s(&legacy_fingerprint("k1"))),
        ]);
        assert_eq!(read("hmac-sha256:aa", &prior), s("k1"));
        // A state that disagrees with itself is not trusted.
        let odd = object(&[
            ("value", s("k1")),
            ("value_fingerprint", s(&legacy_fingerprint("k2"))),
        ]);
        assert_eq!(read("hmac-sha256:aa", &odd), Value::Null);
        // An older server's digest is checked against the value.
        let fresh = object(&[("value", s("k1")), ("value_fingerprint", Value::Null)]);
        assert_eq!(read(&legacy_fingerprint("k1"), &fresh), s("k1"));
        assert_eq!(read(&legacy_fingerprint("k2"), &fresh), Value::Null);
    }

    /// The event hook's `config` attributes (`headers` is a map of secrets).
    fn hook_config() -> Vec<Attr> {
        let hook = schema::resource(sluice_proto::admin::v1::Kind::EventHook);
        let config = hook.attrs.into_iter().find(|a| a.name == "config").unwrap();
        config.nested.unwrap().1
    }

    #[test]
    fn maps_of_secrets_are_kept_entry_by_entry() {
        let attrs = hook_config();
        let headers = |pairs: &[(&str, &str)]| {
            Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), s(v))).collect())
        };
        let planned = object(&[
            ("headers", headers(&[("A", "a1"), ("B", "b1")])),
            (
                "headers_fingerprint",
                headers(&[("A", "hmac-sha256:a"), ("B", "hmac-sha256:b")]),
            ),
        ]);
        // Read: B changed on the server; A is kept, B dropped.
        let mut state = object(&[
            ("headers", Value::Null),
            (
                "headers_fingerprint",
                headers(&[("A", "hmac-sha256:a"), ("B", "hmac-sha256:other")]),
            ),
        ]);
        let from = Sources {
            values: &planned,
            prior: &planned,
        };
        keep(&attrs, &mut state, from, Phase::Read);
        assert_eq!(state.get("headers"), &headers(&[("A", "a1")]));

        // No headers: null stays null, empty stays empty; no fingerprints
        // either way (as the server reports them).
        for shape in [Value::Null, Value::Map(BTreeMap::new())] {
            let prior = object(&[("headers", shape.clone())]);
            let mut state = object(&[
                ("headers", Value::Null),
                ("headers_fingerprint", Value::Null),
            ]);
            let from = Sources {
                values: &prior,
                prior: &prior,
            };
            keep(&attrs, &mut state, from, Phase::Read);
            assert_eq!(state.get("headers"), &shape);
            assert_eq!(state.get("headers_fingerprint"), &Value::Null);
        }
    }
}

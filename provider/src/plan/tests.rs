use sluice_proto::admin::v1::Kind;

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

fn with(base: &Value, pairs: &[(&str, Value)]) -> Value {
    let Value::Map(mut m) = base.clone() else {
        panic!("not an object")
    };
    for (k, v) in pairs {
        m.insert(k.to_string(), v.clone());
    }
    Value::Map(m)
}

fn static_key() -> Vec<Attr> {
    schema::resource(Kind::StaticKey).attrs
}

/// A stored static key as the server shows it (and a dry run of it).
fn stored_key(print: &str) -> Value {
    object(&[
        ("id", s("k1")),
        ("gateway_id", s("g1")),
        ("name", s("key")),
        ("description", s("")),
        ("labels", Value::Map(Default::default())),
        ("created_at", s("2026-01-01T00:00:00Z")),
        ("updated_at", s("2026-01-01T00:00:00Z")),
        ("value", Value::Null),
        ("value_fingerprint", s(print)),
    ])
}

fn key_config(value: Value) -> Value {
    object(&[
        ("gateway_id", s("g1")),
        ("name", s("key")),
        ("value", value),
    ])
}

#[test]
fn a_create_plans_defaults_from_the_dry_run_and_no_secret() {
    let dry = stored_key("hmac-sha256:a");
    let p = plan(
        &static_key(),
        &key_config(s("secret")),
        &Value::Null,
        Some(&dry),
        true,
        SecretMode::WriteOnly,
    );
    assert_eq!(p.planned.get("value"), &Value::Null, "write-only");
    assert_eq!(p.planned.get("value_fingerprint"), &s("hmac-sha256:a"));
    assert_eq!(p.planned.get("description"), &s(""), "the server's default");
    assert_eq!(p.planned.get("id"), &Value::Unknown);
    assert_eq!(p.planned.get("created_at"), &Value::Unknown);
    // Before Terraform 1.11 the value is held in state.
    let p = plan(
        &static_key(),
        &key_config(s("secret")),
        &Value::Null,
        Some(&dry),
        true,
        SecretMode::InState,
    );
    assert_eq!(p.planned.get("value"), &s("secret"));
}

#[test]
fn a_secret_unknown_at_plan_has_an_unknown_fingerprint_and_known_defaults() {
    let dry = with(&stored_key(""), &[("value_fingerprint", Value::Null)]);
    let p = plan(
        &static_key(),
        &key_config(Value::Unknown),
        &Value::Null,
        Some(&dry),
        true,
        SecretMode::WriteOnly,
    );
    assert_eq!(p.planned.get("value_fingerprint"), &Value::Unknown);
    assert_eq!(p.planned.get("description"), &s(""));
}

#[test]
fn unknown_configuration_makes_unset_computed_attributes_unknown() {
    let dry = stored_key("hmac-sha256:a");
    let config = with(&key_config(s("secret")), &[("name", Value::Unknown)]);
    let p = plan(
        &static_key(),
        &config,
        &Value::Null,
        Some(&dry),
        false,
        SecretMode::WriteOnly,
    );
    assert_eq!(p.planned.get("name"), &Value::Unknown);
    assert_eq!(p.planned.get("description"), &Value::Unknown);
    assert_eq!(p.planned.get("labels"), &Value::Unknown);
    assert_eq!(p.planned.get("value_fingerprint"), &s("hmac-sha256:a"));
}

#[test]
fn an_unchanged_secret_plans_nothing_even_after_import() {
    // Imported: no value in state, only the fingerprint.
    let prior = stored_key("hmac-sha256:a");
    let p = plan(
        &static_key(),
        &key_config(s("secret")),
        &prior,
        Some(&stored_key("hmac-sha256:a")),
        true,
        SecretMode::WriteOnly,
    );
    assert_eq!(p.planned, prior);
    assert!(p.requires_replace.is_empty());
}

#[test]
fn a_changed_secret_that_replaces_is_decided_on_its_fingerprint() {
    let prior = stored_key("hmac-sha256:a");
    let p = plan(
        &static_key(),
        &key_config(s("other")),
        &prior,
        Some(&stored_key("hmac-sha256:b")),
        true,
        SecretMode::WriteOnly,
    );
    assert_eq!(p.requires_replace, ["value_fingerprint"]);
    assert_eq!(p.planned.get("updated_at"), &Value::Unknown);
    // Unknown until apply: still a replacement.
    let p = plan(
        &static_key(),
        &key_config(Value::Unknown),
        &prior,
        Some(&stored_key("")),
        true,
        SecretMode::WriteOnly,
    );
    assert_eq!(p.requires_replace, ["value_fingerprint"]);
}

#[test]
fn removing_an_optional_attribute_plans_its_default() {
    let prior = with(&stored_key("hmac-sha256:a"), &[("description", s("old"))]);
    let p = plan(
        &static_key(),
        &key_config(s("secret")),
        &prior,
        Some(&stored_key("hmac-sha256:a")),
        true,
        SecretMode::WriteOnly,
    );
    assert_eq!(p.planned.get("description"), &s(""));
    assert_eq!(p.planned.get("id"), &s("k1"), "outputs keep their value");
    assert_eq!(
        p.planned.get("created_at"),
        &s("2026-01-01T00:00:00Z"),
        "only updated_at is unknown"
    );
    assert_eq!(p.planned.get("updated_at"), &Value::Unknown);
}

#[test]
fn a_generated_key_and_certificate_keep_their_values_on_update() {
    let attrs = schema::resource(Kind::DataPlaneCertificate).attrs;
    let prior = object(&[
        ("id", s("c1")),
        ("gateway_id", s("g1")),
        ("name", s("node")),
        ("description", s("")),
        ("labels", Value::Map(Default::default())),
        ("generated", Value::Bool(true)),
        ("csr", s("")),
        ("certificate", s("PEM")),
        ("private_key", s("KEY")),
        ("fingerprint", s("f")),
        ("expires_at", s("2027-01-01T00:00:00Z")),
        ("created_at", s("t")),
        ("updated_at", s("t")),
    ]);
    let config = object(&[
        ("gateway_id", s("g1")),
        ("name", s("node")),
        ("description", s("changed")),
        ("generated", Value::Bool(true)),
    ]);
    let dry = with(
        &prior,
        &[("description", s("changed")), ("private_key", s(""))],
    );
    let p = plan(
        &attrs,
        &config,
        &prior,
        Some(&dry),
        true,
        SecretMode::WriteOnly,
    );
    for kept in ["certificate", "private_key", "fingerprint", "expires_at"] {
        assert_eq!(p.planned.get(kept), prior.get(kept), "{kept}");
    }
    assert_eq!(p.planned.get("description"), &s("changed"));
}

#[test]
fn nested_secrets_and_defaults_follow_their_items() {
    let attrs = schema::resource(Kind::BackendCluster).attrs;
    let config = object(&[
        ("gateway_id", s("g1")),
        ("name", s("b")),
        ("bootstrap_servers", Value::List(vec![s("127.0.0.1:9092")])),
        (
            "authentication",
            object(&[(
                "sasl_plain",
                object(&[("username", s("u")), ("password", Value::Unknown)]),
            )]),
        ),
    ]);
    let mut unknown = Vec::new();
    let known = known_part(&attrs, &config, "", &mut unknown);
    assert_eq!(unknown, ["authentication.sasl_plain.password"]);
    assert_eq!(
        known
            .get("authentication")
            .get("sasl_plain")
            .get("password"),
        &Value::Null
    );
    assert!(!unknown_beyond_secrets(&attrs, &unknown));
    let p = plan(
        &attrs,
        &config,
        &Value::Null,
        Some(&Value::Null),
        true,
        SecretMode::WriteOnly,
    );
    let sasl = p.planned.get("authentication").get("sasl_plain");
    assert_eq!(sasl.get("password"), &Value::Null);
    assert_eq!(sasl.get("password_fingerprint"), &Value::Unknown);
    // Apply sends the configured secret.
    let applied = with(&config, &[]);
    let sent = with_secrets(&attrs, &p.planned, &applied);
    assert_eq!(
        sent.get("authentication").get("sasl_plain").get("password"),
        &Value::Unknown
    );
}

#[test]
fn unknown_paths_are_named_as_the_server_names_fields() {
    let attrs = schema::resource(Kind::Listener).attrs;
    let config = object(&[
        ("gateway_id", Value::Unknown),
        ("name", s("l")),
        ("ports", Value::List(vec![s("9092"), Value::Unknown])),
        (
            "labels",
            Value::Map([("team".to_string(), Value::Unknown)].into()),
        ),
    ]);
    let mut unknown = Vec::new();
    let known = known_part(&attrs, &config, "", &mut unknown);
    assert_eq!(unknown, ["gateway_id", "labels[team]", "ports"]);
    assert_eq!(known.get("ports"), &Value::Null);
    assert!(unknown_beyond_secrets(&attrs, &unknown));
}

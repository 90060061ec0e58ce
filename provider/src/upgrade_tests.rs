use serde_json::json;
use sluice_proto::admin::v1::Kind;

use super::*;
use crate::schema;

fn raw_json(v: serde_json::Value) -> RawState {
    RawState {
        json: v.to_string().into_bytes(),
        flatmap: HashMap::new(),
    }
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

/// The attribute names of an object value.
fn names(v: &Value) -> Vec<&str> {
    match v {
        Value::Map(m) => m.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_version_0_gateway_loses_its_counters_and_is_a_valid_state() {
    let gw = schema::resource(Kind::Gateway);
    let old = raw_json(json!({
        "id": "gw-1",
        "name": "edge",
        "description": "",
        "labels": {"team.x": "a"},
        "revision": 42,
        "nodes_total": 3,
        "virtual_clusters_total": 2,
        "gone_long_ago": {"x": 1},
    }));
    let state = upgrade(&gw, 0, Some(&old), false).unwrap();
    for gone in [
        "revision",
        "nodes_total",
        "virtual_clusters_total",
        "gone_long_ago",
    ] {
        assert!(!names(&state).contains(&gone), "{gone} kept: {state:?}");
    }
    let mut expected: Vec<&str> = gw.attrs.iter().map(|a| a.name.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(names(&state), expected);
    assert_eq!(state.get("id"), &s("gw-1"));
    assert_eq!(
        state.get("labels"),
        &Value::Map(BTreeMap::from([("team.x".into(), s("a"))]))
    );
    // Terraform can take it back: it encodes against the current type.
    let bytes = value::to_msgpack(&state, &gw.ty).unwrap();
    assert_eq!(value::from_msgpack(&bytes, &gw.ty).unwrap(), state);
}

fn backend_state() -> serde_json::Value {
    json!({
        "id": "bc-1",
        "gateway_id": "gw-1",
        "name": "kafka",
        "bootstrap_servers": ["a:9092"],
        "metadata_update_interval_seconds": "30",
        "authentication": {"sasl_plain": {"username": "u", "password": "hunter2",
                                         "password_fingerprint": "hmac-sha256:ab"}},
    })
}

#[test]
fn a_password_in_old_state_is_dropped_and_its_fingerprint_kept() {
    let bc = schema::resource(Kind::BackendCluster);
    let state = upgrade(&bc, 0, Some(&raw_json(backend_state())), false).unwrap();
    let plain = state.get("authentication").get("sasl_plain");
    assert_eq!(plain.get("username"), &s("u"));
    assert_eq!(plain.get("password"), &Value::Null);
    assert_eq!(plain.get("password_fingerprint"), &s("hmac-sha256:ab"));
    // A string where a number now goes is read as the number.
    assert_eq!(
        state.get("metadata_update_interval_seconds"),
        &Value::Number(30.0)
    );
    // A Terraform without write-only attributes keeps secrets in state.
    let kept = upgrade(&bc, 0, Some(&raw_json(backend_state())), true).unwrap();
    assert_eq!(
        kept.get("authentication").get("sasl_plain").get("password"),
        &s("hunter2")
    );
}

#[test]
fn current_state_is_read_as_it_is_and_future_versions_are_refused() {
    let bc = schema::resource(Kind::BackendCluster);
    let mut current = backend_state();
    current["metadata_update_interval_seconds"] = json!(30);
    // Written under a Terraform before 1.11 (secrets in state), read by
    // one with write-only attributes: the secret must not come back.
    let state = upgrade(&bc, SCHEMA_VERSION, Some(&raw_json(current.clone())), false).unwrap();
    assert_eq!(
        state
            .get("authentication")
            .get("sasl_plain")
            .get("password"),
        &Value::Null
    );
    assert_eq!(
        state.get("metadata_update_interval_seconds"),
        &Value::Number(30.0)
    );
    let kept = upgrade(&bc, SCHEMA_VERSION, Some(&raw_json(current)), true).unwrap();
    assert_eq!(
        kept.get("authentication").get("sasl_plain").get("password"),
        &s("hunter2")
    );
    let err = upgrade(
        &bc,
        SCHEMA_VERSION + 1,
        Some(&raw_json(backend_state())),
        false,
    )
    .unwrap_err();
    assert!(err[0].summary.contains("newer provider"), "{err:?}");
    assert!(upgrade(&bc, 0, None, false).unwrap().is_null());
    let garbage = RawState {
        json: b"{not json".to_vec(),
        flatmap: HashMap::new(),
    };
    assert!(upgrade(&bc, 0, Some(&garbage), false).is_err());
}

#[test]
fn flatmap_state_with_nested_lists_and_maps() {
    let vc = schema::resource(Kind::VirtualCluster);
    let flat: HashMap<String, String> = [
        ("id", "vc-1"),
        ("gateway_id", "gw-1"),
        ("name", "team"),
        ("labels.%", "2"),
        ("labels.team", "a"),
        ("labels.app.kubernetes.io/name", "x"),
        ("authentication.#", "2"),
        ("authentication.0.anonymous.#", "1"),
        ("authentication.1.sasl_plain.#", "1"),
        ("authentication.1.sasl_plain.0.mediation", "terminate"),
        ("authentication.1.sasl_plain.0.principals.#", "2"),
        (
            "authentication.1.sasl_plain.0.principals.0.username",
            "alice",
        ),
        (
            "authentication.1.sasl_plain.0.principals.0.password",
            "pw-a",
        ),
        ("authentication.1.sasl_plain.0.principals.1.username", "bob"),
        (
            "authentication.1.sasl_plain.0.principals.1.password_fingerprint",
            "hmac-sha256:b",
        ),
        ("nodes_total", "3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let raw = RawState {
        json: Vec::new(),
        flatmap: flat,
    };
    let state = upgrade(&vc, 0, Some(&raw), false).unwrap();
    assert_eq!(state.get("id"), &s("vc-1"));
    assert_eq!(
        state.get("labels"),
        &Value::Map(BTreeMap::from([
            ("app.kubernetes.io/name".into(), s("x")),
            ("team".into(), s("a")),
        ]))
    );
    let Value::List(auth) = state.get("authentication") else {
        panic!("{state:?}")
    };
    assert_eq!(auth.len(), 2);
    assert!(auth[0].get("sasl_plain").is_null());
    let plain = auth[1].get("sasl_plain");
    assert_eq!(plain.get("mediation"), &s("terminate"));
    let Value::List(principals) = plain.get("principals") else {
        panic!("{plain:?}")
    };
    assert_eq!(principals.len(), 2);
    assert_eq!(principals[0].get("username"), &s("alice"));
    assert_eq!(principals[0].get("password"), &Value::Null);
    assert_eq!(
        principals[1].get("password_fingerprint"),
        &s("hmac-sha256:b")
    );
    assert!(!names(&state).contains(&"nodes_total"));
    value::to_msgpack(&state, &vc.ty).unwrap();
}

#[test]
fn flatmap_counts_are_not_trusted_past_the_keys() {
    let ty = Type::Object(BTreeMap::from([
        ("ports".to_string(), Type::List(Box::new(Type::Number))),
        ("on".to_string(), Type::Bool),
    ]));
    let flat: HashMap<String, String> = [
        ("ports.#", "4000000000"),
        ("ports.0", "9092"),
        ("ports.1", "not a number"),
        ("on", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let v = from_flatmap(&flat, &ty);
    assert_eq!(
        v.get("ports"),
        &Value::List(vec![Value::Number(9092.0), Value::Null])
    );
    assert_eq!(v.get("on"), &Value::Bool(true));
}

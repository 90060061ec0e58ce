//! Plans the way Terraform users make them, through the real `terraform`
//! CLI against a real server: a fresh stack's field errors show at the
//! first plan; values known only after apply (a generated certificate's
//! key feeding a backend's client identity and a password) plan and apply
//! without an inconsistent plan, on create and on update; a change made
//! between plan and apply is refused instead of overwritten.

use sluice_acceptance::{server, terraform::Terraform};
use sluice_proto::admin::v1::{GetEntityRequest, Kind, UpdateEntityRequest};

/// Writes `main.tf` and plans it; fails unless the plan fails naming every
/// `(attribute, configuration line)`.
fn expect_errors(tf: &Terraform, config: &str, errors: &[(&str, &str)]) {
    std::fs::write(tf.dir.join("main.tf"), config).unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, 1, "{}", plan.output);
    for (attribute, line) in errors {
        assert!(
            plan.output.contains(attribute),
            "no error for {attribute}:\n{}",
            plan.output
        );
        assert!(
            plan.output.contains(line),
            "the error does not point at {line}:\n{}",
            plan.output
        );
    }
}

const GATEWAY: &str = "resource \"sluice_gateway\" \"gw\" {\n  name = \"bad\"\n}\n";

#[tokio::test]
async fn bad_configurations_fail_at_the_first_plan_naming_the_attribute() {
    let (dir, server, token) = server::start_fresh();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    // A fresh stack: the gateway's id is unknown, yet every field error
    // shows at plan, before anything is created.
    let fields = format!(
        "{GATEWAY}{}",
        r#"
resource "sluice_virtual_cluster" "vc" {
  gateway_id     = sluice_gateway.gw.id
  name           = "vc"
  destination_id = sluice_gateway.gw.id
  dns_label      = "Not_A_Label"
}
resource "sluice_listener" "l" {
  gateway_id = sluice_gateway.gw.id
  name       = "l"
  addresses  = ["127.0.0.1"]
  ports      = ["9095-9092"]
}
"#
    );
    expect_errors(
        &tf,
        &fields,
        &[
            ("invalid dns_label", "dns_label      = \"Not_A_Label\""),
            ("invalid ports[0]", "ports      = [\"9095-9092\"]"),
        ],
    );
    let mut admin = server.client(Some(&token)).await;
    let gateways = server::gateways(&mut admin).await;
    assert!(gateways.is_empty(), "a failed plan created {gateways:?}");
    // Once the gateway exists its references are checked too.
    std::fs::write(tf.dir.join("main.tf"), GATEWAY).unwrap();
    tf.apply();
    expect_errors(
        &tf,
        &fields,
        &[
            (
                "invalid destination_id",
                "destination_id = sluice_gateway.gw.id",
            ),
            ("invalid dns_label", "dns_label      = \"Not_A_Label\""),
            ("invalid ports[0]", "ports      = [\"9095-9092\"]"),
        ],
    );
    // What the provider can check alone fails before any plan.
    expect_errors(
        &tf,
        &format!(
            "{GATEWAY}{}",
            r#"
resource "sluice_event_hook" "h" {
  gateway_id = sluice_gateway.gw.id
  name       = "h"
  source     = "crud"
  handler    = "carrier-pigeon"
}
"#
        ),
        &[("invalid handler", "handler    = \"carrier-pigeon\"")],
    );
    std::fs::write(tf.dir.join("main.tf"), GATEWAY).unwrap();
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    server.stop();
}

/// A backend whose client identity and password come from a certificate
/// generated in the same run: unknown at plan, known after apply.
fn generated_identity(cert: &str) -> String {
    format!(
        r#"
resource "sluice_data_plane_certificate" "{cert}" {{
  gateway_id = sluice_gateway.gw.id
  name       = "{cert}"
  generated  = true
}}
"#
    )
}

const STACK: &str = r#"
resource "sluice_gateway" "gw" {
  name = "unknowns"
}
resource "sluice_backend_cluster" "b" {
  gateway_id        = sluice_gateway.gw.id
  name              = "kafka"
  bootstrap_servers = ["127.0.0.1:9092"]
  authentication = {
    sasl_plain = {
      username = "sluice"
      password = sha256(sluice_data_plane_certificate.first.private_key)
    }
  }
  __TLS__
}
"#;

#[tokio::test]
async fn values_known_only_after_apply_plan_and_apply_consistently() {
    let (dir, server, token) = server::start_fresh();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    let create = format!(
        "{}{}",
        STACK.replace("__TLS__", ""),
        generated_identity("first")
    );
    std::fs::write(tf.dir.join("main.tf"), &create).unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.output);
    assert!(
        plan.output
            .contains("password_fingerprint = (known after apply)"),
        "a secret unknown at plan has an unknown fingerprint:\n{}",
        plan.output
    );
    tf.apply();
    assert_eq!(tf.plan().code, 0, "empty after apply");
    let first = tf.state()["sluice_backend_cluster.b"]["authentication"]["sasl_plain"]
        ["password_fingerprint"]
        .clone();
    assert!(first.as_str().is_some_and(|f| !f.is_empty()), "{first}");

    // An update that adds a nested object whose values are unknown: the
    // new object's server defaults are unknown, not null.
    let update = format!(
        "{}{}{}",
        STACK.replace(
            "__TLS__",
            r#"tls = {
    enabled = true
    client_identity = {
      certificate = sluice_data_plane_certificate.second.certificate
      key         = sluice_data_plane_certificate.second.private_key
    }
  }"#
        ),
        generated_identity("first"),
        generated_identity("second")
    );
    std::fs::write(tf.dir.join("main.tf"), &update).unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.output);
    tf.apply();
    let again = tf.plan();
    assert_eq!(again.code, 0, "empty after the update:\n{}", again.output);
    let state = tf.state();
    let tls = &state["sluice_backend_cluster.b"]["tls"];
    assert!(
        tls["client_identity"]["key_fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("hmac-sha256:")),
        "{tls}"
    );
    assert!(tls["client_identity"]["key"].is_null(), "write-only: {tls}");
    assert_eq!(
        state["sluice_backend_cluster.b"]["authentication"]["sasl_plain"]["password_fingerprint"],
        first,
        "the unchanged password kept its fingerprint"
    );
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    server.stop();
}

#[tokio::test]
async fn a_change_made_between_plan_and_apply_is_refused_not_overwritten() {
    let (dir, server, token) = server::start_fresh();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    let config = r#"
resource "sluice_gateway" "gw" {
  name = "races"
}
resource "sluice_backend_cluster" "b" {
  gateway_id        = sluice_gateway.gw.id
  name              = "kafka"
  bootstrap_servers = ["127.0.0.1:9092"]
}
"#;
    std::fs::write(tf.dir.join("main.tf"), config).unwrap();
    tf.apply();
    std::fs::write(
        tf.dir.join("main.tf"),
        config.replace("127.0.0.1:9092", "127.0.0.1:9093"),
    )
    .unwrap();
    tf.ok(&["plan", "-out=planned", "-no-color", "-input=false"]);

    // Someone else changes the backend after the plan.
    let id = tf.state()["sluice_backend_cluster.b"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut admin = server.client(Some(&token)).await;
    let mut backend = admin
        .get_entity(GetEntityRequest {
            kind: Kind::BackendCluster as i32,
            id,
        })
        .await
        .unwrap()
        .into_inner();
    backend.description = "changed by someone else".into();
    admin
        .update_entity(UpdateEntityRequest {
            entity: Some(backend),
            expected_revision: 0,
        })
        .await
        .unwrap();

    let applied = tf.run(&["apply", "-no-color", "-input=false", "planned"]);
    assert_ne!(applied.code, 0, "{}", applied.output);
    assert!(
        applied.output.contains("changed since it was planned"),
        "{}",
        applied.output
    );
    let plan = tf.plan();
    assert!(
        plan.output.contains("changed by someone else"),
        "the next plan shows the other change:\n{}",
        plan.output
    );
    tf.apply();
    assert_eq!(tf.plan().code, 0);
    drop(admin);
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    server.stop();
}

/// Plans `config` and returns its output; `code` is the expected exit code.
fn plan_is(tf: &Terraform, config: &str, code: i32) -> String {
    std::fs::write(tf.dir.join("main.tf"), config).unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, code, "{}", plan.output);
    plan.output
}

#[tokio::test]
async fn replacements_defaults_and_odd_values_plan_as_a_user_expects() {
    let (dir, server, token) = server::start_fresh();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    let base = r#"
resource "sluice_gateway" "gw" {
  name = "odd"
}
resource "sluice_static_key" "k" {
  gateway_id = sluice_gateway.gw.id
  name       = "records"
  value      = "__KEY__"
}
resource "sluice_data_plane_certificate" "node" {
  gateway_id = sluice_gateway.gw.id
  name       = "node"
  generated  = true
  __LABELS__
}
resource "sluice_backend_cluster" "b" {
  gateway_id        = sluice_gateway.gw.id
  name              = "kafka"
  bootstrap_servers = ["127.0.0.1:9092"]
  __BACKEND__
}
"#;
    let config = |key: &str, labels: &str, backend: &str| {
        base.replace("__KEY__", key)
            .replace("__LABELS__", labels)
            .replace("__BACKEND__", backend)
    };
    let key1 = "0001020304050607080910111213141516171819202122232425262728293031";
    let key2 = "3130292827262524232221201918171615141312111009080706050403020100";
    std::fs::write(tf.dir.join("main.tf"), config(key1, "", "")).unwrap();
    tf.apply();
    assert_eq!(tf.plan().code, 0);

    // A new value of an immutable secret replaces the key under the same
    // name (destroy, then create).
    let out = plan_is(&tf, &config(key2, "", ""), 2);
    assert!(out.contains("must be replaced"), "{out}");
    assert!(!out.contains("already has the name"), "{out}");
    tf.apply();
    assert_eq!(tf.plan().code, 0, "empty after the replacement");

    // A label known only after apply (a key created in the same run) does
    // not replace the certificate.
    let extra = format!(
        "{}\nresource \"sluice_static_key\" \"k2\" {{\n  gateway_id = sluice_gateway.gw.id\n  name = \"k2\"\n  value = \"{key1}\"\n}}\n",
        config(key2, "labels = { key = sluice_static_key.k2.id }", "")
    );
    let out = plan_is(&tf, &extra, 2);
    assert!(out.contains("known after apply"), "{out}");
    assert!(!out.contains("must be replaced"), "{out}");
    assert!(out.contains("1 to add, 1 to change, 0 to destroy"), "{out}");

    // A value the server would store differently fails at plan, naming it.
    let out = plan_is(
        &tf,
        &config(key2, "", "metadata_update_interval_seconds = 0"),
        1,
    );
    assert!(
        out.contains("invalid metadata_update_interval_seconds") && out.contains("60"),
        "{out}"
    );
    // A fraction is refused, not truncated.
    let out = plan_is(
        &tf,
        &config(key2, "", "metadata_update_interval_seconds = 30.5"),
        1,
    );
    assert!(out.contains("30.5"), "{out}");
    // An empty secret is refused, not silently ignored.
    let out = plan_is(
        &tf,
        &config(
            key2,
            "",
            "authentication = { sasl_plain = { username = \"u\", password = \"\" } }",
        ),
        1,
    );
    assert!(out.contains("must not be empty"), "{out}");
    // An invalid update shows its own error only.
    let mut admin = server.client(Some(&token)).await;
    let bad = config(key2, "", "").replace("127.0.0.1:9092", "not-an-address");
    let out = plan_is(&tf, &bad, 1);
    assert!(out.contains("bootstrap_servers"), "{out}");
    assert!(!out.contains("already has the name"), "{out}");

    // Importing under the wrong gateway is refused.
    let state = tf.state();
    let key_id = state["sluice_static_key.k"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fresh = Terraform::new(&dir.path().join("fresh"), &server.addr, &token);
    std::fs::write(fresh.dir.join("main.tf"), config(key2, "", "")).unwrap();
    let wrong = fresh.run(&[
        "import",
        "-no-color",
        "-input=false",
        "sluice_static_key.k",
        &format!("00000000-0000-0000-0000-000000000000/{key_id}"),
    ]);
    assert_ne!(wrong.code, 0, "{}", wrong.output);
    assert!(
        wrong.output.contains("belongs to gateway"),
        "{}",
        wrong.output
    );

    std::fs::write(tf.dir.join("main.tf"), config(key2, "", "")).unwrap();
    tf.apply();
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let left = server::gateways(&mut admin).await;
    assert!(left.is_empty(), "{left:?}");
    server.stop();
}

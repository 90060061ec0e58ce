//! `terraform plan` warns, at the attribute, about configuration that
//! sluice-proxy does not enforce yet, and about settings that weaken the
//! gateway (a backend password in clear), as WARNING diagnostics from the
//! server's `Validate`; the plan still succeeds.

use sluice_acceptance::{
    server::{self, Server},
    terraform::Terraform,
    workspace_bin,
};

const BASE: &str = r#"
resource "sluice_gateway" "gw" {
  name = "warned"
}
resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.gw.id
  name              = "kafka"
  bootstrap_servers = ["127.0.0.1:9092"]
}
"#;

const VIRTUAL_CLUSTER: &str = r#"
resource "sluice_virtual_cluster" "vc" {
  gateway_id     = sluice_gateway.gw.id
  name           = "team-a"
  destination_id = sluice_backend_cluster.kafka.id
  dns_label      = "team-a"
  acl_mode       = "enforce_on_gateway"
  authentication = [{ anonymous = {} }]
}
resource "sluice_backend_cluster" "in_clear" {
  gateway_id        = sluice_gateway.gw.id
  name              = "in-clear"
  bootstrap_servers = ["127.0.0.1:9093"]
  authentication = {
    sasl_plain = { username = "svc", password = "secret-1" }
  }
}
"#;

#[tokio::test]
async fn plan_warns_about_what_sluice_proxy_does_not_enforce() {
    let bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&bin, dir.path());
    let server = Server::start(&bin, dir.path(), &[]);
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    // The references must be known at plan time for the dry run to run.
    std::fs::write(tf.dir.join("main.tf"), BASE).unwrap();
    let applied = tf.apply();
    assert!(!applied.contains("not enforced"), "{applied}");

    std::fs::write(tf.dir.join("main.tf"), format!("{BASE}{VIRTUAL_CLUSTER}")).unwrap();
    let plan = tf.plan();
    assert_eq!(
        plan.code, 2,
        "a warning does not fail the plan:\n{}",
        plan.output
    );
    // Terraform wraps long details: compare with whitespace collapsed.
    let words = plan.output.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "Warning: sluice_virtual_cluster: acl_mode is not enforced by the data plane",
        "with sluice_virtual_cluster.vc,",
        "acl_mode = \"enforce_on_gateway\"",
        "not enforced by sluice-proxy 0.1: connections to this virtual cluster are refused",
        "Warning: sluice_backend_cluster: the SASL PLAIN password crosses the network in clear",
        "with sluice_backend_cluster.in_clear,",
        "the backend password is sent to the brokers in clear text",
    ] {
        assert!(
            words.contains(expected),
            "no {expected:?} in the plan:\n{}",
            plan.output
        );
    }
    std::fs::write(tf.dir.join("main.tf"), BASE).unwrap();
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    server.stop();
}

//! `terraform plan` warns, at the attribute, about configuration that
//! sluice-proxy does not apply as written (ACL rules where the backend
//! decides) and about settings that weaken the gateway (a backend
//! password in clear), as WARNING diagnostics from the server's
//! `Validate`; the plan still succeeds, and what is enforced (a record
//! policy) has no warning.

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
resource "sluice_virtual_cluster" "vc" {
  gateway_id     = sluice_gateway.gw.id
  name           = "team-a"
  destination_id = sluice_backend_cluster.kafka.id
  dns_label      = "team-a"
  acl_mode       = "passthrough"
  authentication = [{ anonymous = {} }]
}
"#;

const VIRTUAL_CLUSTER: &str = r#"
resource "sluice_produce_policy_modify_headers" "stamp" {
  gateway_id         = sluice_gateway.gw.id
  name               = "stamp"
  virtual_cluster_id = sluice_virtual_cluster.vc.id
  actions            = [{ set = { key = "via", value = "sluice" } }]
}
resource "sluice_cluster_policy_acls" "trial" {
  gateway_id         = sluice_gateway.gw.id
  name               = "trial"
  virtual_cluster_id = sluice_virtual_cluster.vc.id
  rules = [{
    resource_type  = "topic"
    action         = "allow"
    operations     = ["read"]
    resource_names = ["orders"]
  }]
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
    assert!(
        !words.contains("with sluice_produce_policy_modify_headers.stamp"),
        "an enforced record policy was warned about:\n{}",
        plan.output
    );
    for expected in [
        // ACL rules where the backend decides: only reported.
        "ACL rules only reported: the virtual cluster's acl_mode is passthrough",
        "with sluice_cluster_policy_acls.trial,",
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

//! The provider through the real `terraform` CLI against a real server:
//! every resource of `examples/resources` is applied (no secret in state),
//! re-planned (empty, no drift on refresh), changed in place, cleared by
//! removing an attribute, replaced where declared, imported into a fresh
//! state (the same attributes, and an empty plan), changed and deleted
//! behind Terraform's back, and destroyed (certificates made outside
//! Terraform only with `force_destroy`); 200 resources are applied and
//! timed. Plans with unknown values, fresh stacks and races are in
//! terraform_plans.rs.

use std::{path::Path, time::Instant};

use serde_json::Value;
use sluice_acceptance::{
    server::{self, Admin, Server},
    terraform::Terraform,
    workspace_bin,
};
use sluice_proto::admin::v1::{
    DeleteEntityRequest, GetEntityRequest, Kind, UpdateEntityRequest, entity::Spec,
};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/resources");
/// Writes every example resource (and the TLS files they read) into `dir`.
fn write_examples(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("tls/server.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("tls/server.key"), ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls/ca.pem"), ck.cert.pem()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(EXAMPLES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut all = String::new();
    for name in &names {
        all +=
            &std::fs::read_to_string(Path::new(EXAMPLES).join(name).join("resource.tf")).unwrap();
        all += "\n";
    }
    std::fs::write(dir.join("main.tf"), all).unwrap();
    names
}

/// A value without the attributes an import cannot restore: a generated
/// private key (returned once, on create) and `force_destroy` (held by
/// Terraform only).
fn importable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.remove("private_key");
        m.remove("force_destroy");
    }
    v
}

/// Every value at `path` (`a.b`, through lists) of `state`.
fn at_path<'a>(state: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut here = vec![state];
    for part in path.split('.') {
        here = here
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().map(|i| &i[part]).collect::<Vec<_>>(),
                other => vec![&other[part]],
            })
            .collect();
    }
    here
}

/// Fails unless no write-only attribute holds a value in the state, and
/// none of `plaintexts` appears anywhere in the state file.
fn assert_no_secrets(tf: &Terraform, plaintexts: &[String]) {
    let write_only = tf.write_only_attributes();
    assert!(
        write_only
            .iter()
            .any(|(r, p)| r == "sluice_static_key" && p == "value"),
        "{write_only:?}"
    );
    let state = tf.state();
    for (address, values) in &state {
        let kind = address.split('.').next().unwrap_or_default();
        for (_, path) in write_only.iter().filter(|(r, _)| r == kind) {
            for v in at_path(values, path) {
                assert!(v.is_null(), "{address}.{path} is in state: {v}");
            }
        }
    }
    let raw = std::fs::read_to_string(tf.dir.join("terraform.tfstate")).expect("state file");
    for secret in plaintexts {
        assert!(
            !raw.contains(secret.as_str()),
            "a secret is in terraform.tfstate"
        );
    }
}

fn plan_summary(output: &str) -> &str {
    output
        .lines()
        .find(|l| l.starts_with("Plan:"))
        .unwrap_or("no plan line")
}

async fn admin(server: &Server, token: &str) -> Admin {
    server.client(Some(token)).await
}

#[tokio::test]
async fn every_resource_round_trips_through_terraform() {
    let (dir, server, token) = server::start_fresh();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    let names = write_examples(&tf.dir);
    assert_eq!(names.len(), 19, "an example per resource");

    let applied = tf.apply();
    assert!(applied.contains("19 added"), "{applied}");
    let again = tf.plan();
    assert_eq!(
        again.code, 0,
        "a re-plan after apply is empty:\n{}",
        again.output
    );
    // Secrets are write-only: not in state, not in the state file.
    let plaintexts = vec![
        "change-me".to_string(),
        "alice-secret".to_string(),
        "0001020304050607080910111213141516171819202122232425262728293031".to_string(),
        std::fs::read_to_string(tf.dir.join("tls/server.key")).unwrap(),
    ];
    assert_no_secrets(&tf, &plaintexts);
    // Nothing drifts on a refresh: a gateway's counters (which every child
    // change moves) are not the resource's.
    let refreshed = tf.ok(&["plan", "-refresh-only", "-no-color", "-input=false"]);
    assert!(
        refreshed.contains("No changes.") && !refreshed.contains("changed outside of Terraform"),
        "drift:\n{refreshed}"
    );
    let key = tf.state()["sluice_data_plane_certificate.example"]["private_key"].clone();
    assert!(
        key.as_str().is_some_and(|k| k.contains("PRIVATE KEY")),
        "the generated key is in state: {key}"
    );

    // The data sources read what was applied (counters included).
    std::fs::write(
        tf.dir.join("data.tf"),
        r#"
data "sluice_gateway" "by_name" {
  name = sluice_gateway.example.name
}
data "sluice_virtual_cluster" "team_a" {
  gateway_id = data.sluice_gateway.by_name.id
  name       = "team-a"
}
data "sluice_data_plane_nodes" "all" {
  gateway_id = data.sluice_gateway.by_name.id
}
output "gateway_id" { value = data.sluice_gateway.by_name.id }
output "virtual_clusters" { value = data.sluice_gateway.by_name.virtual_clusters_total }
output "dns_label" { value = data.sluice_virtual_cluster.team_a.dns_label }
output "nodes" { value = length(data.sluice_data_plane_nodes.all.nodes) }
data "sluice_diagnosis" "team_a" {
  gateway         = data.sluice_gateway.by_name.id
  virtual_cluster = "team-a"
}
output "diagnosis" {
  value = {
    domain   = data.sluice_diagnosis.team_a.domain
    hop      = data.sluice_diagnosis.team_a.failed_hop
    healthy  = data.sluice_diagnosis.team_a.healthy
    fix      = data.sluice_diagnosis.team_a.fix.resource
    vc       = data.sluice_diagnosis.team_a.path.virtual_cluster_name
    statuses = [for c in data.sluice_diagnosis.team_a.checks : "${c.hop}=${c.status}"]
  }
}
"#,
    )
    .unwrap();
    tf.apply();
    let outputs: Value = serde_json::from_str(&tf.ok(&["output", "-json", "-no-color"])).unwrap();
    assert_eq!(
        outputs["gateway_id"]["value"],
        tf.state()["sluice_gateway.example"]["id"]
    );
    assert_eq!(outputs["virtual_clusters"]["value"], 1);
    assert_eq!(outputs["dns_label"]["value"], "team-a");
    assert_eq!(outputs["nodes"]["value"], 0);
    // No node runs this gateway: the diagnosis says so, as data.
    assert_eq!(
        outputs["diagnosis"]["value"],
        serde_json::json!({
            "domain": "environment", "hop": "gateway", "healthy": false,
            "fix": "sluice_data_plane_certificate", "vc": "team-a",
            "statuses": ["gateway=fail", "listener=unknown", "virtual_cluster=pass",
                         "backend_cluster=unknown", "auth=unknown", "policy=unknown"],
        })
    );
    std::fs::remove_file(tf.dir.join("data.tf")).unwrap();

    // Change one attribute of every resource: all in place, and the
    // generated key survives the update.
    let main = std::fs::read_to_string(tf.dir.join("main.tf")).unwrap();
    let changed = main
        .replace("description = \"Loopback demo gateway\"", "")
        .replace(
            "\" \"example\" {\n",
            "\" \"example\" {\n  description = \"changed\"\n",
        );
    std::fs::write(tf.dir.join("main.tf"), &changed).unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.output);
    assert_eq!(
        plan_summary(&plan.output),
        "Plan: 0 to add, 19 to change, 0 to destroy."
    );
    tf.apply();
    assert_eq!(tf.plan().code, 0, "empty after the in-place update");
    assert_eq!(
        tf.state()["sluice_data_plane_certificate.example"]["private_key"],
        key,
        "the generated key is kept through updates and refreshes"
    );

    // Removing the attribute again clears it everywhere.
    std::fs::write(tf.dir.join("main.tf"), &main).unwrap();
    let plan = tf.plan();
    assert_eq!(
        plan_summary(&plan.output),
        "Plan: 0 to add, 19 to change, 0 to destroy.",
        "{}",
        plan.output
    );
    tf.apply();
    assert_eq!(tf.plan().code, 0, "empty after clearing");
    let state = tf.state();
    assert_eq!(state["sluice_listener.example"]["description"], "");
    assert_eq!(
        state["sluice_gateway.example"]["description"],
        "Loopback demo gateway"
    );
    std::fs::write(tf.dir.join("main.tf"), &changed).unwrap();
    tf.apply();

    // Moving a resource to another gateway replaces it.
    let moved = changed.replace(
        "resource \"sluice_event_hook\" \"example\" {\n  description = \"changed\"\n  gateway_id = sluice_gateway.example.id",
        "resource \"sluice_gateway\" \"other\" {\n  name = \"other\"\n}\n\nresource \"sluice_event_hook\" \"example\" {\n  description = \"changed\"\n  gateway_id = sluice_gateway.other.id",
    );
    assert_ne!(moved, changed, "the event hook example moved");
    std::fs::write(tf.dir.join("main.tf"), &moved).unwrap();
    let plan = tf.plan();
    assert!(plan.output.contains("must be replaced"), "{}", plan.output);
    assert_eq!(
        plan_summary(&plan.output),
        "Plan: 2 to add, 0 to change, 1 to destroy."
    );
    tf.apply();
    assert_eq!(tf.plan().code, 0);

    // Import every resource into a fresh state: the same attributes (the
    // secrets' fingerprints included), and a plan with nothing to do.
    let state = tf.state();
    assert_eq!(state.len(), 20, "{:?}", state.keys());
    let fresh = Terraform::new(&dir.path().join("fresh"), &server.addr, &token);
    write_examples(&fresh.dir);
    std::fs::write(fresh.dir.join("main.tf"), &moved).unwrap();
    // The same TLS files as the configuration that created them.
    for file in ["server.pem", "server.key", "ca.pem"] {
        std::fs::copy(
            tf.dir.join("tls").join(file),
            fresh.dir.join("tls").join(file),
        )
        .unwrap();
    }
    for (address, values) in &state {
        let id = values["id"].as_str().unwrap();
        let import_id = match values["gateway_id"].as_str() {
            Some(gw) => format!("{gw}/{id}"),
            None => id.to_string(),
        };
        fresh.ok(&["import", "-no-color", "-input=false", address, &import_id]);
    }
    let imported = fresh.state();
    assert_eq!(imported.len(), state.len());
    for (address, values) in &state {
        assert_eq!(
            importable(&imported[address]),
            importable(values),
            "{address} imports as created"
        );
    }
    assert_eq!(
        imported["sluice_static_key.example"]["value_fingerprint"],
        state["sluice_static_key.example"]["value_fingerprint"]
    );
    assert!(
        state["sluice_static_key.example"]["value_fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("hmac-sha256:")),
        "{state:?}"
    );
    let after_import = fresh.plan();
    assert_eq!(
        after_import.code, 0,
        "a plan after import is empty:\n{}",
        after_import.output
    );

    // Behind Terraform's back: a deleted entity is planned again, a changed
    // one shows the diff.
    let mut admin = admin(&server, &token).await;
    let hook = state["sluice_event_hook.example"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .delete_entity(DeleteEntityRequest {
            kind: Kind::EventHook as i32,
            id: hook,
            ..Default::default()
        })
        .await
        .unwrap();
    let listener_id = state["sluice_listener.example"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut listener = admin
        .get_entity(GetEntityRequest {
            kind: Kind::Listener as i32,
            id: listener_id,
        })
        .await
        .unwrap()
        .into_inner();
    if let Some(Spec::Listener(l)) = listener.spec.as_mut() {
        l.ports = vec!["29092".into()];
    }
    admin
        .update_entity(UpdateEntityRequest {
            entity: Some(listener),
            expected_revision: 0,
        })
        .await
        .unwrap();
    let plan = tf.plan();
    assert_eq!(
        plan_summary(&plan.output),
        "Plan: 1 to add, 1 to change, 0 to destroy.",
        "{}",
        plan.output
    );
    assert!(
        plan.output.contains("\"29092\""),
        "the diff shows the out-of-band ports:\n{}",
        plan.output
    );
    tf.apply();
    assert_eq!(tf.plan().code, 0);

    // A certificate issued with the CLI blocks destroying its gateway
    // until `force_destroy` says to revoke it.
    server::run_cli(
        &workspace_bin("sluice-server"),
        &[
            "dataplane-cert",
            "issue",
            "--gateway",
            "example",
            "--out",
            dir.path().join("node").to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    let blocked = tf.run(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert_ne!(blocked.code, 0, "{}", blocked.output);
    assert!(
        blocked.output.contains("force_destroy") || blocked.output.contains("force"),
        "the refusal says how to force it:\n{}",
        blocked.output
    );
    let forced = moved.replacen(
        "resource \"sluice_gateway\" \"example\" {\n",
        "resource \"sluice_gateway\" \"example\" {\n  force_destroy = true\n",
        1,
    );
    std::fs::write(tf.dir.join("main.tf"), &forced).unwrap();
    tf.apply();
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let left = server::gateways(&mut admin).await;
    assert!(left.is_empty(), "{left:?}");
    drop(admin);
    server.stop();
}

#[tokio::test]
async fn two_hundred_resources_apply() {
    let (dir, server, token) = server::start_fresh();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    std::fs::write(
        tf.dir.join("main.tf"),
        r#"
resource "sluice_gateway" "gw" {
  name = "many"
}
resource "sluice_backend_cluster" "b" {
  count             = 199
  gateway_id        = sluice_gateway.gw.id
  name              = "kafka-${count.index}"
  bootstrap_servers = ["127.0.0.1:${9092 + count.index}"]
}
"#,
    )
    .unwrap();
    let start = Instant::now();
    let out = tf.apply();
    let took = start.elapsed();
    assert!(out.contains("200 added"), "{out}");
    eprintln!(
        "terraform apply of 200 resources took {:.1} s",
        took.as_secs_f64()
    );
    println!(
        "terraform apply of 200 resources took {:.1} s",
        took.as_secs_f64()
    );
    let start = Instant::now();
    assert_eq!(tf.plan().code, 0);
    eprintln!(
        "terraform plan of 200 unchanged resources took {:.1} s",
        start.elapsed().as_secs_f64()
    );
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    server.stop();
}

#[tokio::test]
async fn the_examples_validate() {
    let (dir, server, token) = server::start_fresh();
    let examples = std::path::Path::new(EXAMPLES).join("..");
    for example in ["quickstart", "multi-tenant"] {
        let root = dir.path().join(example);
        for part in [example, "modules/tenant"] {
            let to = root.join(part);
            std::fs::create_dir_all(&to).unwrap();
            for file in std::fs::read_dir(examples.join(part)).unwrap() {
                let file = file.unwrap();
                std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
            }
        }
        let tf = Terraform::new(&root.join(example), &server.addr, &token);
        tf.ok(&["get", "-no-color"]);
        let out = tf.ok(&["validate", "-no-color"]);
        assert!(
            out.contains("The configuration is valid"),
            "{example}: {out}"
        );
    }
    server.stop();
}

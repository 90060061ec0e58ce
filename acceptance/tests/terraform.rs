//! The provider through the real `terraform` CLI against a real server:
//! every resource of `examples/resources` is applied, re-planned (empty),
//! changed in place, replaced where declared, imported into a fresh state,
//! changed and deleted behind Terraform's back, and destroyed; bad
//! configurations fail at plan time naming their attributes; 200 resources
//! are applied and timed.

use std::{path::Path, time::Instant};

use serde_json::Value;
use sluice_acceptance::{
    server::{self, Admin, Server},
    terraform::Terraform,
    workspace_bin,
};
use sluice_proto::admin::v1::{
    DeleteEntityRequest, GetEntityRequest, Kind, ListEntitiesRequest, UpdateEntityRequest,
    entity::Spec,
};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/resources");
/// Attributes Terraform holds but the server never returns.
const WRITE_ONLY: &[&str] = &[
    "password",
    "key",
    "value",
    "secret",
    "private_key",
    "headers",
];

fn start() -> (tempfile::TempDir, Server, String) {
    let bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&bin, dir.path());
    let server = Server::start(&bin, dir.path(), &[]);
    (dir, server, token)
}

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

fn strip_write_only(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !WRITE_ONLY.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip_write_only(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_write_only).collect()),
        other => other.clone(),
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
    let (dir, server, token) = start();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    let names = write_examples(&tf.dir);
    assert_eq!(names.len(), 18, "an example per resource");

    let applied = tf.apply();
    assert!(applied.contains("18 added"), "{applied}");
    let again = tf.plan();
    assert_eq!(
        again.code, 0,
        "a re-plan after apply is empty:\n{}",
        again.output
    );

    // The data sources read what was applied.
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
output "dns_label" { value = data.sluice_virtual_cluster.team_a.dns_label }
output "nodes" { value = length(data.sluice_data_plane_nodes.all.nodes) }
"#,
    )
    .unwrap();
    tf.apply();
    let outputs: Value = serde_json::from_str(&tf.ok(&["output", "-json", "-no-color"])).unwrap();
    assert_eq!(
        outputs["gateway_id"]["value"],
        tf.state()["sluice_gateway.example"]["id"]
    );
    assert_eq!(outputs["dns_label"]["value"], "team-a");
    assert_eq!(outputs["nodes"]["value"], 0);
    std::fs::remove_file(tf.dir.join("data.tf")).unwrap();

    // Change one attribute of every resource: all in place.
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
        "Plan: 0 to add, 18 to change, 0 to destroy."
    );
    tf.apply();
    assert_eq!(tf.plan().code, 0, "empty after the in-place update");

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

    // Import every resource into a fresh state: the same attributes (after a
    // refresh, so live counters such as a gateway's revision are current).
    tf.ok(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-no-color",
        "-input=false",
    ]);
    let state = tf.state();
    let fresh = Terraform::new(&dir.path().join("fresh"), &server.addr, &token);
    write_examples(&fresh.dir);
    std::fs::write(fresh.dir.join("main.tf"), &moved).unwrap();
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
            strip_write_only(&imported[address]),
            strip_write_only(values),
            "{address} imports as created"
        );
    }

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
            expected_revision: 0,
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

    // Destroy leaves the server empty.
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let left = admin
        .list_entities(ListEntitiesRequest {
            kind: Kind::Gateway as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entities;
    assert!(left.is_empty(), "{left:?}");
    drop(admin);
    server.stop();
}

#[tokio::test]
async fn bad_configurations_fail_at_plan_naming_the_attribute() {
    let (dir, server, token) = start();
    let tf = Terraform::new(&dir.path().join("tf"), &server.addr, &token);
    std::fs::write(
        tf.dir.join("main.tf"),
        r#"
resource "sluice_gateway" "gw" {
  name = "bad"
}
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
resource "sluice_event_hook" "h" {
  gateway_id = sluice_gateway.gw.id
  name       = "h"
  source     = "crud"
  handler    = "carrier-pigeon"
}
"#,
    )
    .unwrap();
    // The gateway must exist for the references to be known at plan time;
    // apply it alone first (a config with errors does not validate).
    let bad = std::fs::read_to_string(tf.dir.join("main.tf")).unwrap();
    let gateway_only = "resource \"sluice_gateway\" \"gw\" {
  name = \"bad\"
}
";
    std::fs::write(tf.dir.join("main.tf"), gateway_only).unwrap();
    tf.apply();
    // What only the server can check fails at plan, naming the attribute.
    let (server_checked, locally_checked) =
        bad.split_at(bad.find("resource \"sluice_event_hook\"").unwrap());
    let expect = |config: &str, errors: &[(&str, &str)]| {
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
    };
    expect(
        server_checked,
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
    expect(
        &format!("{gateway_only}{locally_checked}"),
        &[("invalid handler", "handler    = \"carrier-pigeon\"")],
    );
    std::fs::write(tf.dir.join("main.tf"), gateway_only).unwrap();
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    server.stop();
}

#[tokio::test]
async fn two_hundred_resources_apply() {
    let (dir, server, token) = start();
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
    assert_eq!(tf.plan().code, 0);
    tf.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    server.stop();
}

#[tokio::test]
async fn the_examples_validate() {
    let (dir, server, token) = start();
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

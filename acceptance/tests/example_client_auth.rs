//! examples/client-auth end to end: `terraform apply` makes one virtual
//! cluster per client-authentication method; a proxy joins; confluent-kafka
//! logs in with the example's principal (PLAIN checked by the gateway),
//! is refused without it, and gets in anonymously only where the rules say
//! so; a second `terraform plan` shows no changes (no password hash or
//! secret drifts into state).

use std::{path::Path, time::Duration};

use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    server::{self, Server},
    stack::start_proxy_with,
    terraform::{Terraform, copy_dir},
    workspace_bin,
};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/client-auth");
const WAIT: Duration = Duration::from_secs(30);

/// The last JSON line a client script printed.
fn report(out: &str) -> serde_json::Value {
    out.lines()
        .rev()
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_virtual_cluster_per_method_from_terraform() {
    let tansu = Tansu::start("127.0.0.2");
    tansu.create_topic("example-auth", 1);
    let server_bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&server_bin, dir.path());
    let server = Server::start(&server_bin, dir.path(), &[]);

    let tf_dir = dir.path().join("tf");
    copy_dir(Path::new(EXAMPLE), &tf_dir);
    // The tenant module the example uses, at the same relative place.
    copy_dir(
        &Path::new(EXAMPLE).join("../modules/tenant"),
        &dir.path().join("modules/tenant"),
    );
    let mut ports = serde_json::Map::new();
    for name in ["plain", "scram", "plain-open", "mtls", "oauth"] {
        let (a, b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        ports.insert(name.into(), serde_json::json!([a.min(b), a.max(b)]));
    }
    let port = |name: &str| ports[name][0].as_u64().unwrap();
    let tf = Terraform::new(&tf_dir, &server.addr, &token);
    let vars = [
        format!("-var=backend_bootstrap={}", tansu.address),
        format!("-var=ports={}", serde_json::Value::Object(ports.clone())),
    ];
    let with_vars = |args: &[&'static str]| -> Vec<String> {
        args.iter()
            .map(|a| a.to_string())
            .chain(vars.iter().cloned())
            .collect()
    };
    // Modules are installed by `terraform get` (the provider comes from
    // dev_overrides, so no init).
    tf.ok(&["get", "-no-color"]);
    let apply = with_vars(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    tf.ok(&apply.iter().map(String::as_str).collect::<Vec<_>>());
    let outputs = tf.ok(&["output", "-json", "-no-color"]);
    assert!(
        outputs.contains(&format!("127.0.0.1:{}", port("plain"))),
        "{outputs}"
    );
    // Applied again: nothing to change (the principal's password stays a
    // write-only secret; no hash shows up in state).
    let plan = with_vars(&["plan", "-detailed-exitcode", "-no-color", "-input=false"]);
    let run = tf.run(&plan.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "a second plan wants changes:\n{}", run.output);
    let state = tf.ok(&["show", "-json", "-no-color"]);
    assert!(
        !state.contains("argon2") && !state.contains("password_hash"),
        "a password hash reached the Terraform state"
    );

    // Connection lines (with the principal) are logged at debug level.
    let proxy = start_proxy_with(
        &server,
        dir.path(),
        "client-auth",
        &["--log", "info,sluice_proxy::conn=debug"],
    );
    for name in ["plain", "plain-open"] {
        let p = port(name);
        proxy
            .wait_for(WAIT, |l| l.contains(&format!("listening on 127.0.0.1:{p}")))
            .unwrap_or_else(|| panic!("the proxy never listened on {name}'s port {p}"));
    }
    let plain = format!("127.0.0.1:{}", port("plain"));
    let open = format!("127.0.0.1:{}", port("plain-open"));
    let alice = [
        "--mechanism",
        "PLAIN",
        "--username",
        "alice",
        "--password",
        "alice-secret-1",
    ];
    // The example's principal round-trips through the PLAIN cluster.
    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            &["roundtrip", &plain][..],
            &alice,
            &["--topic", "example-auth", "--group", "g-example-auth"],
        ]
        .concat(),
    );
    assert_eq!(
        report(&out)["consumed"].as_array().map(Vec::len),
        Some(3),
        "{out}"
    );
    // Without credentials: refused there, let in where anonymous follows.
    let (served, out) = clients::try_run("python3", "confluent_sasl.py", &["metadata", &plain]);
    assert!(
        !served,
        "an unauthenticated client was served by 'plain': {out}"
    );
    let (served, out) = clients::try_run("python3", "confluent_sasl.py", &["metadata", &open]);
    assert!(served, "'plain-open' refused an anonymous client: {out}");
    let (served, out) = clients::try_run(
        "python3",
        "confluent_sasl.py",
        &[&["metadata", &open][..], &alice].concat(),
    );
    assert!(served, "'plain-open' refused alice: {out}");
    proxy
        .wait_for(WAIT, |l| {
            l.contains("client connected") && l.contains("principal=User:alice")
        })
        .expect("the proxy logs alice's connection with her principal");
}

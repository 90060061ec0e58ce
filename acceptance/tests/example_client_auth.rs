//! examples/client-auth end to end: `terraform apply` makes one virtual
//! cluster per client-authentication method; a proxy joins; confluent-kafka
//! logs in with the example's principal (PLAIN checked by the gateway),
//! is refused without it, and gets in anonymously only where the rules say
//! so; a second `terraform plan` shows no changes (no password hash or
//! secret drifts into state).

use std::time::Duration;

use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    example::Example,
    stack::start_proxy_with,
};

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
    let mut example = Example::prepare("client-auth");
    let mut ports = serde_json::Map::new();
    for name in ["plain", "scram", "plain-open", "mtls", "oauth"] {
        let (a, b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        ports.insert(name.into(), serde_json::json!([a.min(b), a.max(b)]));
    }
    let port = |name: &str| ports[name][0].as_u64().unwrap();
    example.var("backend_bootstrap", &tansu.address);
    example.var("ports", serde_json::Value::Object(ports.clone()));
    example.apply();
    let tf = &example.tf;
    let outputs = tf.ok(&["output", "-json", "-no-color"]);
    assert!(
        outputs.contains(&format!("127.0.0.1:{}", port("plain"))),
        "{outputs}"
    );
    // Applied again: nothing to change (the principal's password stays a
    // write-only secret; no hash shows up in state).
    example.assert_no_changes();
    let state = tf.ok(&["show", "-json", "-no-color"]);
    assert!(
        !state.contains("argon2") && !state.contains("password_hash"),
        "a password hash reached the Terraform state"
    );

    // Connection lines (with the principal) are logged at debug level.
    let proxy = start_proxy_with(
        &example.server,
        example.dir.path(),
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

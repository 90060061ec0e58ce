//! The whole chain: `terraform apply` of examples/quickstart → server →
//! sync stream → proxy → tansu, used by three independent Kafka clients;
//! then Terraform adds a second virtual cluster and listener while a
//! consumer stays connected; then `terraform destroy` closes the ports.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sluice_acceptance::{
    broker::Tansu,
    clients::{self, CLIENTS},
    server::{self, Server},
    stack::{start_proxy, two_ports},
    terraform::{Terraform, copy_dir},
    workspace_bin,
};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
const WAIT: Duration = Duration::from_secs(30);

fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn produce(bootstrap: &str, topic: &str, value: &str) {
    let code = format!(
        "from confluent_kafka import Producer\np = Producer({{'bootstrap.servers': '{bootstrap}'}})\np.produce('{topic}', value=b'{value}')\nassert p.flush(30) == 0"
    );
    let out = Command::new("python3")
        .args(["-c", &code])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_to_kafka_clients_and_back() {
    let tansu = Tansu::start("127.0.0.2");
    for topic in [
        "e2e-confluent",
        "e2e-python",
        "e2e-js",
        "e2e-steady",
        "e2e-live",
    ] {
        tansu.create_topic(topic, 3);
    }
    let server_bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&server_bin, dir.path());
    let server = Server::start(&server_bin, dir.path(), &[]);

    // terraform apply examples/quickstart (with its tenant module).
    copy_dir(
        &Path::new(EXAMPLES).join("quickstart"),
        &dir.path().join("tf/quickstart"),
    );
    copy_dir(
        &Path::new(EXAMPLES).join("modules"),
        &dir.path().join("tf/modules"),
    );
    let tf = Terraform::new(&dir.path().join("tf/quickstart"), &server.addr, &token);
    let ports = two_ports();
    let vars = [
        "-var".to_string(),
        format!("backend_bootstrap={}", tansu.address),
        "-var".to_string(),
        format!("ports=[{}, {}]", ports.0, ports.1),
    ];
    let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
    let with = |base: &[&'static str]| [base, &vars[..]].concat();
    tf.ok(&["get", "-no-color"]);
    tf.ok(&with(&[
        "apply",
        "-auto-approve",
        "-no-color",
        "-input=false",
    ]));

    // The proxy joins the gateway Terraform made.
    let proxy = start_proxy(&server, dir.path(), "quickstart");
    proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{}", ports.1))
        })
        .expect("the proxy binds the Terraform-made listener");
    let bootstrap = format!("127.0.0.1:{}", ports.0);

    // Three independent clients.
    clients::run(
        "python3",
        "confluent_roundtrip.py",
        &[&bootstrap, "e2e-confluent", "g-confluent"],
    );
    clients::run(
        "python3",
        "kafka_python_roundtrip.py",
        &[&bootstrap, "e2e-python", "g-python"],
    );
    let js = clients::run(
        "node",
        "kafkajs_roundtrip.js",
        &[&bootstrap, "e2e-js", "g-js"],
    );
    assert!(js.contains("kafkajs-2"), "{js}");

    // A consumer that stays connected while Terraform changes the gateway.
    produce(&bootstrap, "e2e-steady", "first");
    let mut steady = Command::new("python3")
        .arg(format!("{CLIENTS}/steady_consumer.py"))
        .args([&bootstrap, "e2e-steady", "g-steady"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(steady.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    let more = two_ports();
    let main = std::fs::read_to_string(tf.dir.join("main.tf")).unwrap();
    // The same apply touches every entity on the steady consumer's own
    // path (its virtual cluster, listener and forward policy).
    std::fs::write(
        tf.dir.join("quickstart_override.tf"),
        "module \"demo\" {\n  description = \"changed while a consumer is connected\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        tf.dir.join("live.tf"),
        format!(
            "module \"live\" {{\n  source = \"../modules/tenant\"\n  gateway_id = sluice_gateway.quickstart.id\n  backend_cluster_id = sluice_backend_cluster.local.id\n  name = \"live\"\n  ports = [{}, {}]\n  min_broker_id = 111\n}}\n",
            more.0, more.1
        ),
    )
    .unwrap();
    assert!(main.contains("sluice_backend_cluster\" \"local\""));
    tf.ok(&["get", "-no-color"]);
    tf.ok(&with(&[
        "apply",
        "-auto-approve",
        "-no-color",
        "-input=false",
    ]));
    let applied = Instant::now();
    while !accepts(more.0) && applied.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = applied.elapsed();
    eprintln!("the new virtual cluster accepted {took:?} after terraform apply returned");
    assert!(accepts(more.0), "the new virtual cluster never accepted");
    clients::run(
        "python3",
        "kafka_python_roundtrip.py",
        &[&format!("127.0.0.1:{}", more.0), "e2e-live", "g-live"],
    );

    // The steady consumer saw everything, with no client error.
    produce(&bootstrap, "e2e-steady", "last");
    let report = lines.next().unwrap().unwrap();
    assert!(steady.wait().unwrap().success(), "{report}");
    assert!(
        report.contains("\"seen\": [\"first\", \"last\"]") && report.contains("\"errors\": []"),
        "{report}"
    );
    // librdkafka reconnects silently; its own statistics count every
    // connection the gateway (or anything else) closed under it. (Its
    // `connects` counts attempts: since librdkafka 2.10 the group
    // coordinator's handle counts one before it has an address.)
    let stats: serde_json::Value = serde_json::from_str(&report).unwrap();
    let connects = stats["connects"].as_object().expect("connection counts");
    assert!(!connects.is_empty(), "{report}");
    let disconnects = stats["disconnects"].as_object().expect("disconnect counts");
    assert!(!disconnects.is_empty(), "{report}");
    assert!(
        disconnects.values().all(|n| n.as_u64() == Some(0)),
        "the steady consumer was disconnected: {report}"
    );

    // terraform destroy of the tenants: the proxy stops accepting on their
    // ports. (The gateway itself stays until the proxy's certificate, which
    // Terraform did not make, is revoked.)
    let targets = ["-target=module.demo", "-target=module.live"];
    tf.ok(&[
        &with(&["destroy", "-auto-approve", "-no-color", "-input=false"])[..],
        &targets[..],
    ]
    .concat());
    let destroyed = Instant::now();
    while [ports.0, ports.1, more.0, more.1]
        .iter()
        .any(|p| accepts(*p))
        && destroyed.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for port in [ports.0, ports.1, more.0, more.1] {
        assert!(
            !accepts(port),
            "port {port} still accepts after terraform destroy"
        );
    }
    proxy.terminate();
    let mut admin = server.client(Some(&token)).await;
    let certificates = admin
        .list_entities(sluice_proto::admin::v1::ListEntitiesRequest {
            kind: sluice_proto::admin::v1::Kind::DataPlaneCertificate as i32,
            gateway_id: tf.state()["sluice_gateway.quickstart"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entities;
    for certificate in certificates {
        admin
            .delete_entity(sluice_proto::admin::v1::DeleteEntityRequest {
                kind: sluice_proto::admin::v1::Kind::DataPlaneCertificate as i32,
                id: certificate.id,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    drop(admin);
    tf.ok(&with(&[
        "destroy",
        "-auto-approve",
        "-no-color",
        "-input=false",
    ]));
    server.stop();
}

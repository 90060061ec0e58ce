//! examples/tls-sni end to end: `terraform apply` makes two teams on one
//! TLS port routed by SNI with one wildcard certificate; a proxy joins;
//! confluent-kafka clients of each team bootstrap at their own host name
//! (resolved to loopback the way a user would: `*.localhost`), verify the
//! certificate and host name, round-trip records, and are told only their
//! own team's broker names.

use std::{path::Path, time::Duration};

use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    pki::{Ca, Usage},
    server::{self, Server},
    stack::start_proxy,
    terraform::{Terraform, copy_dir},
    workspace_bin,
};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tls-sni");
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_teams_on_one_sni_port_with_one_wildcard_certificate() {
    let tansu = Tansu::start("127.0.0.2");
    tansu.create_topic("sni-a", 1);
    tansu.create_topic("sni-b", 1);
    let server_bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&server_bin, dir.path());
    let server = Server::start(&server_bin, dir.path(), &[]);

    let tf_dir = dir.path().join("tf");
    copy_dir(Path::new(EXAMPLE), &tf_dir);
    std::fs::create_dir_all(tf_dir.join("tls")).unwrap();
    let ca = Ca::new("example CA");
    let ca_file = ca.write(dir.path(), "ca");
    ca.issue("sluice", &["*.sluice.localhost"], Usage::Server)
        .write(&tf_dir.join("tls"), "wildcard");
    std::fs::rename(
        tf_dir.join("tls/wildcard.crt"),
        tf_dir.join("tls/wildcard.pem"),
    )
    .unwrap();
    let port = free_port("127.0.0.1");
    let tf = Terraform::new(&tf_dir, &server.addr, &token);
    let vars = [
        format!("-var=backend_bootstrap={}", tansu.address),
        format!("-var=port={port}"),
    ];
    let mut apply = vec!["apply", "-auto-approve", "-no-color", "-input=false"];
    apply.extend(vars.iter().map(String::as_str));
    tf.ok(&apply);
    let outputs = tf.ok(&["output", "-json", "-no-color"]);
    assert!(
        outputs.contains(&format!("bootstrap-team-a.sluice.localhost:{port}")),
        "{outputs}"
    );

    let proxy = start_proxy(&server, dir.path(), "tls-sni");
    proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{port}"))
        })
        .expect("the proxy binds the SNI port");
    for (team, topic) in [("team-a", "sni-a"), ("team-b", "sni-b")] {
        let bootstrap = format!("bootstrap-{team}.sluice.localhost:{port}");
        let out = clients::run(
            "python3",
            "confluent_tls_roundtrip.py",
            &[
                &bootstrap,
                topic,
                &format!("g-{team}"),
                ca_file.to_str().unwrap(),
            ],
        );
        let seen: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert_eq!(seen["consumed"].as_array().unwrap().len(), 3, "{out}");
        assert_eq!(
            seen["brokers"],
            serde_json::json!([format!("broker-111-{team}.sluice.localhost:{port}")]),
            "{team} is told only its own broker name: {out}"
        );
    }
    // Destroying the TLS policy takes the SNI policy that depends on it
    // first (depends_on: the server refuses the other order), and the
    // port closes. (The gateway stays: the proxy's certificate was not
    // made by Terraform.)
    tf.ok(&[
        "destroy",
        "-auto-approve",
        "-no-color",
        "-input=false",
        "-target=sluice_listener_policy_tls_server.tls",
        &vars[0],
        &vars[1],
    ]);
    let closed = (0..500).any(|_| {
        let open = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if open {
            std::thread::sleep(Duration::from_millis(20));
        }
        !open
    });
    assert!(
        closed,
        "port {port} still accepts after the SNI policy was destroyed"
    );
}

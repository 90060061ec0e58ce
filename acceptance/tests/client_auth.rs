//! Virtual-cluster client authentication, driven by real clients
//! (confluent-kafka, kafka-python, kafkajs) through a real sluice-proxy
//! to a real tansu: SASL/PLAIN checked by the gateway over plaintext and
//! TLS, SASL/SCRAM-SHA-512 relayed to an authenticating broker, client
//! certificates, the order of rules, and a gateway that logs in to an
//! authenticating broker with its own credentials on behalf of a client
//! it checked itself. Every refusal is seen by the client as a user would
//! see it, counted in node status at `hop=auth` with its mechanism, and
//! (for PLAIN) sent to an event hook as `auth_failed`; every admitted
//! client is logged with its principal.

use sluice_acceptance::{
    auth::{
        PROXY_LOG, Served, WAIT, anonymous, assert_served, auth_failed_hook, ever_connected_as,
        expect_auth_failure, expect_connected, plain_terminate, refused, report, rule, secret,
        serve,
    },
    broker::Tansu,
    clients,
    pki::{Ca, Usage},
    stack::{Stack, create},
};
use sluice_proto::admin::v1::{
    BackendAuthentication, BackendCluster, BackendSaslScram, ClientAuthentication,
    ClientAuthenticationMode, ClientCertificate, ListenerPolicyTlsServer, ScramAlgorithm,
    TlsTrustBundle, VirtualSaslScram, backend_authentication, entity::Spec,
    virtual_cluster_authentication::Method,
};

/// Test 1: confluent-kafka SASL_PLAINTEXT PLAIN, checked by the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_terminate_with_confluent_kafka_and_kafkajs() {
    let mut stack = Stack::start_with(&["plain-rt"], &PROXY_LOG).await;
    let mut hook = auth_failed_hook(&mut stack).await;
    let backend = stack.backend.id.clone();
    let s = serve(
        &mut stack,
        "plain-a",
        &backend,
        vec![plain_terminate(&[
            ("alice", "alice-secret"),
            ("bob", "bob-secret"),
        ])],
        None,
    )
    .await;

    // The right password: records go through, and the connection's
    // principal is the user the gateway checked.
    let sasl = |user: &'static str, password: &'static str| {
        [
            "--mechanism",
            "PLAIN",
            "--username",
            user,
            "--password",
            password,
        ]
    };
    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            &["roundtrip", &s.bootstrap][..],
            &sasl("alice", "alice-secret"),
            &["--topic", "plain-rt", "--group", "g-plain"],
        ]
        .concat(),
    );
    assert_served(&out, &s);
    assert_eq!(report(&out)["protocol"], "SASL_PLAINTEXT", "{out}");
    expect_connected(&stack, &s.vc, "User:alice", "PLAIN");

    // A wrong password: librdkafka reports the gateway's message, which
    // names the virtual cluster.
    let told = r#"Authentication failed: invalid credentials for virtual cluster "plain-a""#;
    let error = refused(
        "python3",
        "confluent_sasl.py",
        &[
            &["metadata", &s.bootstrap][..],
            &sasl("alice", "not-her-password"),
        ]
        .concat(),
    );
    assert!(error.contains(told), "{error}");
    // An unknown user gets the very same message (never which half was
    // wrong), in kafkajs too.
    let error = refused(
        "node",
        "kafkajs_sasl.js",
        &["metadata", &s.bootstrap, "plain", "mallory", "alice-secret"],
    );
    assert!(error.contains(told), "kafkajs: {error}");
    assert!(
        !ever_connected_as(&stack, &s.vc, "User:mallory"),
        "mallory was admitted"
    );

    let counted = expect_auth_failure(&mut stack, &s.vc, "PLAIN").await;
    assert!(
        !counted.last_message.contains("not-her-password")
            && !counted.last_message.contains("alice-secret"),
        "a password in node status: {counted:?}"
    );
    // The event hook hears of it.
    let event = tokio::time::timeout(WAIT, async {
        loop {
            let e = hook.next().await.json();
            if e["event"] == "auth_failed" {
                return e;
            }
        }
    })
    .await
    .expect("no auth_failed event reached the hook");
    assert_eq!(event["source"], "dataplane", "{event}");
    assert_eq!(event["gateway_id"], stack.gateway.id.as_str(), "{event}");
    assert_eq!(event["entity"]["hop"], "auth", "{event}");
    assert_eq!(event["entity"]["entity_id"], s.vc.id.as_str(), "{event}");
    assert_eq!(
        event["entity"]["key"],
        format!("{}/PLAIN", s.vc.id),
        "{event}"
    );
    assert!(
        !event.to_string().contains("not-her-password"),
        "a password in the event: {event}"
    );
}

/// Test 2: confluent-kafka SASL_SSL PLAIN on a TLS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_terminate_over_tls_with_confluent_kafka() {
    let mut stack = Stack::start_with(&["plain-tls"], &PROXY_LOG).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    let server = ca.issue("sluice-listener", &["127.0.0.1"], Usage::Server);
    let backend = stack.backend.id.clone();
    let s = serve(
        &mut stack,
        "plain-tls",
        &backend,
        vec![plain_terminate(&[("alice", "alice-secret")])],
        Some(ListenerPolicyTlsServer {
            certificates: vec![server.to_proto()],
            ..Default::default()
        }),
    )
    .await;
    let login = |password: &'static str| {
        [
            "--ca",
            ca_path,
            "--mechanism",
            "PLAIN",
            "--username",
            "alice",
            "--password",
            password,
        ]
    };

    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            &["roundtrip", &s.bootstrap][..],
            &login("alice-secret"),
            &["--topic", "plain-tls", "--group", "g-plain-tls"],
        ]
        .concat(),
    );
    assert_served(&out, &s);
    assert_eq!(report(&out)["protocol"], "SASL_SSL", "{out}");
    expect_connected(&stack, &s.vc, "User:alice", "PLAIN");
    assert!(
        stack
            .proxy
            .count_matching(|l| l.contains("client connected")
                && l.contains(&s.vc.id)
                && l.contains("tls=true"))
            > 0,
        "alice's connections were not over TLS"
    );

    let error = refused(
        "python3",
        "confluent_sasl.py",
        &[&["metadata", &s.bootstrap][..], &login("wrong")].concat(),
    );
    assert!(
        error.contains(r#"invalid credentials for virtual cluster "plain-tls""#),
        "{error}"
    );
    expect_auth_failure(&mut stack, &s.vc, "PLAIN").await;
}

/// A stack, a tansu that checks SCRAM-SHA-512 (and knows alice), and a
/// virtual cluster relaying SCRAM-SHA-512 to it from a backend without
/// credentials of its own: each client's are used.
async fn scram_passthrough(topic: &str) -> (Stack, tempfile::TempDir, Tansu, Served) {
    let mut stack = Stack::start_with(&[], &PROXY_LOG).await;
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start_scram("127.0.0.2", dir.path(), ("alice", "alice-scram"), &[topic]);
    let gw = stack.gateway.id.clone();
    let backend = create(
        &mut stack.admin,
        &gw,
        "tansu-scram",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec![broker.address.clone()],
            ..Default::default()
        }),
    )
    .await;
    let s = serve(
        &mut stack,
        "scram",
        &backend.id,
        vec![rule(Method::SaslScram(VirtualSaslScram {
            algorithm: ScramAlgorithm::Sha512 as i32,
        }))],
        None,
    )
    .await;
    (stack, dir, broker, s)
}

/// Test 3: kafka-python SCRAM-SHA-512 relayed to a tansu that checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_passthrough_with_kafka_python() {
    let (stack, _dir, _broker, s) = scram_passthrough("scram-rt").await;
    let out = clients::run(
        "python3",
        "kafka_python_sasl.py",
        &[
            "roundtrip",
            &s.bootstrap,
            "SCRAM-SHA-512",
            "alice",
            "alice-scram",
            "--topic",
            "scram-rt",
            "--group",
            "g-scram",
        ],
    );
    assert_served(&out, &s);
    expect_connected(&stack, &s.vc, "User:alice", "SCRAM-SHA-512");

    // The broker refuses a wrong password (kafka-python sees the refusal
    // in the broker's last SCRAM message, relayed).
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_sasl.py",
        &[
            "metadata",
            &s.bootstrap,
            "SCRAM-SHA-512",
            "alice",
            "not-her-password",
        ],
    );
    assert!(!ok, "a wrong SCRAM password was served: {out}");
}

/// Test 3b: a SCRAM login the broker refused is counted at the auth hop
/// and never admitted — even when the broker says so only in its last
/// SCRAM message (`e=invalid-proof`, RFC 5802 §7, as tansu does, with
/// error code 0) and a hostile client carries on regardless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_scram_login_is_counted_and_never_admitted() {
    let (mut stack, _dir, _broker, s) = scram_passthrough("scram-refused").await;
    let wrong = [
        "metadata",
        &s.bootstrap,
        "SCRAM-SHA-512",
        "alice",
        "not-her-password",
    ];
    refused("python3", "kafka_python_sasl.py", &wrong);
    let counted = expect_auth_failure(&mut stack, &s.vc, "SCRAM-SHA-512").await;
    assert!(counted.last_message.contains("\"alice\""), "{counted:?}");
    assert!(
        !ever_connected_as(&stack, &s.vc, "User:alice"),
        "a refused SCRAM login was logged as admitted"
    );
    let (ok, out) = clients::try_run(
        "python3",
        "kafka_python_sasl.py",
        &[&wrong[..], &["--ignore-scram-refusal"]].concat(),
    );
    assert!(
        !ok,
        "a client that ignored the broker's SCRAM refusal was served: {out}"
    );
}

/// Test 4: client certificates as the only way in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_admits_by_certificate_only() {
    let mut stack = Stack::start_with(&["mtls-rt"], &PROXY_LOG).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = stack.gateway.id.clone();
    let ca = Ca::new("listener CA");
    let ca_file = ca.write(dir.path(), "ca");
    let ca_path = ca_file.to_str().unwrap();
    let server = ca.issue("sluice-listener", &["127.0.0.1"], Usage::Server);
    let clients_ca = Ca::new("client CA");
    let bundle = create(
        &mut stack.admin,
        &gw,
        "clients",
        Spec::TlsTrustBundle(TlsTrustBundle {
            trusted_ca: clients_ca.cert.clone(),
        }),
    )
    .await;
    let backend = stack.backend.id.clone();
    // Certificates are requested, not required: a client without one
    // completes its TLS handshake and is refused by the auth hop.
    let s = serve(
        &mut stack,
        "mtls",
        &backend,
        vec![rule(Method::ClientCertificate(ClientCertificate {}))],
        Some(ListenerPolicyTlsServer {
            certificates: vec![server.to_proto()],
            client_authentication: Some(ClientAuthentication {
                mode: ClientAuthenticationMode::Requested as i32,
                trust_bundle_ids: vec![bundle.id.clone()],
            }),
            ..Default::default()
        }),
    )
    .await;
    let (cert, key) = clients_ca
        .issue("app-1", &[], Usage::Client)
        .write(dir.path(), "app");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            "roundtrip",
            &s.bootstrap,
            "--ca",
            ca_path,
            "--cert",
            cert,
            "--key",
            key,
            "--topic",
            "mtls-rt",
            "--group",
            "g-mtls",
        ],
    );
    assert_served(&out, &s);
    assert_eq!(report(&out)["protocol"], "SSL", "{out}");
    expect_connected(&stack, &s.vc, "User:app-1", "MTLS");

    // TLS without a certificate: the handshake passes (requested), the
    // virtual cluster does not.
    refused(
        "python3",
        "confluent_sasl.py",
        &["metadata", &s.bootstrap, "--ca", ca_path],
    );
    let counted = expect_auth_failure(&mut stack, &s.vc, "MTLS").await;
    assert!(
        counted.last_message.contains("no verified certificate"),
        "{counted:?}"
    );
    assert!(
        !ever_connected_as(&stack, &s.vc, "User:ANONYMOUS"),
        "a client without a certificate was admitted"
    );
}

/// Test 5: the order of rules, and mechanisms no rule offers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_order_decides_who_gets_in() {
    let mut stack = Stack::start_with(&["order-rt"], &PROXY_LOG).await;
    let backend = stack.backend.id.clone();
    let alice = ("alice", "alice-secret");
    let either = serve(
        &mut stack,
        "either",
        &backend,
        vec![plain_terminate(&[alice]), anonymous()],
        None,
    )
    .await;
    let sasl_only = serve(
        &mut stack,
        "sasl-only",
        &backend,
        vec![plain_terminate(&[alice])],
        None,
    )
    .await;
    let plain_login = |password: &'static str| {
        [
            "--mechanism",
            "PLAIN",
            "--username",
            "alice",
            "--password",
            password,
        ]
    };

    // [sasl_plain, anonymous]: a client without SASL is admitted by the
    // anonymous rule...
    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            "roundtrip",
            &either.bootstrap,
            "--topic",
            "order-rt",
            "--group",
            "g-order",
        ],
    );
    assert_served(&out, &either);
    assert_eq!(report(&out)["protocol"], "PLAINTEXT", "{out}");
    expect_connected(&stack, &either.vc, "User:ANONYMOUS", "ANONYMOUS");
    // ...a PLAIN client is still checked by the sasl_plain rule...
    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            &["metadata", &either.bootstrap][..],
            &plain_login("alice-secret"),
        ]
        .concat(),
    );
    assert_served(&out, &either);
    expect_connected(&stack, &either.vc, "User:alice", "PLAIN");
    // ...and a wrong password is not let in as anonymous.
    let error = refused(
        "python3",
        "confluent_sasl.py",
        &[&["metadata", &either.bootstrap][..], &plain_login("wrong")].concat(),
    );
    assert!(
        error.contains(r#"invalid credentials for virtual cluster "either""#),
        "{error}"
    );
    expect_auth_failure(&mut stack, &either.vc, "PLAIN").await;

    // [sasl_plain] alone: a client without SASL is refused...
    refused(
        "python3",
        "confluent_sasl.py",
        &["metadata", &sasl_only.bootstrap],
    );
    let counted = expect_auth_failure(&mut stack, &sasl_only.vc, "NONE").await;
    assert!(
        counted.last_message.contains("without authenticating"),
        "{counted:?}"
    );
    assert!(
        !ever_connected_as(&stack, &sasl_only.vc, "User:ANONYMOUS"),
        "a client without SASL was admitted to sasl-only"
    );
    // ...and one asking for a mechanism no rule offers is told the offered
    // list (librdkafka prints the broker's mechanisms).
    let error = refused(
        "python3",
        "confluent_sasl.py",
        &[
            "metadata",
            &sasl_only.bootstrap,
            "--mechanism",
            "SCRAM-SHA-256",
            "--username",
            "alice",
            "--password",
            "alice-secret",
        ],
    );
    assert!(
        error.contains("Unsupported SASL mechanism") && error.contains("mechanisms: PLAIN"),
        "{error}"
    );
    let counted = expect_auth_failure(&mut stack, &sasl_only.vc, "UNSUPPORTED").await;
    assert!(
        counted.last_message.contains("SCRAM-SHA-256"),
        "{counted:?}"
    );
}

/// Test 6: the gateway checks the client's PLAIN login, then logs in to
/// an authenticating broker with the backend cluster's own SCRAM
/// credentials (tansu knows only the gateway's user, not the client's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_terminate_in_front_of_an_authenticating_broker_with_kafkajs() {
    let mut stack = Stack::start_with(&[], &PROXY_LOG).await;
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start_scram(
        "127.0.0.2",
        dir.path(),
        ("sluice", "gateway-secret"),
        &["behind-sasl"],
    );
    let gw = stack.gateway.id.clone();
    let backend = create(
        &mut stack.admin,
        &gw,
        "tansu-sasl",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec![broker.address.clone()],
            authentication: Some(BackendAuthentication {
                method: Some(backend_authentication::Method::SaslScram(
                    BackendSaslScram {
                        algorithm: ScramAlgorithm::Sha512 as i32,
                        username: "sluice".into(),
                        password: secret("gateway-secret"),
                    },
                )),
            }),
            ..Default::default()
        }),
    )
    .await;
    let s = serve(
        &mut stack,
        "behind-sasl",
        &backend.id,
        vec![plain_terminate(&[("alice", "alice-secret")])],
        None,
    )
    .await;

    let out = clients::run(
        "node",
        "kafkajs_sasl.js",
        &[
            "roundtrip",
            &s.bootstrap,
            "plain",
            "alice",
            "alice-secret",
            "behind-sasl",
            "g-behind",
        ],
    );
    assert_served(&out, &s);
    expect_connected(&stack, &s.vc, "User:alice", "PLAIN");

    // The control: the same client, the same rule, the same broker, but a
    // backend cluster without credentials — the broker (which knows no
    // alice and takes no PLAIN) refuses the gateway's connections, so the
    // round trip above went through on the backend's SCRAM login.
    let gw = stack.gateway.id.clone();
    let bare = create(
        &mut stack.admin,
        &gw,
        "tansu-sasl-bare",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec![broker.address.clone()],
            ..Default::default()
        }),
    )
    .await;
    let control = serve(
        &mut stack,
        "no-backend-login",
        &bare.id,
        vec![plain_terminate(&[("alice", "alice-secret")])],
        None,
    )
    .await;
    refused(
        "node",
        "kafkajs_sasl.js",
        &[
            "metadata",
            &control.bootstrap,
            "plain",
            "alice",
            "alice-secret",
        ],
    );
}

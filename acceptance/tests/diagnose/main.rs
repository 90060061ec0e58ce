//! The Diagnose RPC against a corpus of real misconfigurations: each case
//! is its own gateway on one `sluice-server`, served by its own
//! `sluice-proxy` in front of tansu, and a real client (confluent-kafka)
//! fails through it first; then Diagnose must name the one failure
//! domain, the failing hop, the evidence and the Terraform attribute to
//! fix. Healthy paths must answer "no fault found". Cases run
//! concurrently (each waits on its own processes and clients).

mod access;
mod clusters;
mod listeners;

use std::{future::Future, path::PathBuf, pin::Pin, sync::Arc, time::Duration};

use sluice_acceptance::{
    broker::Tansu,
    clients,
    process::Process,
    server::{self, Admin, Server},
    stack::{self, create},
    workspace_bin,
};
use sluice_proto::admin::v1::{
    BackendCluster, DiagnoseRequest, DiagnoseResponse, Entity, Gateway, entity::Spec,
};

/// How long a case waits for its node or its diagnosis.
const WAIT: Duration = Duration::from_secs(45);

/// What every case shares: the control plane and the brokers.
pub(crate) struct World {
    server: Server,
    token: String,
    dir: tempfile::TempDir,
    /// tansu with every topic a case uses.
    tansu: Tansu,
    /// A second tansu (another backend).
    other: Tansu,
}

impl World {
    async fn admin(&self) -> Admin {
        self.server.client(Some(&self.token)).await
    }

    fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// One case's gateway.
pub(crate) struct Case {
    world: Arc<World>,
    admin: Admin,
    gateway: Entity,
    /// Its nodes (killed when the case ends).
    nodes: Vec<Process>,
}

impl Case {
    async fn new(world: &Arc<World>, name: &str) -> Case {
        let mut admin = world.admin().await;
        let gateway = create(&mut admin, "", name, Spec::Gateway(Gateway::default())).await;
        Case {
            world: world.clone(),
            admin,
            gateway,
            nodes: Vec::new(),
        }
    }

    fn name(&self) -> String {
        self.gateway.name.clone()
    }

    async fn create(&mut self, name: &str, spec: Spec) -> Entity {
        create(&mut self.admin, &self.gateway.id.clone(), name, spec).await
    }

    /// A backend cluster on the shared tansu.
    async fn tansu_backend(&mut self) -> Entity {
        let address = self.world.tansu.address.clone();
        self.create(
            "tansu",
            Spec::BackendCluster(BackendCluster {
                bootstrap_servers: vec![address],
                ..Default::default()
            }),
        )
        .await
    }

    /// Starts a node of this gateway (reaching the control plane at
    /// `control_plane`, or the server) and waits until it logs `ready`.
    async fn node_via(&mut self, control_plane: Option<String>, ready: Option<String>) {
        let (world, name) = (self.world.clone(), self.name());
        let node = tokio::task::spawn_blocking(move || {
            let via = control_plane.unwrap_or_else(|| world.server.sync_addr.clone());
            let node = stack::start_node(&via, &world.dir(), &name, &name, &[]);
            let wanted = ready.unwrap_or_else(|| "connected to the control plane".into());
            node.wait_for(WAIT, |l| l.contains(&wanted))
                .unwrap_or_else(|| panic!("{name}: the node never logged {wanted:?}"));
            node
        })
        .await
        .expect("start node");
        self.nodes.push(node);
    }

    /// Starts a node and waits until it listens on `port`.
    async fn node_listening(&mut self, port: u16) {
        self.node_via(None, Some(format!("listening on 127.0.0.1:{port}")))
            .await;
    }

    /// Waits until a node of the gateway applied `revision`.
    async fn wait_applied(&mut self, revision: i64) {
        let gateway = self.gateway.id.clone();
        stack::wait_applied(&mut self.admin, &gateway, revision, WAIT).await
    }

    /// One diagnosis, no retries (a healthy path must be healthy at once).
    async fn diagnose_once(&mut self, request: DiagnoseRequest) -> DiagnoseResponse {
        let request = DiagnoseRequest {
            gateway: self.gateway.name.clone(),
            ..request
        };
        self.admin
            .diagnose(request)
            .await
            .expect("diagnose")
            .into_inner()
    }

    /// Diagnoses until the answer's domain is `domain` (node reports
    /// arrive every few seconds), or fails the case showing the last one.
    async fn diagnose(&mut self, request: DiagnoseRequest, domain: &str) -> DiagnoseResponse {
        let request = DiagnoseRequest {
            gateway: self.gateway.name.clone(),
            ..request
        };
        let started = std::time::Instant::now();
        loop {
            let answer = self.admin.diagnose(request.clone()).await;
            match answer {
                Ok(d) if d.get_ref().domain == domain => return d.into_inner(),
                Ok(d) if started.elapsed() > WAIT => panic!(
                    "{}: diagnosed {:?}, not {domain:?}:\n{}",
                    self.name(),
                    d.get_ref().domain,
                    show(d.get_ref())
                ),
                Err(status)
                    if status.code() != tonic::Code::ResourceExhausted
                        || started.elapsed() > WAIT =>
                {
                    panic!("{}: Diagnose failed: {status}", self.name())
                }
                _ => tokio::time::sleep(Duration::from_millis(1100)).await,
            }
        }
    }
}

/// A diagnosis's words, one fact a line, for messages and searching.
pub(crate) fn show(d: &DiagnoseResponse) -> String {
    let mut lines = vec![format!(
        "domain {} at {}: {}",
        d.domain, d.failed_hop, d.summary
    )];
    for c in &d.checks {
        lines.push(format!("[{}] {} {}", c.status, c.hop, c.summary));
        lines.extend(
            c.evidence
                .iter()
                .map(|e| format!("    {} {}: {}", e.source, e.node_id, e.fact)),
        );
    }
    if let Some(f) = &d.fix {
        lines.push(format!(
            "fix {}.{} ({}): {}",
            f.resource, f.attribute, f.entity_name, f.action
        ));
    }
    lines.extend(d.ruled_out.iter().map(|r| format!("ruled out: {r}")));
    for p in &d.probes {
        lines.push(format!(
            "probe {} {} revision {}",
            p.node_id, p.status, p.revision
        ));
        lines.extend(
            p.steps
                .iter()
                .map(|s| format!("    {} {} {}: {}", s.target, s.step, s.status, s.message)),
        );
    }
    lines.push(format!("note: {}", d.symptom_note));
    lines.join("\n")
}

/// Asserts the failing hop, the fix and that every needle is somewhere in
/// the answer (summary, evidence, probes).
pub(crate) fn expect(d: &DiagnoseResponse, hop: &str, fix: (&str, &str), needles: &[&str]) {
    let text = show(d);
    assert_eq!(d.failed_hop, hop, "{text}");
    let f = d.fix.clone().unwrap_or_default();
    assert_eq!((f.resource.as_str(), f.attribute.as_str()), fix, "{text}");
    for needle in needles {
        assert!(
            text.contains(needle),
            "{needle:?} is not in the diagnosis:\n{text}"
        );
    }
    // Exactly one failing hop is named; those before it passed.
    let at = d
        .checks
        .iter()
        .position(|c| c.hop == hop)
        .expect("the failing hop has a check");
    assert_eq!(d.checks[at].status, "fail", "{text}");
    assert!(d.checks[..at].iter().all(|c| c.status != "fail"), "{text}");
    assert_eq!(
        d.checks.iter().filter(|c| c.status == "fail").count(),
        1,
        "{text}"
    );
    assert!(!d.ruled_out.is_empty(), "{text}");
}

/// Runs a client script that must fail (exit non-zero, or an error in
/// its report); its output.
pub(crate) async fn failing_client(script: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = clients::try_run("python3", script, &args);
        let reported_error = out.contains("\"error") && !out.contains("\"errors\": []");
        assert!(
            !ok || reported_error,
            "{script} {args:?} was expected to fail:\n{out}"
        );
        out
    })
    .await
    .expect("client")
}

/// `confluent_sasl.py roundtrip` arguments for `topic` through
/// `bootstrap`, in a consumer group of the case's own (cases run at once
/// on one broker), with `extra` flags.
pub(crate) fn roundtrip(bootstrap: &str, topic: &str, extra: &[&str]) -> Vec<String> {
    let group = format!("g-{}", bootstrap.rsplit(':').next().unwrap_or_default());
    let base = ["roundtrip", bootstrap, "--topic", topic, "--group", &group];
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

/// A consumer (tenant.py) of `topic` that must fail: nothing consumed,
/// an error reported (an unknown topic, say).
pub(crate) async fn failing_consume(bootstrap: &str, topic: &str) -> String {
    let group = format!(
        "g-{topic}-{}",
        bootstrap.rsplit(':').next().unwrap_or_default()
    );
    let args = ["consume", bootstrap, topic, &group, "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = failing_client("tenant.py", args).await;
    assert!(out.contains("\"values\": []"), "{out}");
    out
}

type CaseFn = fn(Arc<World>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corpus_of_misconfigurations_each_gets_one_failure_domain_with_proof() {
    let dir = tempfile::tempdir().unwrap();
    let bin = workspace_bin("sluice-server");
    let token = server::create_token(&bin, dir.path());
    let server = Server::start(
        &bin,
        dir.path(),
        &["--log", "warn,sluice_server::serve=info"],
    );
    let tansu = Tansu::start("127.0.0.2");
    for topic in ["orders", "shared-t", "acl-t"] {
        tansu.create_topic(topic, 1);
    }
    let other = Tansu::start("127.0.0.3");
    other.create_topic("payments", 1);
    let world = Arc::new(World {
        server,
        token,
        dir,
        tansu,
        other,
    });
    let cases: Vec<(&str, CaseFn)> = vec![
        ("healthy port mapping", |w| {
            Box::pin(listeners::healthy_port_mapping(w))
        }),
        ("healthy SNI", |w| Box::pin(listeners::healthy_sni(w))),
        ("another gateway's address", |w| {
            Box::pin(listeners::another_gateways_address(w))
        }),
        ("no forward policy", |w| {
            Box::pin(listeners::no_forward_policy(w))
        }),
        ("SNI name typo", |w| Box::pin(listeners::sni_typo(w))),
        ("port in use on the node", |w| {
            Box::pin(listeners::port_in_use(w))
        }),
        ("no node connected", |w| Box::pin(listeners::no_node(w))),
        ("node behind on revision", |w| {
            Box::pin(listeners::node_behind(w))
        }),
        ("virtual cluster on the wrong backend", |w| {
            Box::pin(clusters::wrong_backend(w))
        }),
        ("backend unreachable", |w| {
            Box::pin(clusters::backend_unreachable(w))
        }),
        ("backend TLS CA wrong", |w| {
            Box::pin(clusters::backend_ca_wrong(w))
        }),
        ("backend SASL password wrong", |w| {
            Box::pin(clusters::backend_password_wrong(w))
        }),
        ("unknown virtual cluster", |w| {
            Box::pin(clusters::unknown_virtual_cluster(w))
        }),
        ("topic missing everywhere", |w| {
            Box::pin(clusters::missing_topic(w))
        }),
        ("ACLs enforced with no ACL policy", |w| {
            Box::pin(access::acls_enforced_without_policies(w))
        }),
        ("client SASL password wrong", |w| {
            Box::pin(access::client_password_wrong(w))
        }),
        ("mechanism not enabled", |w| {
            Box::pin(access::mechanism_not_enabled(w))
        }),
        ("ACL denies write", |w| {
            Box::pin(access::acl_denies_write(w))
        }),
        ("namespace hides the topic", |w| {
            Box::pin(access::namespace_hides_topic(w))
        }),
    ];
    let mut running = Vec::new();
    for (name, case) in cases {
        running.push((name, tokio::spawn(case(world.clone()))));
    }
    let mut failed = Vec::new();
    for (name, task) in running {
        if let Err(e) = task.await {
            let why = e
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_else(|| "cancelled".into());
            failed.push(format!("--- {name}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} case(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

//! A whole local gateway for end-to-end tests and benchmarks: tansu,
//! `sluice-server`, a virtual cluster exposed on a port-mapped listener,
//! and a `sluice-proxy` that has bound it.

use std::{process::Command, time::Duration};

use sluice_proto::admin::v1::{
    BackendCluster, CreateEntityRequest, Entity, Gateway, Listener,
    ListenerPolicyForwardToVirtualCluster, PortMapping, VirtualCluster, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config,
};

use crate::{
    broker::{Tansu, free_port},
    process::Process,
    server::{self, Admin, Server},
    workspace_bin,
};

/// Everything running, in drop order.
pub struct Stack {
    /// The proxy.
    pub proxy: Process,
    /// An admin client.
    pub admin: Admin,
    /// The control plane.
    pub server: Server,
    /// The broker (on 127.0.0.2, so any leak of its address shows).
    pub tansu: Tansu,
    /// The gateway.
    pub gateway: Entity,
    /// The backend cluster (tansu).
    pub backend: Entity,
    /// Bootstrap port and broker-111 port of the first listener.
    pub ports: (u16, u16),
    /// Data dir, certificates, cache.
    pub dir: tempfile::TempDir,
    /// An admin token.
    pub token: String,
}

/// Creates an entity.
pub async fn create(admin: &mut Admin, gateway_id: &str, name: &str, spec: Spec) -> Entity {
    let entity = Entity {
        gateway_id: gateway_id.into(),
        name: name.into(),
        spec: Some(spec),
        ..Default::default()
    };
    admin
        .create_entity(CreateEntityRequest {
            entity: Some(entity),
        })
        .await
        .expect("create")
        .into_inner()
}

/// Waits until a node of `gateway_id` has applied `revision`; fails the
/// test after `timeout`.
pub async fn wait_applied(admin: &mut Admin, gateway_id: &str, revision: i64, timeout: Duration) {
    let started = std::time::Instant::now();
    while started.elapsed() < timeout {
        let nodes = admin
            .list_data_plane_nodes(sluice_proto::admin::v1::ListDataPlaneNodesRequest {
                gateway_id: gateway_id.into(),
            })
            .await
            .expect("list nodes")
            .into_inner()
            .nodes;
        if nodes.iter().any(|n| n.applied_revision >= revision) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no node of gateway {gateway_id} applied revision {revision}");
}

/// Two distinct free loopback ports, ascending: bootstrap, then broker 111.
pub fn two_ports() -> (u16, u16) {
    let (a, b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    (a.min(b), a.max(b))
}

/// A virtual cluster on `backend` served by a new listener on `ports`
/// (tansu's single broker is id 111).
pub async fn expose(
    admin: &mut Admin,
    gw: &str,
    backend: &str,
    name: &str,
    ports: (u16, u16),
) -> Entity {
    let vc = VirtualCluster {
        destination_id: backend.into(),
        dns_label: name.into(),
        ..Default::default()
    };
    expose_virtual_cluster(admin, gw, name, vc, ports).await.1
}

/// Creates `vc` and serves it on a new listener on `ports`; returns the
/// virtual cluster and the forward policy.
pub async fn expose_virtual_cluster(
    admin: &mut Admin,
    gw: &str,
    name: &str,
    vc: VirtualCluster,
    ports: (u16, u16),
) -> (Entity, Entity) {
    let vc = create(admin, gw, name, Spec::VirtualCluster(vc)).await;
    let listener = create(
        admin,
        gw,
        name,
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into()],
            ports: vec![ports.0.to_string(), ports.1.to_string()],
            ..Default::default()
        }),
    )
    .await;
    let forward = create(
        admin,
        gw,
        name,
        Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
            listener_id: listener.id.clone(),
            config: Some(Config::PortMapping(PortMapping {
                destination_id: vc.id.clone(),
                advertised_host: "127.0.0.1".into(),
                bootstrap_port: 0,
                min_broker_id: 111,
            })),
        }),
    )
    .await;
    (vc, forward)
}

/// Issues a node certificate for `gateway` (through the CLI, into
/// `dir/node`) and starts a `sluice-proxy` with it (cache in `dir/cache`).
pub fn start_proxy(server: &Server, dir: &std::path::Path, gateway: &str) -> Process {
    start_proxy_with(server, dir, gateway, &[])
}

/// [`start_proxy`] with extra `sluice-proxy run` flags (limits, say).
pub fn start_proxy_with(
    server: &Server,
    dir: &std::path::Path,
    gateway: &str,
    extra: &[&str],
) -> Process {
    start_proxy_via(&server.sync_addr, dir, gateway, extra)
}

/// [`start_proxy_with`] reaching the control plane at `control_plane`
/// (a relay in front of the server's sync endpoint, say); `dir` is the
/// server's data dir.
pub fn start_proxy_via(
    control_plane: &str,
    dir: &std::path::Path,
    gateway: &str,
    extra: &[&str],
) -> Process {
    start_node(control_plane, dir, gateway, "node", extra)
}

/// One of several nodes of a gateway: [`start_proxy_via`] with its own
/// certificate, cache and node id under `dir/<name>`.
pub fn start_node(
    control_plane: &str,
    dir: &std::path::Path,
    gateway: &str,
    name: &str,
    extra: &[&str],
) -> Process {
    let certs = dir.join(name);
    server::run_cli(
        &workspace_bin("sluice-server"),
        &[
            "dataplane-cert",
            "issue",
            "--gateway",
            gateway,
            "--out",
            certs.to_str().unwrap_or_default(),
            "--data-dir",
            dir.to_str().unwrap_or_default(),
        ],
    );
    let mut command = Command::new(workspace_bin("sluice-proxy"));
    command
        .args(["run", "--control-plane", control_plane])
        .arg("--cert")
        .arg(certs.join("tls.crt"))
        .arg("--key")
        .arg(certs.join("tls.key"))
        .arg("--ca")
        .arg(certs.join("ca.crt"))
        .arg("--cache-dir")
        .arg(if name == "node" {
            dir.join("cache")
        } else {
            certs.join("cache")
        })
        .args(extra);
    Process::spawn(command, "proxy")
}

impl Stack {
    /// Starts everything and waits until the proxy listens.
    pub async fn start(topics: &[&str]) -> Stack {
        Self::start_with(topics, &[]).await
    }

    /// [`Stack::start`] with extra `sluice-proxy run` flags.
    pub async fn start_with(topics: &[&str], proxy_flags: &[&str]) -> Stack {
        let tansu = Tansu::start("127.0.0.2");
        for topic in topics {
            tansu.create_topic(topic, 3);
        }
        let server_bin = workspace_bin("sluice-server");
        let dir = tempfile::tempdir().expect("tempdir");
        let token = server::create_token(&server_bin, dir.path());
        let server = Server::start(
            &server_bin,
            dir.path(),
            &["--log", "warn,sluice_server::serve=info"],
        );
        let mut admin = server.client(Some(&token)).await;
        let gateway = create(&mut admin, "", "edge", Spec::Gateway(Gateway::default())).await;
        let backend = create(
            &mut admin,
            &gateway.id,
            "tansu",
            Spec::BackendCluster(BackendCluster {
                bootstrap_servers: vec![tansu.address.clone()],
                ..Default::default()
            }),
        )
        .await;
        let ports = two_ports();
        expose(&mut admin, &gateway.id, &backend.id, "team-a", ports).await;
        let proxy = start_proxy_with(&server, dir.path(), "edge", proxy_flags);
        for port in [ports.0, ports.1] {
            proxy
                .wait_for(Duration::from_secs(30), |l| {
                    l.contains(&format!("listening on 127.0.0.1:{port}"))
                })
                .unwrap_or_else(|| panic!("the proxy never listened on {port}"));
        }
        Stack {
            proxy,
            admin,
            server,
            tansu,
            gateway,
            backend,
            ports,
            dir,
            token,
        }
    }

    /// Every hop error the proxy reported, once some error satisfies
    /// `wanted` (polling node status, up to `timeout`); `None` if none did.
    pub async fn wait_for_error(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&sluice_proto::admin::v1::NodeHopErrors) -> bool,
    ) -> Option<sluice_proto::admin::v1::NodeHopErrors> {
        let started = std::time::Instant::now();
        while started.elapsed() < timeout {
            let nodes = self
                .admin
                .list_data_plane_nodes(sluice_proto::admin::v1::ListDataPlaneNodesRequest {
                    gateway_id: self.gateway.id.clone(),
                })
                .await
                .ok()?
                .into_inner()
                .nodes;
            if let Some(found) = nodes.iter().flat_map(|n| &n.errors).find(|e| wanted(e)) {
                return Some(found.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Waits until the node has applied `revision` (an entity's, as a
    /// write returned it); fails the test after `timeout`.
    pub async fn wait_applied(&mut self, revision: i64, timeout: Duration) {
        wait_applied(&mut self.admin, &self.gateway.id, revision, timeout).await
    }

    /// The bootstrap address clients use.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ports.0)
    }

    /// A new backend cluster, a virtual cluster on it and a port-mapped
    /// listener: the backend entity and the bootstrap address, once the
    /// proxy listens.
    pub async fn serve_backend(&mut self, name: &str, backend: BackendCluster) -> (Entity, String) {
        let gw = self.gateway.id.clone();
        let backend = create(&mut self.admin, &gw, name, Spec::BackendCluster(backend)).await;
        let ports = two_ports();
        let vc = VirtualCluster {
            destination_id: backend.id.clone(),
            dns_label: name.into(),
            ..Default::default()
        };
        expose_virtual_cluster(&mut self.admin, &gw, name, vc, ports).await;
        self.proxy
            .wait_for(Duration::from_secs(30), |l| {
                l.contains(&format!("listening on 127.0.0.1:{}", ports.1))
            })
            .unwrap_or_else(|| panic!("{name}: the proxy never listened"));
        (backend, format!("127.0.0.1:{}", ports.0))
    }

    /// Waits for a backend_cluster error of `kind` on `backend` whose
    /// message holds every one of `needles`; fails the test, showing node
    /// status, if none comes.
    pub async fn expect_backend_error(&mut self, backend: &Entity, kind: &str, needles: &[&str]) {
        let wait = Duration::from_secs(30);
        let found = self
            .wait_for_error(wait, |e| {
                e.entity == backend.id
                    && e.kind == kind
                    && needles.iter().all(|n| e.last_message.contains(n))
            })
            .await;
        let Some(error) = found else {
            let all = self.wait_for_error(Duration::from_secs(5), |_| true).await;
            panic!(
                "no backend_cluster {kind} error with {needles:?} for {}; node status: {all:?}",
                backend.name
            );
        };
        assert_eq!(error.hop, "backend_cluster", "{error:?}");
    }
}

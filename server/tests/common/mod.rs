//! Test harness: the real `sluice-server` binary of this package, through
//! the shared harness in `sluice-acceptance`, and valid entities of every
//! kind.

#![allow(dead_code)]

pub(crate) mod db;
pub(crate) mod fixtures;
pub(crate) mod receiver;

use std::{path::Path, time::Duration};

use sluice_proto::admin::v1::{
    CreateEntityRequest, DataPlaneNode, Entity, EventDelivery, ListDataPlaneNodesRequest,
    ListEventDeliveriesRequest,
};

pub(crate) use sluice_acceptance::server::{Admin, Server};

/// This package's `sluice-server` binary.
pub(crate) fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sluice-server"))
}

/// Runs `sluice-server` with `args` and returns its stdout.
pub(crate) fn run_cli(args: &[&str]) -> String {
    sluice_acceptance::server::run_cli(bin(), args)
}

/// Creates an admin token in `data_dir`.
pub(crate) fn create_token(data_dir: &Path) -> String {
    sluice_acceptance::server::create_token(bin(), data_dir)
}

/// Starts a server on `data_dir` with extra flags.
pub(crate) fn start_server(data_dir: &Path, extra: &[&str]) -> Server {
    Server::start(bin(), data_dir, extra)
}

/// A fresh data dir, a token and a running server.
pub(crate) async fn start() -> (tempfile::TempDir, Server, Admin, String) {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path());
    let server = start_server(dir.path(), &[]);
    let client = server.client(Some(&token)).await;
    (dir, server, client, token)
}

/// Waits (at most `timeout`) for a server log line that `matches`, without
/// blocking the test's runtime (streams the test holds keep running).
pub(crate) async fn logged(
    server: &Server,
    timeout: std::time::Duration,
    matches: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(line) = server.wait_for_log(std::time::Duration::ZERO, &matches) {
            return Some(line);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Creates an entity through the admin API (the test fails if refused).
pub(crate) async fn create(admin: &mut Admin, e: Entity) -> Entity {
    admin
        .create_entity(CreateEntityRequest { entity: Some(e) })
        .await
        .unwrap()
        .into_inner()
}

/// The event deliveries of one hook.
pub(crate) async fn deliveries(admin: &mut Admin, gw: &str, hook: &str) -> Vec<EventDelivery> {
    admin
        .list_event_deliveries(ListEventDeliveriesRequest {
            gateway_id: gw.into(),
            hook_id: hook.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// Polls the delivery list until `done` holds (at most 20 s).
pub(crate) async fn wait_deliveries(
    admin: &mut Admin,
    gw: &str,
    hook: &str,
    done: impl Fn(&[EventDelivery]) -> bool,
) -> Vec<EventDelivery> {
    for _ in 0..400 {
        let list = deliveries(admin, gw, hook).await;
        if done(&list) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries never reached the expected state: {:?}",
        deliveries(admin, gw, hook).await
    );
}

/// The data-plane nodes of one gateway.
pub(crate) async fn nodes(admin: &mut Admin, gateway: &str) -> Vec<DataPlaneNode> {
    admin
        .list_data_plane_nodes(ListDataPlaneNodesRequest {
            gateway_id: gateway.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .nodes
}

/// Polls the node list until `done` holds (at most 20 s): what a node
/// sends is applied by the server after the send returns.
pub(crate) async fn wait_nodes(
    admin: &mut Admin,
    gateway: &str,
    done: impl Fn(&[DataPlaneNode]) -> bool,
) -> Vec<DataPlaneNode> {
    for _ in 0..400 {
        let listed = nodes(admin, gateway).await;
        if done(&listed) {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the node list never reached the expected state: {:?}",
        nodes(admin, gateway).await
    );
}

//! The harness every end-to-end test shares: real `sluice-server` and
//! `sluice-proxy` processes on loopback ports the OS picks, admin clients,
//! and scripted data-plane nodes.

pub mod auth;
pub mod bench;
pub mod broker;
pub mod clients;
pub mod example;
pub mod haproxy;
pub mod identity;
pub mod node;
pub mod pki;
pub mod probe;
pub mod process;
pub mod raw_client;
pub mod relay;
pub mod server;
pub mod stack;
pub mod targets;
pub mod terraform;
pub mod webhook;

use std::path::PathBuf;

/// A binary of this workspace, built next to the running test
/// (`cargo test --workspace` builds every binary before it runs tests).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

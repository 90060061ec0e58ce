//! The harness every end-to-end test shares: real `sluice-server` and
//! `sluice-proxy` processes on loopback ports the OS picks, admin clients,
//! and scripted data-plane nodes.

pub mod node;
pub mod process;
pub mod server;

//! What a running data-plane node holds that every hop shares: the
//! configuration store, the broker directory, telemetry and the set of
//! open client connections.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::{
    backend::Directory, config::ConfigStore, filter::Findings, hop::HopError, telemetry::Telemetry,
};

/// The node's shared state.
pub struct Node {
    /// The node's configuration.
    pub config: Arc<ConfigStore>,
    /// Broker addresses per backend.
    pub directory: Directory,
    /// Error counts and events.
    pub telemetry: Arc<Telemetry>,
    /// Open client connections (for a bounded drain on shutdown).
    pub connections: TaskTracker,
}

impl Node {
    /// A node over a config store.
    pub fn new(config: Arc<ConfigStore>, telemetry: Arc<Telemetry>) -> Self {
        Self {
            config,
            directory: Directory::default(),
            telemetry,
            connections: TaskTracker::new(),
        }
    }

    /// Counts and logs an error at its hop.
    pub fn report(&self, error: &HopError) {
        self.telemetry.error(error);
        tracing::warn!(
            hop = error.hop.as_str(),
            entity = error.entity,
            kind = error.kind.as_str(),
            "{}",
            error.message
        );
    }

    /// Acts on what filters learned about `backend_id`: brokers go to the
    /// directory, warnings are counted.
    pub(crate) fn act_on(&self, backend_id: &str, findings: Findings) {
        self.directory.learn(backend_id, &findings.brokers);
        for warning in &findings.warnings {
            self.report(warning);
        }
    }
}

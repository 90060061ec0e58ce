//! What a running data-plane node holds that every hop shares: the
//! configuration store, the broker directory, telemetry and the set of
//! open client connections.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::{
    backend::Directory,
    config::ConfigStore,
    filter::Findings,
    hop::{Hop, HopError, Kind},
    listener::routes::Key,
    quota::Quotas,
    telemetry::Telemetry,
};

/// At most one log line per hop and kind in this long.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// When a (hop, kind) was last logged, and how many were not logged since.
type Logged = (Option<Instant>, u64);

/// What one client may cost this node: hostile clients are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections per listener (across its addresses and ports).
    pub max_connections_per_listener: usize,
    /// How long a new connection may take to send its first whole request.
    pub handshake_timeout: Duration,
    /// How long a connection may go without sending a whole request.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections_per_listener: 10_000,
            handshake_timeout: Duration::from_secs(10),
            // Kafka's own connections.max.idle.ms.
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// The node's shared state.
pub struct Node {
    /// What one client may cost.
    pub limits: Limits,
    /// Connection slots per listener id.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// When each (hop, kind) was last logged, and how many since: a flood
    /// of refusals is one log line a second, every one still counted.
    logged: Mutex<HashMap<(Hop, Kind), Logged>>,
    /// The node's configuration.
    pub config: Arc<ConfigStore>,
    /// Broker addresses per backend.
    pub directory: Directory,
    /// Error counts and events.
    pub telemetry: Arc<Telemetry>,
    /// Open client connections (for a bounded drain on shutdown).
    pub connections: TaskTracker,
    /// Quota buckets.
    pub quotas: Arc<Quotas>,
    /// The listeners this node serves (ids or names); `None`: all.
    pub listeners: Option<HashSet<String>>,
    /// The (address, port) pairs bound now (for probes).
    bound: Mutex<HashSet<Key>>,
}

impl Node {
    /// A node over a config store, with default limits.
    pub fn new(config: Arc<ConfigStore>, telemetry: Arc<Telemetry>) -> Self {
        Self::with_limits(config, telemetry, Limits::default())
    }

    /// A node over a config store.
    pub fn with_limits(
        config: Arc<ConfigStore>,
        telemetry: Arc<Telemetry>,
        limits: Limits,
    ) -> Self {
        Self {
            limits,
            slots: Mutex::default(),
            logged: Mutex::default(),
            config,
            directory: Directory::default(),
            telemetry,
            connections: TaskTracker::new(),
            quotas: Arc::default(),
            listeners: None,
            bound: Mutex::default(),
        }
    }

    /// Records the ports bound now.
    pub(crate) fn set_bound(&self, keys: impl Iterator<Item = Key>) {
        *self.bound.lock().unwrap_or_else(|p| p.into_inner()) = keys.collect();
    }

    /// Whether this node has `key` bound now.
    pub fn is_bound(&self, key: &Key) -> bool {
        self.bound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// A connection slot on `listener_id`, or `None` when it is full.
    pub fn admit(&self, listener_id: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry(listener_id.to_string())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.limits.max_connections_per_listener))
                })
                .clone()
        };
        semaphore.try_acquire_owned().ok()
    }

    /// Counts an error at its hop and logs it (at most once a second per
    /// hop and kind, saying how many were not logged).
    pub fn report(&self, error: &HopError) {
        self.telemetry.error(error);
        let suppressed = {
            let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = logged.entry((error.hop, error.kind)).or_insert((None, 0));
            if slot.0.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
                slot.1 += 1;
                return;
            }
            let suppressed = slot.1;
            *slot = (Some(now), 0);
            suppressed
        };
        tracing::warn!(
            hop = error.hop.as_str(),
            entity = error.entity,
            kind = error.kind.as_str(),
            suppressed,
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
        for event in findings.events {
            self.telemetry.event(event);
        }
        for outcome in &findings.outcomes {
            self.telemetry.outcome(outcome);
            if let Some(event) = outcome.event() {
                self.telemetry.event(event);
            }
        }
    }
}

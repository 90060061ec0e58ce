//! Live node status: kept in memory while streams run (ACKs are frequent),
//! written through on connect, NACK and disconnect, and flushed in batches.
//!
//! Every live stream is tracked by its generation, so the server can end it
//! from outside: a node id has one live stream (a newer stream of the same
//! id ends the older one), and a revocation check of its own ends every
//! stream whose certificate another process revoked (`sluice-server
//! dataplane-cert revoke` on the same data directory): this process's own
//! revocations reach the streams through the change feed, those do not.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use tokio::sync::Notify;

use sluice_proto::{
    admin::v1::{NodeHopErrors, NodePolicyOutcomes},
    dataplane::v1::NodeStatus,
};

use crate::{
    error::ApiError,
    store::{NodeRecord, Store},
};

/// How often ACKs and status reports are written to the database.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The most policy outcome counts kept per node report.
const MAX_OUTCOMES: usize = 4096;
/// How often the certificates of live streams are checked.
const REVOCATION_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Consecutive failed revocation checks after which each failure is an
/// error, not a warning: revoked nodes may be staying connected.
const CHECK_FAILURES_ALARM: u32 = 3;

type Key = (String, String);

/// Why the server ends a stream from outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its data_plane_certificate was revoked (deleted).
    Revoked,
    /// A newer stream of the same node id connected.
    Replaced,
}

/// Ends one stream: set once, seen by the stream whenever it looks.
#[derive(Default)]
pub struct Stop {
    notify: Notify,
    why: OnceLock<Ending>,
}

impl Stop {
    /// Ends the stream (the first reason given stays); whether this call
    /// did.
    fn end(&self, why: Ending) -> bool {
        let first = self.why.set(why).is_ok();
        self.notify.notify_waiters();
        first
    }

    /// Why the stream is to end, if it is.
    pub fn why(&self) -> Option<Ending> {
        self.why.get().copied()
    }

    /// Resolves when the stream is to end, with why.
    pub async fn ended(&self) -> Ending {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so no `end` falls in between.
            notified.as_mut().enable();
            if let Some(why) = self.why() {
                return why;
            }
            notified.await;
        }
    }
}

struct Entry {
    record: NodeRecord,
    /// Which stream of this node is the current one.
    generation: u64,
    /// Changed since it was last saved.
    dirty: bool,
    /// Bumped by every change, so a flush clears `dirty` only when nothing
    /// changed while it was saving.
    version: u64,
}

impl Entry {
    fn touch(&mut self) {
        self.dirty = true;
        self.version += 1;
    }
}

/// One live stream.
struct Stream {
    certificate_id: String,
    stop: Arc<Stop>,
}

#[derive(Default)]
struct State {
    /// The record of each node (its newest stream's).
    nodes: HashMap<Key, Entry>,
    /// Every stream that has not ended, by generation.
    streams: HashMap<u64, Stream>,
}

/// The nodes the sync endpoint knows.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    state: Arc<Mutex<State>>,
    generations: Arc<std::sync::atomic::AtomicU64>,
    /// One flush at a time: two overlapping flushes could commit in the
    /// wrong order and leave an older "connected" record last.
    flushing: Arc<tokio::sync::Mutex<()>>,
    /// Live probes through the nodes' streams.
    pub probes: super::probes::Probes,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Registry {
    /// A registry writing to `store`, with background tasks that flush
    /// node status and check the certificates of live streams, each on
    /// its own timer (a slow flush does not delay a revocation).
    pub fn new(store: Store) -> Self {
        let registry = Self {
            store,
            state: Arc::default(),
            generations: Arc::default(),
            flushing: Arc::default(),
            probes: super::probes::Probes::default(),
        };
        let flusher = registry.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = flusher.flush().await {
                    tracing::warn!(error = %e, "could not save node status");
                }
            }
        });
        let checker = registry.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REVOCATION_CHECK_EVERY);
            let mut failures = 0u32;
            loop {
                tick.tick().await;
                match checker.drop_revoked().await {
                    Ok(_) if failures > 0 => {
                        tracing::info!(failures, "node certificates checked again");
                        failures = 0;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failures += 1;
                        if failures >= CHECK_FAILURES_ALARM {
                            tracing::error!(
                                error = %e,
                                failures,
                                "node certificates not checked: nodes whose certificate \
                                 another process revoked stay connected until this succeeds"
                            );
                        } else {
                            tracing::warn!(error = %e, "could not check node certificates");
                        }
                    }
                }
            }
        });
        registry
    }

    /// The registry's state. A panic while it was held leaves it usable:
    /// refusing it would stop revocations reaching streams.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| {
            tracing::error!("node registry lock poisoned by a panic; carrying on with its state");
            self.state.clear_poison();
            poisoned.into_inner()
        })
    }

    fn with<R>(&self, gateway: &str, id: &str, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut state = self.state();
        state
            .nodes
            .get_mut(&(gateway.to_string(), id.to_string()))
            .map(f)
    }

    /// Records a new stream of a node; returns its generation and what
    /// ends it (its certificate revoked, or a newer stream of the node).
    /// An older stream of the same node id still open is ended: one live
    /// stream per node id, else one could outlive the other's revocation
    /// unnoticed.
    pub async fn connected(&self, mut record: NodeRecord) -> Result<(u64, Arc<Stop>), ApiError> {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        // A rejection is history worth keeping across reconnects.
        if let Some(old) = self.store.load_node(&record.gateway_id, &record.id).await? {
            record.rejected = old.rejected;
        }
        record.connected = true;
        record.last_seen_at = now();
        let key = (record.gateway_id.clone(), record.id.clone());
        let stop = Arc::new(Stop::default());
        let mut state = self.state();
        state.streams.insert(
            generation,
            Stream {
                certificate_id: record.certificate_id.clone(),
                stop: stop.clone(),
            },
        );
        // A replaced entry's version carries on, so a flush that read the
        // old one cannot mark the new one clean.
        let (version, older) = state
            .nodes
            .get(&key)
            .map_or((0, None), |e| (e.version + 1, Some(e.generation)));
        if let Some(older) = older.and_then(|g| state.streams.get(&g)) {
            tracing::warn!(
                gateway = key.0,
                node = key.1,
                "another stream of this node id connected: the older one is closed \
                 (one live stream per node id; two nodes sharing an id take turns)"
            );
            older.stop.end(Ending::Replaced);
        }
        state.nodes.insert(
            key,
            Entry {
                record,
                generation,
                dirty: true,
                version,
            },
        );
        Ok((generation, stop))
    }

    /// The node applied `revision`.
    pub fn acked(&self, gateway: &str, id: &str, revision: i64) {
        self.with(gateway, id, |e| {
            let t = now();
            e.record.applied_revision = revision;
            e.record.applied_at = t;
            e.record.last_seen_at = t;
            e.touch();
        });
    }

    /// The node refused `revision`.
    pub fn rejected(&self, gateway: &str, id: &str, revision: i64, reason: &str) {
        self.with(gateway, id, |e| {
            let t = now();
            e.record.rejected = Some((revision, reason.to_string(), t));
            e.record.last_seen_at = t;
            e.touch();
        });
    }

    /// The node reported its status.
    pub fn status(&self, gateway: &str, id: &str, status: NodeStatus) {
        // The node's clock may differ from ours: its error times are moved
        // onto ours by the difference at sending.
        const DAY_MS: i64 = 86_400_000;
        let skew = match status.sent_at_ms {
            0 => 0,
            sent => now().saturating_sub(sent).clamp(-DAY_MS, DAY_MS),
        };
        self.with(gateway, id, |e| {
            e.record.last_seen_at = now();
            e.record.errors = status
                .errors
                .into_iter()
                .map(|h| NodeHopErrors {
                    hop: h.hop,
                    entity: h.entity,
                    kind: h.kind,
                    count: h.count,
                    last_message: h.last_message,
                    detail: h.detail,
                    last_at: crate::store::nodes::ts(match h.last_at_ms {
                        0 => 0,
                        at => at.saturating_add(skew),
                    }),
                })
                .collect();
            // A node's report is bounded before it is kept: so many
            // policies and outcomes, messages cut short.
            e.record.policy_outcomes = status
                .policy_outcomes
                .into_iter()
                .take(MAX_OUTCOMES)
                .map(|o| NodePolicyOutcomes {
                    policy_id: o.policy_id.chars().take(64).collect(),
                    outcome: o.outcome.chars().take(16).collect(),
                    shadow: o.shadow,
                    count: o.count,
                    last_message: o.last_message.chars().take(512).collect(),
                })
                .collect();
            e.touch();
        });
    }

    /// The stream of `generation` ended; the node is disconnected unless a
    /// newer stream of it is open.
    pub fn disconnected(&self, gateway: &str, id: &str, generation: u64) {
        let mut state = self.state();
        state.streams.remove(&generation);
        if let Some(e) = state
            .nodes
            .get_mut(&(gateway.to_string(), id.to_string()))
            .filter(|e| e.generation == generation)
        {
            e.record.connected = false;
            e.record.last_seen_at = now();
            e.touch();
        }
    }

    /// Writes every changed record in one transaction, and forgets the
    /// disconnected ones once written. A record is clean only after a save
    /// that succeeded: when saving fails, it stays dirty and the next flush
    /// writes it again (else a node could stay "connected" forever).
    pub async fn flush(&self) -> Result<(), ApiError> {
        let _one_at_a_time = self.flushing.lock().await;
        let (keys, dirty): (Vec<(Key, u64)>, Vec<NodeRecord>) = self
            .state()
            .nodes
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(k, e)| ((k.clone(), e.version), e.record.clone()))
            .unzip();
        self.store.save_nodes(&dirty).await?;
        let mut state = self.state();
        for (key, version) in keys {
            if let Some(e) = state.nodes.get_mut(&key).filter(|e| e.version == version) {
                e.dirty = false;
            }
        }
        state.nodes.retain(|_, e| e.record.connected || e.dirty);
        Ok(())
    }

    /// Ends every live stream whose data_plane_certificate is no longer in
    /// the store (each stream a node id ever opened, not only its newest);
    /// returns how many it ended.
    pub async fn drop_revoked(&self) -> Result<usize, ApiError> {
        let certificates: Vec<String> = self
            .state()
            .streams
            .values()
            .map(|s| s.certificate_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if certificates.is_empty() {
            return Ok(0);
        }
        let live = self.store.live_certificates(&certificates).await?;
        let state = self.state();
        let mut ended = 0;
        for s in state.streams.values() {
            if !live.contains(&s.certificate_id) && s.stop.end(Ending::Revoked) {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Forgets every node of a deleted gateway, in memory and stored (one
    /// flush cannot write them back meanwhile).
    pub async fn forget_gateway(&self, gateway: &str) -> Result<(), ApiError> {
        let _one_at_a_time = self.flushing.lock().await;
        self.state().nodes.retain(|(g, _), _| g != gateway);
        self.store.forget_nodes(gateway).await
    }

    /// Every node of a gateway, current.
    pub async fn list(&self, gateway: &str) -> Result<Vec<NodeRecord>, ApiError> {
        self.flush().await?;
        self.store.load_nodes(gateway).await
    }
}

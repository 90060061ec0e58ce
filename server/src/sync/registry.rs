//! Live node status: kept in memory while streams run (ACKs are frequent),
//! written through on connect, NACK and disconnect, and flushed in batches.
//! Each flush also disconnects the nodes whose certificate another process
//! revoked (`sluice-server dataplane-cert revoke` on the same data
//! directory): this process's own revocations reach the streams through
//! the change feed, those do not.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

use sluice_proto::{admin::v1::NodeHopErrors, dataplane::v1::NodeStatus};

use crate::{
    error::ApiError,
    store::{NodeRecord, Store},
};

/// How often ACKs and status reports are written to the database (and
/// the certificates of connected nodes checked).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

type Key = (String, String);

struct Entry {
    record: NodeRecord,
    /// Which stream of this node is the current one.
    generation: u64,
    /// Changed since it was last saved.
    dirty: bool,
    /// Bumped by every change, so a flush clears `dirty` only when nothing
    /// changed while it was saving.
    version: u64,
    /// Ends the current stream: its certificate was revoked.
    revoked: Arc<Notify>,
}

impl Entry {
    fn touch(&mut self) {
        self.dirty = true;
        self.version += 1;
    }
}

/// The nodes the sync endpoint knows.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    nodes: Arc<Mutex<HashMap<Key, Entry>>>,
    generations: Arc<std::sync::atomic::AtomicU64>,
    /// One flush at a time: two overlapping flushes could commit in the
    /// wrong order and leave an older "connected" record last.
    flushing: Arc<tokio::sync::Mutex<()>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Registry {
    /// A registry writing to `store`, with a background flush task.
    pub fn new(store: Store) -> Self {
        let registry = Self {
            store,
            nodes: Arc::default(),
            generations: Arc::default(),
            flushing: Arc::default(),
        };
        let flusher = registry.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = flusher.flush().await {
                    tracing::warn!(error = %e, "could not save node status");
                }
                if let Err(e) = flusher.drop_revoked().await {
                    tracing::warn!(error = %e, "could not check node certificates");
                }
            }
        });
        registry
    }

    fn with<R>(&self, gateway: &str, id: &str, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let mut nodes = self.nodes.lock().ok()?;
        nodes.get_mut(&(gateway.to_string(), id.to_string())).map(f)
    }

    /// Records a new stream of a node; returns its generation and what
    /// tells the stream that its certificate was revoked.
    pub async fn connected(&self, mut record: NodeRecord) -> Result<(u64, Arc<Notify>), ApiError> {
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
        let revoked = Arc::new(Notify::new());
        if let Ok(mut nodes) = self.nodes.lock() {
            // A replaced entry's version carries on, so a flush that read
            // the old one cannot mark the new one clean.
            let version = nodes.get(&key).map_or(0, |e| e.version + 1);
            nodes.insert(
                key,
                Entry {
                    record,
                    generation,
                    dirty: true,
                    version,
                    revoked: revoked.clone(),
                },
            );
        }
        Ok((generation, revoked))
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
                })
                .collect();
            e.touch();
        });
    }

    /// The stream of `generation` ended; the node is disconnected unless a
    /// newer stream of it is open.
    pub fn disconnected(&self, gateway: &str, id: &str, generation: u64) {
        self.with(gateway, id, |e| {
            if e.generation == generation {
                e.record.connected = false;
                e.record.last_seen_at = now();
                e.touch();
            }
        });
    }

    /// Writes every changed record in one transaction, and forgets the
    /// disconnected ones once written. A record is clean only after a save
    /// that succeeded: when saving fails, it stays dirty and the next flush
    /// writes it again (else a node could stay "connected" forever).
    pub async fn flush(&self) -> Result<(), ApiError> {
        let _one_at_a_time = self.flushing.lock().await;
        let (keys, dirty): (Vec<(Key, u64)>, Vec<NodeRecord>) = match self.nodes.lock() {
            Ok(nodes) => nodes
                .iter()
                .filter(|(_, e)| e.dirty)
                .map(|(k, e)| ((k.clone(), e.version), e.record.clone()))
                .unzip(),
            Err(_) => return Ok(()),
        };
        self.store.save_nodes(&dirty).await?;
        if let Ok(mut nodes) = self.nodes.lock() {
            for (key, version) in keys {
                if let Some(e) = nodes.get_mut(&key).filter(|e| e.version == version) {
                    e.dirty = false;
                }
            }
            nodes.retain(|_, e| e.record.connected || e.dirty);
        }
        Ok(())
    }

    /// Ends the streams of connected nodes whose data_plane_certificate is
    /// no longer in the store.
    pub async fn drop_revoked(&self) -> Result<(), ApiError> {
        let certificates: Vec<String> = match self.nodes.lock() {
            Ok(nodes) => nodes
                .values()
                .filter(|e| e.record.connected)
                .map(|e| e.record.certificate_id.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect(),
            Err(_) => return Ok(()),
        };
        if certificates.is_empty() {
            return Ok(());
        }
        let live = self.store.live_certificates(&certificates).await?;
        if let Ok(nodes) = self.nodes.lock() {
            for e in nodes.values() {
                if e.record.connected && !live.contains(&e.record.certificate_id) {
                    e.revoked.notify_one();
                }
            }
        }
        Ok(())
    }

    /// Forgets every node of a deleted gateway, in memory and stored (one
    /// flush cannot write them back meanwhile).
    pub async fn forget_gateway(&self, gateway: &str) -> Result<(), ApiError> {
        let _one_at_a_time = self.flushing.lock().await;
        if let Ok(mut nodes) = self.nodes.lock() {
            nodes.retain(|(g, _), _| g != gateway);
        }
        self.store.forget_nodes(gateway).await
    }

    /// Every node of a gateway, current.
    pub async fn list(&self, gateway: &str) -> Result<Vec<NodeRecord>, ApiError> {
        self.flush().await?;
        self.store.load_nodes(gateway).await
    }
}

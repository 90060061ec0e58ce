//! Fan-out of committed changes to the sync streams of each gateway.
//!
//! The store publishes every committed change once, in revision order; each
//! gateway has its own bounded broadcast channel, so a write wakes only the
//! streams of its gateway, and a stream that falls more than the channel's
//! capacity behind learns it (`Lagged`) and sends its node a snapshot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sluice_proto::admin::v1::{Entity, Kind};
use tokio::sync::broadcast;

/// Changes a stream may buffer before it must fall back to a snapshot.
pub const STREAM_BUFFER: usize = 1024;

/// What a committed change did to one entity.
#[derive(Debug, Clone)]
pub enum ChangeOp {
    /// Created or updated; secret values are in clear (for data planes).
    Upsert(Box<Entity>),
    /// Deleted.
    Remove(Kind, String),
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Change {
    /// The gateway it belongs to.
    pub gateway_id: String,
    /// Its revision.
    pub revision: i64,
    /// What happened.
    pub op: ChangeOp,
}

impl Change {
    /// The id of the entity that changed.
    pub fn entity_id(&self) -> &str {
        match &self.op {
            ChangeOp::Upsert(e) => &e.id,
            ChangeOp::Remove(_, id) => id,
        }
    }

    /// The kind of the entity that changed.
    pub fn kind(&self) -> Kind {
        match &self.op {
            ChangeOp::Upsert(e) => e.kind(),
            ChangeOp::Remove(kind, _) => *kind,
        }
    }
}

/// Per-gateway broadcast channels of committed changes.
#[derive(Default)]
pub struct Hub {
    feeds: Mutex<HashMap<String, broadcast::Sender<Arc<Change>>>>,
}

impl Hub {
    /// Sends a change to every stream of its gateway (none listening: dropped).
    pub fn publish(&self, change: Change) {
        let Ok(mut feeds) = self.feeds.lock() else {
            return;
        };
        if let Some(feed) = feeds.get(&change.gateway_id) {
            if feed.receiver_count() == 0 {
                feeds.remove(&change.gateway_id);
            } else {
                let _ = feed.send(Arc::new(change));
            }
        }
    }

    /// Subscribes to a gateway's changes from now on.
    pub fn subscribe(&self, gateway_id: &str) -> broadcast::Receiver<Arc<Change>> {
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        feeds
            .entry(gateway_id.to_string())
            .or_insert_with(|| broadcast::channel(STREAM_BUFFER).0)
            .subscribe()
    }
}

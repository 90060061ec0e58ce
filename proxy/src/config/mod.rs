//! The proxy's view of its gateway's configuration: applied from the sync
//! stream's snapshots and deltas, checked and compiled before it is
//! ACKed, swapped atomically so connections read the newest without locks.

pub mod cache;
mod check;
pub(crate) mod compiled;
mod enforce;

pub use check::parse_ports;
pub use compiled::{Backend, Compiled, VirtualCluster};
pub use enforce::NotEnforced;

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;
use sluice_proto::{
    admin::v1::{Entity, Kind},
    dataplane::v1::ConfigUpdate,
};
use tokio::sync::watch;

/// One applied revision of the gateway's configuration: its entities
/// (as received, for the cache and the next delta) and their compiled
/// form (for the request path).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The revision this configuration is at (0: none yet).
    pub revision: i64,
    entities: HashMap<String, Entity>,
    compiled: Arc<Compiled>,
}

impl Config {
    /// A configuration with no entities and a hand-built compiled form,
    /// for tests that drive connections with their own filters.
    #[cfg(test)]
    pub(crate) fn from_compiled(compiled: Compiled) -> Self {
        Self {
            revision: 1,
            entities: HashMap::new(),
            compiled: Arc::new(compiled),
        }
    }

    /// A configuration holding `entities`, not compiled, for tests of
    /// what is compiled from them.
    #[cfg(test)]
    pub(crate) fn with_entities(entities: Vec<Entity>) -> Self {
        Self {
            revision: 1,
            entities: entities.into_iter().map(|e| (e.id.clone(), e)).collect(),
            compiled: Arc::default(),
        }
    }

    /// What the request path reads: routes, chains, backends.
    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.compiled
    }

    /// The configuration an update turns this one into, or why it cannot
    /// be applied (naming the entity and field).
    pub fn apply(&self, update: &ConfigUpdate) -> Result<Config, String> {
        let mut next = if update.snapshot {
            Config::default()
        } else {
            if update.base_revision != self.revision {
                return Err(format!(
                    "delta applies on top of revision {}, but this node is at revision {}",
                    update.base_revision, self.revision
                ));
            }
            self.clone()
        };
        for removed in &update.removed {
            next.entities.remove(&removed.id);
        }
        for entity in &update.upserted {
            if entity.id.is_empty() {
                return Err("an upserted entity has no id".into());
            }
            next.entities.insert(entity.id.clone(), entity.clone());
        }
        next.revision = update.revision;
        check::check(&next)?;
        next.compiled = Arc::new(compiled::compile(&next)?);
        Ok(next)
    }

    /// The entity with this id.
    pub fn get(&self, id: &str) -> Option<&Entity> {
        self.entities.get(id)
    }

    /// Every entity.
    pub fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.entities.values()
    }

    /// Every entity of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Entity> {
        self.entities.values().filter(move |e| e.kind() == kind)
    }

    /// The gateway this configuration belongs to, once known.
    pub fn gateway_id(&self) -> Option<&str> {
        self.of_kind(Kind::Gateway).next().map(|g| g.id.as_str())
    }

    /// The whole configuration as a snapshot update (for the cache).
    pub fn to_snapshot(&self) -> ConfigUpdate {
        let mut upserted: Vec<Entity> = self.entities.values().cloned().collect();
        upserted.sort_by(|a, b| a.id.cmp(&b.id));
        ConfigUpdate {
            revision: self.revision,
            snapshot: true,
            upserted,
            ..Default::default()
        }
    }
}

/// The current configuration, shared by the sync client (the writer) and
/// every connection (readers).
pub struct ConfigStore {
    current: ArcSwap<Config>,
    changed: watch::Sender<i64>,
}

impl ConfigStore {
    /// A store holding `initial`.
    pub fn new(initial: Config) -> Self {
        let revision = initial.revision;
        Self {
            current: ArcSwap::from_pointee(initial),
            changed: watch::channel(revision).0,
        }
    }

    /// The configuration now.
    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// The configuration now, without touching its reference count (for
    /// the per-frame check of whether it changed).
    pub fn peek(&self) -> arc_swap::Guard<Arc<Config>> {
        self.current.load()
    }

    /// Replaces the configuration and wakes whoever watches it.
    pub fn replace(&self, config: Config) {
        let revision = config.revision;
        self.current.store(Arc::new(config));
        self.changed.send_replace(revision);
    }

    /// A receiver that sees every new revision.
    pub fn watch(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests;

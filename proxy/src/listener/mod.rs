//! The listener hop: binds every port the configuration routes, accepts
//! clients and hands each connection its route. Ports are bound and
//! released as the configuration changes; established connections stay.

pub mod connection;
pub mod routes;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use arc_swap::ArcSwap;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tokio_util::task::TaskTracker;

use crate::{backend::Directory, config::ConfigStore, telemetry::Telemetry};
use routes::{Mapping, Route};

/// A bound address and port.
pub type Key = (String, u16);
/// Every routed port.
pub type Routes = BTreeMap<Key, (Route, Mapping)>;

/// What every connection shares.
pub struct Shared {
    /// The node's configuration.
    pub config: Arc<ConfigStore>,
    /// The routes of the current configuration.
    pub routes: ArcSwap<Routes>,
    /// Broker addresses per backend.
    pub directory: Directory,
    /// Error counts and events.
    pub telemetry: Arc<Telemetry>,
    /// Open client connections (for a bounded drain on shutdown).
    pub connections: TaskTracker,
}

impl Shared {
    /// Shared state over a config store.
    pub fn new(config: Arc<ConfigStore>, telemetry: Arc<Telemetry>) -> Self {
        Self {
            config,
            routes: ArcSwap::default(),
            directory: Directory::default(),
            telemetry,
            connections: TaskTracker::new(),
        }
    }
}

/// Keeps the bound ports in line with the configuration until `stop`.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut bound: HashMap<Key, JoinHandle<()>> = HashMap::new();
    let mut changes = shared.config.watch();
    loop {
        reconcile(&shared, &mut bound).await;
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, task) in bound {
        task.abort();
    }
}

async fn reconcile(shared: &Arc<Shared>, bound: &mut HashMap<Key, JoinHandle<()>>) {
    let wanted = routes::routes(&shared.config.current());
    shared.routes.store(Arc::new(wanted.clone()));
    bound.retain(|key, task| {
        let keep = wanted.contains_key(key);
        if !keep {
            task.abort();
            tracing::info!(
                address = key.0,
                port = key.1,
                "stopped listening (port removed)"
            );
        }
        keep
    });
    for (key, (route, _)) in wanted {
        if bound.contains_key(&key) {
            continue;
        }
        match TcpListener::bind((key.0.as_str(), key.1)).await {
            Ok(listener) => {
                tracing::info!(
                    listener = route.listener_id,
                    virtual_cluster = route.virtual_cluster_id,
                    role = ?route.role,
                    "listening on {}:{}", key.0, key.1
                );
                bound.insert(
                    key.clone(),
                    tokio::spawn(accept(listener, key, shared.clone())),
                );
            }
            Err(e) => {
                let message = format!("cannot bind {}:{}: {e}", key.0, key.1);
                shared
                    .telemetry
                    .error("listener", &route.listener_id, "bind_failed", &message);
                tracing::warn!(hop = "listener", entity = route.listener_id, "{message}");
            }
        }
    }
}

async fn accept(listener: TcpListener, key: Key, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                shared
                    .connections
                    .spawn(connection::serve(stream, key.clone(), shared.clone()));
            }
            Err(e) => {
                tracing::warn!(port = key.1, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

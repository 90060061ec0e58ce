//! The listener hop: binds every port the configuration routes, accepts
//! clients and hands each connection its route. Ports are bound and
//! released as the configuration changes; established connections stay.

pub mod routes;

use std::{collections::HashMap, sync::Arc};

use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    conn,
    hop::{Hop, HopError, Kind},
    node::Node,
};
use routes::Key;

/// Keeps the bound ports in line with the configuration until `stop`.
pub async fn run(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut bound: HashMap<Key, JoinHandle<()>> = HashMap::new();
    let mut changes = node.config.watch();
    loop {
        reconcile(&node, &mut bound).await;
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, task) in bound {
        task.abort();
    }
}

async fn reconcile(node: &Arc<Node>, bound: &mut HashMap<Key, JoinHandle<()>>) {
    let config = node.config.current();
    let wanted = &config.compiled().routes;
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
    for (key, route) in wanted {
        if bound.contains_key(key) {
            continue;
        }
        match TcpListener::bind((key.0.as_str(), key.1)).await {
            Ok(listener) => {
                tracing::info!(
                    listener = route.listener_id,
                    virtual_cluster = route.virtual_cluster.id,
                    role = ?route.role,
                    "listening on {}:{}", key.0, key.1
                );
                bound.insert(
                    key.clone(),
                    tokio::spawn(accept(listener, key.clone(), node.clone())),
                );
            }
            Err(e) => node.report(&HopError::new(
                Hop::Listener,
                route.listener_id.clone(),
                Kind::BindFailed,
                format!("cannot bind {}:{}: {e}", key.0, key.1),
            )),
        }
    }
}

async fn accept(listener: TcpListener, key: Key, node: Arc<Node>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                node.connections
                    .spawn(conn::serve(stream, key.clone(), node.clone()));
            }
            Err(e) => {
                tracing::warn!(port = key.1, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

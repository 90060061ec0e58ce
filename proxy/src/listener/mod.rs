//! The listener hop: binds every port the configuration routes, accepts
//! clients, reads their hello (PROXY header, TLS or plaintext, SNI name)
//! and hands each connection its route. Ports are bound and released as
//! the configuration changes; established connections stay.

pub mod handshake;
pub mod proxy_protocol;
pub mod routes;

use std::{collections::HashMap, sync::Arc, time::Duration};

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
    let mut retry = BIND_RETRY_MIN;
    let mut reported = None;
    loop {
        let config = node.config.current();
        if reported != Some(config.revision) {
            // Reported once per revision: configuration this node
            // cannot use, whose connections are refused.
            for problem in &config.compiled().problems {
                node.report(problem);
            }
            reported = Some(config.revision);
        }
        let all_bound = reconcile(&node, &mut bound).await;
        node.set_bound(bound.keys().cloned());
        // A port that could not be bound (in use, say) is tried again
        // with backoff, not only at the next configuration change.
        let again = if all_bound {
            retry = BIND_RETRY_MIN;
            None
        } else {
            let wait = retry;
            retry = (retry * 2).min(BIND_RETRY_MAX);
            Some(wait)
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            () = sleep_or_forever(again) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, task) in bound {
        task.abort();
    }
    node.set_bound(std::iter::empty());
}

/// First pause after a failed accept.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(50);
/// Longest pause after failed accepts.
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// First wait before binding a failed port again.
const BIND_RETRY_MIN: Duration = Duration::from_millis(500);
/// Longest wait between attempts to bind a failed port.
const BIND_RETRY_MAX: Duration = Duration::from_secs(30);

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// Binds what the configuration routes and releases what it no longer
/// does; false when some port could not be bound.
async fn reconcile(node: &Arc<Node>, bound: &mut HashMap<Key, JoinHandle<()>>) -> bool {
    let mut all_bound = true;
    let config = node.config.current();
    // The ports of the listeners this node serves.
    let serves = |listener_id: &str| {
        node.listeners.as_ref().is_none_or(|only| {
            only.contains(listener_id)
                || config
                    .get(listener_id)
                    .is_some_and(|l| only.contains(&l.name))
        })
    };
    // A name that is no listener of the gateway is a typo, not a choice
    // to serve nothing: it is reported (each revision, rate-limited).
    if let Some(only) = node.listeners.as_ref().filter(|_| config.revision > 0) {
        for name in only {
            let known = config
                .of_kind(sluice_proto::admin::v1::Kind::Listener)
                .any(|l| l.id == *name || l.name == *name);
            if !known {
                node.report(&HopError::new(
                    Hop::Listener,
                    name.clone(),
                    Kind::InvalidConfig,
                    format!(
                        "--listeners names {name:?}, which is not a listener of this gateway: \
                         this node does not serve it"
                    ),
                ));
            }
        }
    }
    let wanted: std::collections::BTreeMap<_, _> = config
        .compiled()
        .ports
        .iter()
        .filter(|(_, port)| serves(&port.listener_id))
        .collect();
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
                    tls = route.tls.is_some(),
                    "listening on {}:{}",
                    key.0,
                    key.1
                );
                bound.insert(
                    key.clone(),
                    tokio::spawn(accept(listener, key.clone(), node.clone())),
                );
            }
            Err(e) => {
                all_bound = false;
                node.report(&HopError::new(
                    Hop::Listener,
                    route.listener_id.clone(),
                    Kind::BindFailed,
                    format!("cannot bind {}:{}: {e} (retrying)", key.0, key.1),
                ));
            }
        }
    }
    all_bound
}

async fn accept(listener: TcpListener, key: Key, node: Arc<Node>) {
    let mut pause = ACCEPT_PAUSE_MIN;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                pause = ACCEPT_PAUSE_MIN;
                let listener_id = node
                    .config
                    .peek()
                    .compiled()
                    .ports
                    .get(&key)
                    .map(|r| r.listener_id.clone())
                    .unwrap_or_else(|| format!("{}:{}", key.0, key.1));
                let Some(slot) = node.admit(&listener_id) else {
                    node.report(&HopError::new(
                        Hop::Listener,
                        listener_id,
                        Kind::ConnectionLimit,
                        format!(
                            "refused {peer}: {} connections open (max_connections_per_listener)",
                            node.limits.max_connections_per_listener
                        ),
                    ));
                    continue;
                };
                let serve = conn::serve(stream, key.clone(), node.clone());
                node.connections.spawn(async move {
                    serve.await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                node.report(&HopError::new(
                    Hop::Listener,
                    format!("{}:{}", key.0, key.1),
                    Kind::AcceptFailed,
                    format!("accept failed: {e} (pausing {pause:?})"),
                ));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
            }
        }
    }
}

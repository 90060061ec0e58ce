//! One client connection: requests go to the backend as they came (only
//! their header is read), responses come back untouched unless they carry
//! broker addresses, which are rewritten for this listener. The route is
//! read again for every response, so configuration changes apply to the
//! next request without dropping the connection; when the listener port
//! is removed, the connection stops taking requests, answers what is in
//! flight and closes.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sluice_proto::admin::v1::{Kind, entity::Spec};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use super::{Key, Shared};
use crate::{
    backend::{self, HopError},
    kafka::{
        frame::{self, MAX_FRAME},
        rewrite,
    },
};

/// How long a connection on a removed port may finish its in-flight requests.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves one accepted client connection on `key`.
pub async fn serve(client: TcpStream, key: Key, shared: Arc<Shared>) {
    let peer = client
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    match run(client, &key, &shared).await {
        Ok(()) => tracing::debug!(%peer, port = key.1, "client connection closed"),
        Err(e) => {
            shared.telemetry.error(e.hop, &e.entity, e.kind, &e.message);
            tracing::warn!(%peer, hop = e.hop, entity = e.entity, kind = e.kind, "{}", e.message);
        }
    }
}

async fn run(client: TcpStream, key: &Key, shared: &Shared) -> Result<(), HopError> {
    let routes = shared.routes.load_full();
    let Some((route, _)) = routes.get(key) else {
        return Err(HopError {
            hop: "listener",
            entity: format!("{}:{}", key.0, key.1),
            kind: "no_forward_policy",
            message: "no forward policy routes this port".into(),
        });
    };
    let config = shared.config.current();
    let vc_error = |kind, message: String| HopError {
        hop: "virtual_cluster",
        entity: route.virtual_cluster_id.clone(),
        kind,
        message,
    };
    let Some(Spec::VirtualCluster(vc)) = config
        .get(&route.virtual_cluster_id)
        .and_then(|e| e.spec.as_ref())
    else {
        return Err(vc_error(
            "unknown_virtual_cluster",
            "the forward policy's virtual cluster is not in this node's config".into(),
        ));
    };
    let backend_id = vc.destination_id.clone();
    let Some(Spec::BackendCluster(backend)) = config
        .get(&backend_id)
        .filter(|e| e.kind() == Kind::BackendCluster)
        .and_then(|e| e.spec.as_ref())
    else {
        return Err(vc_error(
            "unknown_backend_cluster",
            format!("backend cluster {backend_id} is not in this node's config"),
        ));
    };
    let (upstream, _) =
        backend::connect(&backend_id, backend, route.role, &shared.directory).await?;
    let _ = client.set_nodelay(true);
    let (mut client_read, client_write) = client.into_split();
    let (mut upstream_read, upstream_write) = upstream.into_split();
    let (mut client_write, mut upstream_write) = (client_write, upstream_write);
    let pending: Mutex<HashMap<i32, (i16, i16)>> = Mutex::default();
    let draining = AtomicBool::new(false);
    let listener_entity = route.listener_id.clone();
    let backend_entity = backend_id.clone();

    let requests = async {
        loop {
            let frame = match frame::read_frame(&mut client_read, MAX_FRAME).await {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(false),
                Err(e) => {
                    return Err(HopError {
                        hop: "listener",
                        entity: listener_entity.clone(),
                        kind: "bad_frame",
                        message: format!("client: {e}"),
                    });
                }
            };
            if !shared.routes.load().contains_key(key) {
                // The port was removed: take no more requests, let what is
                // in flight finish.
                draining.store(true, Ordering::Relaxed);
                return Ok(true);
            }
            let Some((api_key, version, correlation)) = frame::request_key(&frame.body()) else {
                return Err(HopError {
                    hop: "listener",
                    entity: listener_entity.clone(),
                    kind: "bad_frame",
                    message: "request shorter than its header".into(),
                });
            };
            if rewrite::needs_rewrite(api_key, version)
                && rewrite::expects_response(api_key, version, &frame.body())
            {
                pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(correlation, (api_key, version));
            }
            if let Err(e) = upstream_write.write_all(frame.wire()).await {
                return Err(HopError {
                    hop: "backend_cluster",
                    entity: backend_entity.clone(),
                    kind: "write_failed",
                    message: e.to_string(),
                });
            }
        }
    };
    let responses = async {
        loop {
            let frame = match frame::read_frame(&mut upstream_read, MAX_FRAME).await {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(HopError {
                        hop: "backend_cluster",
                        entity: backend_entity.clone(),
                        kind: "bad_frame",
                        message: format!("broker: {e}"),
                    });
                }
            };
            let tracked = match frame::response_correlation(&frame.body()) {
                Some(c) => lock(&pending).remove(&c),
                None => None,
            };
            let sent = match tracked {
                None => client_write.write_all(frame.wire()).await,
                Some((api_key, version)) => {
                    let routes = shared.routes.load();
                    let Some((_, mapping)) = routes.get(key) else {
                        return Ok(());
                    };
                    match rewrite::rewrite(api_key, version, frame.body(), mapping) {
                        Ok((out, findings)) => {
                            shared.directory.learn(&backend_entity, &findings.brokers);
                            for message in findings.unmapped {
                                shared.telemetry.error(
                                    "listener",
                                    &listener_entity,
                                    "broker_outside_mapping",
                                    &message,
                                );
                                tracing::warn!(
                                    hop = "listener",
                                    entity = listener_entity,
                                    "{message}"
                                );
                            }
                            frame::write_frame(&mut client_write, &out).await
                        }
                        Err(e) => {
                            return Err(HopError {
                                hop: "backend_cluster",
                                entity: backend_entity.clone(),
                                kind: "undecodable_response",
                                message: format!("{e:#}"),
                            });
                        }
                    }
                }
            };
            if sent.is_err() {
                return Ok(());
            }
            if draining.load(Ordering::Relaxed) && lock(&pending).is_empty() {
                return Ok(());
            }
        }
    };
    tokio::pin!(requests, responses);
    tokio::select! {
        r = &mut requests => match r {
            Ok(true) if !lock(&pending).is_empty() => {
                tokio::time::timeout(DRAIN, &mut responses).await.unwrap_or(Ok(()))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
        r = &mut responses => r,
    }
}

/// The pending map, even if a panicking holder poisoned it (it only
/// holds plain data).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

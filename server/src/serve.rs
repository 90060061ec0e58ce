//! `sluice-server serve`: opens the store, serves the admin API (with gRPC
//! health and reflection) and the data-plane sync endpoint until SIGINT or
//! SIGTERM.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use sluice_proto::admin::v1::admin_service_server::AdminServiceServer;
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::{
    api::AdminApi,
    events::dispatch::{Dispatcher, RetryPolicy},
    retention::{self, Retention},
    secrets::MasterKey,
    store::Store,
    sync::{self, Registry},
};

/// How long shutdown waits for in-flight admin calls.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything `serve` needs, from flags or `SLUICE_*` variables.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Directory holding the SQLite database (and, by default, the master key).
    pub data_dir: PathBuf,
    /// Address of the admin gRPC API.
    pub admin_listen: SocketAddr,
    /// Address of the data-plane sync endpoint (mTLS).
    pub sync_listen: SocketAddr,
    /// Extra names (DNS or IP) the sync endpoint's certificate carries.
    pub sync_server_names: Vec<String>,
    /// The master key file; `<data_dir>/master.key` when unset.
    pub master_key_file: Option<PathBuf>,
    /// PEM certificate chain for TLS on the admin API.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the admin API.
    pub tls_key: Option<PathBuf>,
    /// Keep only this many revisions in the log (None: all).
    pub revision_log_keep: Option<i64>,
    /// How event deliveries are retried.
    pub event_retry: RetryPolicy,
    /// How long finished deliveries and departed nodes are kept.
    pub retention: Retention,
}

/// Opens the store of `data_dir`, creating the directory and master key
/// when missing.
pub async fn open_store(
    data_dir: &std::path::Path,
    key_file: Option<&std::path::Path>,
) -> anyhow::Result<Store> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let key_path = key_file.map_or_else(|| data_dir.join("master.key"), PathBuf::from);
    let key = MasterKey::load_or_create(&key_path)?;
    Store::open(data_dir, key).await
}

fn tls_config(config: &ServeConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    match (&config.tls_cert, &config.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let cert = std::fs::read(cert)
                .with_context(|| format!("reading --tls-cert {}", cert.display()))?;
            let key = std::fs::read(key)
                .with_context(|| format!("reading --tls-key {}", key.display()))?;
            Ok(Some(
                ServerTlsConfig::new().identity(Identity::from_pem(cert, key)),
            ))
        }
        _ => anyhow::bail!("--tls-cert and --tls-key go together: set both or neither"),
    }
}

/// The names the sync endpoint's certificate is valid for: loopback, the
/// listen address when it is specific, and the configured extras.
fn sync_names(config: &ServeConfig) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = config.sync_listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    names.extend(config.sync_server_names.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Runs the admin API and the sync endpoint until a shutdown signal.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let tls = tls_config(&config)?;
    let store = open_store(&config.data_dir, config.master_key_file.as_deref())
        .await?
        .with_revision_retention(config.revision_log_keep);
    store.mark_all_nodes_disconnected().await?;
    if store.count_tokens().await? == 0 {
        tracing::warn!(
            "no usable admin token exists (none yet, or all expired or revoked); create one with: sluice-server token create --name admin --data-dir {}",
            config.data_dir.display()
        );
    }
    let registry = Registry::new(store.clone());
    tokio::spawn(Dispatcher::new(store.clone(), config.event_retry)?.run());
    tokio::spawn(retention::run(store.clone(), config.retention));

    // On SIGINT/SIGTERM: stop accepting, let in-flight calls finish, but do
    // not wait on idle client connections longer than the drain bound.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |rx: &watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let (sync_addr, sync_serve) = sync::bind(
        store.clone(),
        registry.clone(),
        config.sync_listen,
        sync_names(&config),
        stopped(&stop_rx),
    )
    .await?;
    tracing::info!(address = %sync_addr, "data-plane sync endpoint listening on https://{sync_addr}");

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AdminServiceServer<AdminApi>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sluice_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sluice_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding the admin API to {}", config.admin_listen))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %local, data_dir = %config.data_dir.display(), "admin API listening on {scheme}://{local}");

    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .context("configuring TLS for the admin API")?;
    }
    let admin_serve = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AdminServiceServer::new(AdminApi::new(
            store.clone(),
            registry.clone(),
        )))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopped(&stop_rx));
    let both = async {
        let (admin, sync) = tokio::join!(admin_serve, sync_serve);
        admin?;
        sync
    };
    let stop = stopped(&stop_rx);
    let drain_deadline = async move {
        stop.await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        served = both => served?,
        () = drain_deadline => tracing::warn!("connections still open after {DRAIN:?}; closing them"),
    }
    registry.flush().await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

//! `sluice-server serve`: opens the store and serves the admin API (with
//! gRPC health and reflection) until SIGINT or SIGTERM.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use sluice_proto::admin::v1::admin_service_server::AdminServiceServer;
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::{api::AdminApi, secrets::MasterKey, store::Store};

/// How long shutdown waits for in-flight admin calls.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything `serve` needs, from flags or `SLUICE_*` variables.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Directory holding the SQLite database (and, by default, the master key).
    pub data_dir: PathBuf,
    /// Address of the admin gRPC API.
    pub admin_listen: SocketAddr,
    /// The master key file; `<data_dir>/master.key` when unset.
    pub master_key_file: Option<PathBuf>,
    /// PEM certificate chain for TLS on the admin API.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the admin API.
    pub tls_key: Option<PathBuf>,
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

/// Runs the admin server until a shutdown signal.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let tls = tls_config(&config)?;
    let store = open_store(&config.data_dir, config.master_key_file.as_deref()).await?;
    if store.count_tokens().await? == 0 {
        tracing::warn!(
            "no admin token exists yet; create one with: sluice-server token create --name admin --data-dir {}",
            config.data_dir.display()
        );
    }

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
    // On SIGINT/SIGTERM: stop accepting, let in-flight calls finish, but
    // do not wait on idle client connections longer than the drain bound.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut stopping = stop_rx.clone();
    let serve = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AdminServiceServer::new(AdminApi::new(store.clone())))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            let _ = stopping.wait_for(|s| *s).await;
        });
    let mut draining = stop_rx;
    let drain_deadline = async move {
        let _ = draining.wait_for(|s| *s).await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        served = serve => served?,
        () = drain_deadline => tracing::warn!("connections still open after {DRAIN:?}; closing them"),
    }
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

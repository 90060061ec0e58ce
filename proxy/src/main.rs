//! `sluice-proxy`: the Sluice data plane.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sluice_proxy::{
    config::{Config, ConfigStore, cache::Cache},
    listener,
    node::{Limits, Node},
    quota::Quotas,
    sync::{self, SyncOptions},
    telemetry::Telemetry,
};

/// How long shutdown waits for open client connections.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The Sluice data plane: takes its configuration from the control plane.
#[derive(Parser)]
#[command(name = "sluice-proxy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long, global = true, env = "SLUICE_LOG", default_value = "info")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to the control plane, keep this node's configuration current and proxy Kafka.
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The control plane's sync endpoint (`host:port` or `https://host:port`).
    #[arg(long, env = "SLUICE_CONTROL_PLANE", default_value = "127.0.0.1:7601")]
    control_plane: String,
    /// This node's certificate (PEM), from `sluice-server dataplane-cert issue`.
    #[arg(long, env = "SLUICE_CERT")]
    cert: PathBuf,
    /// This node's private key (PEM).
    #[arg(long, env = "SLUICE_KEY")]
    key: PathBuf,
    /// The CA that signed the control plane's sync endpoint (ca.crt).
    #[arg(long, env = "SLUICE_CA")]
    ca: PathBuf,
    /// Where the last applied configuration and the node id are kept.
    #[arg(long, env = "SLUICE_CACHE_DIR", default_value = "./sluice-proxy-cache")]
    cache_dir: PathBuf,
    /// This node's id (default: generated once and kept in the cache dir).
    #[arg(long, env = "SLUICE_NODE_ID")]
    node_id: Option<String>,
    /// Open client connections allowed per listener; more are refused
    /// (listener hop, connection_limit).
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS_PER_LISTENER", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_listener: u32,
    /// Seconds a new client connection has to send its first whole request.
    #[arg(long, env = "SLUICE_HANDSHAKE_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout: u64,
    /// Seconds a client connection may go without sending a whole request
    /// (Kafka's connections.max.idle.ms is 600).
    #[arg(long, env = "SLUICE_IDLE_TIMEOUT", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Serve only these listeners (ids or names, comma-separated): a pool
    /// of nodes per listener, or several nodes on one host. Default: every
    /// listener of the gateway.
    #[arg(long, env = "SLUICE_LISTENERS", value_delimiter = ',')]
    listeners: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let cache = Cache::new(&args.cache_dir)?;
    let node_id = match args.node_id {
        Some(id) => id,
        None => cache.node_id()?,
    };
    let initial = match cache.load() {
        Ok(Some(config)) => {
            tracing::info!(
                revision = config.revision,
                "starting from the cached config"
            );
            config
        }
        Ok(None) => Config::default(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "ignoring the config cache");
            Config::default()
        }
    };
    let endpoint = if args.control_plane.contains("://") {
        args.control_plane.clone()
    } else {
        format!("https://{}", args.control_plane)
    };
    let options = SyncOptions {
        endpoint,
        ca_pem: read(&args.ca, "--ca")?,
        cert_pem: read(&args.cert, "--cert")?,
        key_pem: read(&args.key, "--key")?,
        node_id: node_id.clone(),
        hostname: std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into()),
    };
    let store = Arc::new(ConfigStore::new(initial));
    tracing::info!(
        node_id,
        control_plane = options.endpoint,
        "sluice-proxy started"
    );
    let telemetry = Arc::new(Telemetry::default());
    let quotas = Arc::new(Quotas::default());
    let limits = Limits {
        max_connections_per_listener: args.max_connections_per_listener as usize,
        handshake_timeout: std::time::Duration::from_secs(args.handshake_timeout),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
    };
    let mut node = Node::with_limits(store.clone(), telemetry.clone(), limits);
    node.quotas = quotas.clone();
    if !args.listeners.is_empty() {
        let names: std::collections::HashSet<String> = args
            .listeners
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        anyhow::ensure!(
            !names.is_empty(),
            "--listeners: name at least one listener (id or name)"
        );
        node.listeners = Some(names);
    }
    let node = Arc::new(node);
    let sync = tokio::spawn(sync::run(
        options,
        store.clone(),
        Some(cache),
        telemetry,
        quotas,
        sluice_proxy::probe::Prober::new(node.clone()),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let listeners = tokio::spawn(listener::run(node.clone(), stopped));
    let refresh = tokio::spawn(sluice_proxy::backend::refresh_loop(node.clone()));
    shutdown_signal().await;
    // Stop accepting and stop following the control plane; then every
    // connection drains as if its port were removed: it takes no more
    // requests, answers what is in flight and closes (bounded).
    let _ = stop.send(true);
    let _ = listeners.await;
    sync.abort();
    refresh.abort();
    store.replace(Config::default());
    node.connections.close();
    if tokio::time::timeout(DRAIN, node.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

//! `sluice-server`: the Sluice control plane.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use sluice_server::{
    cli::CertSelector,
    events::dispatch::RetryPolicy,
    retention::Retention,
    serve::{self, ServeConfig},
    store::TokenSelector,
};

/// The Sluice control plane: stores gateway configuration and serves the admin API.
#[derive(Parser)]
#[command(name = "sluice-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing's EnvFilter syntax, e.g. `info,sluice_server=debug`).
    #[arg(long, global = true, env = "SLUICE_LOG", default_value = "info")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the admin gRPC API.
    Serve(ServeArgs),
    /// Manage admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage data-plane node certificates.
    #[command(subcommand, name = "dataplane-cert")]
    DataplaneCert(DataplaneCertCommand),
    /// Diagnose a client's path through a gateway ("which hop failed?")
    /// over the admin API: exit 0 no fault found, 3 a fault found, 1 error.
    Diagnose(sluice_server::diagnose::command::DiagnoseArgs),
}

#[derive(Subcommand)]
enum DataplaneCertCommand {
    /// Issue a node certificate for a gateway: writes ca.crt (to trust the
    /// sync endpoint), tls.crt and tls.key (0600) into --out, prints its id.
    Issue {
        /// The gateway's name or id.
        #[arg(long, env = "SLUICE_GATEWAY")]
        gateway: String,
        /// Directory to write the files into (created if missing).
        #[arg(long, env = "SLUICE_CERT_OUT")]
        out: PathBuf,
        /// Name of the data_plane_certificate entity (default: node-<random>).
        #[arg(long, env = "SLUICE_CERT_NAME")]
        name: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// List a gateway's node certificates, however they were made: id,
    /// name, created, expires, SHA-256 fingerprint (or a JSON array).
    List {
        /// The gateway's name or id.
        #[arg(long, env = "SLUICE_GATEWAY")]
        gateway: String,
        /// Print a JSON array of objects instead of a table.
        #[arg(long, env = "SLUICE_OUTPUT_JSON")]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke (delete) node certificates by id, or every one of a gateway;
    /// a server running on the same data directory disconnects their
    /// nodes within seconds, and refuses them from then on.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Revoke {
        /// The certificate's id (from `dataplane-cert list`).
        #[arg(long, env = "SLUICE_REVOKE_CERT_ID")]
        id: Option<String>,
        /// The gateway (name or id): with --all, whose certificates; with
        /// --id, the one it must belong to. (Not SLUICE_GATEWAY, which
        /// `issue` and `list` read: a gateway exported for those must
        /// never select what to revoke.)
        #[arg(long, env = "SLUICE_REVOKE_CERT_GATEWAY")]
        gateway: Option<String>,
        /// Every certificate of --gateway.
        #[arg(long, env = "SLUICE_REVOKE_ALL_CERTS", requires = "gateway")]
        all: bool,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Args)]
struct DataDir {
    /// Directory for the SQLite database and the master key.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
    data_dir: PathBuf,
    /// File holding the 32-byte key secrets are encrypted with (created 0600 if absent).
    #[arg(
        long,
        env = "SLUICE_MASTER_KEY_FILE",
        default_value = "<data-dir>/master.key"
    )]
    master_key_file: String,
}

impl DataDir {
    fn key_file(&self) -> Option<PathBuf> {
        (self.master_key_file != "<data-dir>/master.key")
            .then(|| PathBuf::from(&self.master_key_file))
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// Address of the admin gRPC API (port 0 picks a free port; the log says which).
    #[arg(long, env = "SLUICE_ADMIN_LISTEN", default_value = "127.0.0.1:7600")]
    admin_listen: SocketAddr,
    /// Address of the data-plane sync endpoint (mTLS; nodes need a data_plane_certificate).
    #[arg(long, env = "SLUICE_SYNC_LISTEN", default_value = "127.0.0.1:7601")]
    sync_listen: SocketAddr,
    /// Extra DNS names or IPs for the sync endpoint's certificate (loopback is always included).
    #[arg(long, env = "SLUICE_SYNC_SERVER_NAMES", value_delimiter = ',')]
    sync_server_name: Vec<String>,
    /// Keep only the newest N revisions in the log; nodes resuming from older ones get a snapshot (0: keep all).
    #[arg(long, env = "SLUICE_REVISION_LOG_KEEP", default_value_t = 0)]
    revision_log_keep: i64,
    /// Delivery attempts before an event hook's event is marked dead.
    #[arg(long, env = "SLUICE_EVENT_MAX_ATTEMPTS", default_value_t = 10)]
    event_max_attempts: u32,
    /// Delay before the first retry of a failed event delivery (doubles each time, with jitter).
    #[arg(long, env = "SLUICE_EVENT_RETRY_BASE_MS", default_value_t = 1000)]
    event_retry_base_ms: u64,
    /// Longest delay between event delivery retries.
    #[arg(long, env = "SLUICE_EVENT_RETRY_MAX_MS", default_value_t = 300_000)]
    event_retry_max_ms: u64,
    /// Keep delivered and dead event deliveries this long after they finished (0: forever).
    #[arg(long, env = "SLUICE_EVENT_DELIVERY_RETENTION", default_value = "7d", value_parser = sluice_server::duration::parse)]
    event_delivery_retention: Duration,
    /// Keep disconnected data-plane nodes listed this long after they were last seen (0: forever).
    #[arg(long, env = "SLUICE_DATAPLANE_NODE_RETENTION", default_value = "7d", value_parser = sluice_server::duration::parse)]
    dataplane_node_retention: Duration,
    /// PEM certificate chain: serve the admin API over TLS (needs --tls-key).
    #[arg(long, env = "SLUICE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "SLUICE_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an admin token and print it (only the token) on stdout.
    Create {
        /// A name to recognise the token by.
        #[arg(long, env = "SLUICE_TOKEN_NAME")]
        name: String,
        /// Refuse the token after this long (30d, 12h, 90m, 45s; default: never).
        #[arg(long, env = "SLUICE_TOKEN_EXPIRES_IN", value_parser = sluice_server::duration::parse)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        data: DataDir,
    },
    /// List every admin token: id, name, created, expires, status
    /// (active, expired or revoked). Token values are never stored.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke admin tokens by id or name (both: the token must match both);
    /// a running server refuses them from its next call.
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["id", "name"])))]
    Revoke {
        /// The token's id (from `token list`).
        #[arg(long, env = "SLUICE_REVOKE_TOKEN_ID")]
        id: Option<String>,
        /// Every live token with this name. (Its variable is not
        /// SLUICE_TOKEN_NAME, which `token create` reads: a name exported
        /// for creating must never revoke by itself.)
        #[arg(long, env = "SLUICE_REVOKE_TOKEN_NAME")]
        name: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS crypto provider for the whole process (the webhook client
    // uses the process default).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Diagnose(args) => return sluice_server::diagnose::command::run(args).await,
        Command::Serve(args) => {
            serve::run(ServeConfig {
                master_key_file: args.data.key_file(),
                data_dir: args.data.data_dir,
                admin_listen: args.admin_listen,
                sync_listen: args.sync_listen,
                sync_server_names: args.sync_server_name,
                tls_cert: args.tls_cert,
                tls_key: args.tls_key,
                revision_log_keep: (args.revision_log_keep > 0).then_some(args.revision_log_keep),
                retention: Retention {
                    event_deliveries: Some(args.event_delivery_retention).filter(|d| !d.is_zero()),
                    dataplane_nodes: Some(args.dataplane_node_retention).filter(|d| !d.is_zero()),
                },
                event_retry: RetryPolicy {
                    max_attempts: args.event_max_attempts.max(1),
                    base: Duration::from_millis(args.event_retry_base_ms.max(1)),
                    max: Duration::from_millis(
                        args.event_retry_max_ms.max(args.event_retry_base_ms).max(1),
                    ),
                },
            })
            .await
        }
        Command::Token(TokenCommand::Create {
            name,
            expires_in,
            data,
        }) => create_token(&name, expires_in, &data).await,
        Command::Token(TokenCommand::List { data }) => list_tokens(&data).await,
        Command::Token(TokenCommand::Revoke { id, name, data }) => {
            revoke_tokens(TokenSelector { id, name }, &data).await
        }
        Command::DataplaneCert(DataplaneCertCommand::Issue {
            gateway,
            out,
            name,
            data,
        }) => {
            let store = serve::open_store(&data.data_dir, data.key_file().as_deref()).await;
            match store {
                Ok(store) => {
                    let issued =
                        sluice_server::cli::issue_dataplane_cert(&store, &gateway, &out, name)
                            .await;
                    store.close().await;
                    issued.map(|id| println!("{id}"))
                }
                Err(e) => Err(e),
            }
        }
        Command::DataplaneCert(DataplaneCertCommand::List {
            gateway,
            json,
            data,
        }) => list_certs(&gateway, json, &data).await,
        Command::DataplaneCert(DataplaneCertCommand::Revoke {
            id,
            gateway,
            all,
            data,
        }) => revoke_certs(CertSelector { id, gateway, all }, &data).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn create_token(
    name: &str,
    expires_in: Option<Duration>,
    data: &DataDir,
) -> anyhow::Result<()> {
    if name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    if expires_in.is_some_and(|d| d.is_zero()) {
        anyhow::bail!("--expires-in must be longer than 0");
    }
    let store = serve::open_store(&data.data_dir, data.key_file().as_deref()).await?;
    let token = store.create_token(name, expires_in).await?;
    store.close().await;
    println!("{}", token.token);
    Ok(())
}

/// Unix ms as RFC 3339 (`-` for 0: never).
fn when(millis: i64) -> String {
    if millis == 0 {
        return "-".into();
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| millis.to_string())
}

async fn list_tokens(data: &DataDir) -> anyhow::Result<()> {
    let store = serve::open_store(&data.data_dir, data.key_file().as_deref()).await?;
    let tokens = store.list_tokens().await;
    store.close().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    println!("ID\tNAME\tCREATED\tEXPIRES\tSTATUS");
    for t in tokens? {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            t.id,
            t.name,
            when(t.created_at),
            when(t.expires_at),
            t.status(now)
        );
    }
    Ok(())
}

async fn revoke_tokens(which: TokenSelector, data: &DataDir) -> anyhow::Result<()> {
    let store = serve::open_store(&data.data_dir, data.key_file().as_deref()).await?;
    let revoked = store.revoke_tokens(&which).await;
    store.close().await;
    let revoked = revoked?;
    if revoked.is_empty() {
        anyhow::bail!("no live admin token matches (see `sluice-server token list`)");
    }
    for id in &revoked {
        eprintln!("revoked admin token {id}");
    }
    Ok(())
}

async fn list_certs(gateway: &str, json: bool, data: &DataDir) -> anyhow::Result<()> {
    let store = serve::open_store(&data.data_dir, data.key_file().as_deref()).await?;
    let listed = sluice_server::cli::list_dataplane_certs(&store, gateway).await;
    store.close().await;
    let (_, certificates) = listed?;
    if json {
        let array = sluice_server::cli::certificates_json(&certificates);
        println!("{}", serde_json::to_string_pretty(&array)?);
    } else {
        print!("{}", sluice_server::cli::certificates_table(&certificates));
    }
    Ok(())
}

async fn revoke_certs(which: CertSelector, data: &DataDir) -> anyhow::Result<()> {
    let store = serve::open_store(&data.data_dir, data.key_file().as_deref()).await?;
    // Each is printed once it is gone: a failure part-way leaves a record
    // of what was revoked before it.
    let revoked = sluice_server::cli::revoke_dataplane_certs(&store, &which, |c| {
        eprintln!("revoked data_plane_certificate {:?} ({})", c.name, c.id);
    })
    .await;
    store.close().await;
    let revoked = revoked?;
    if revoked == 0 {
        anyhow::bail!("the gateway has no data_plane_certificate to revoke");
    }
    eprintln!(
        "a sluice-server running on this data directory disconnects the nodes using {} within a \
         few seconds and refuses them from then on",
        if revoked == 1 { "it" } else { "them" }
    );
    Ok(())
}

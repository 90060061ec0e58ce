//! `sluice-server diagnose`: the Diagnose RPC from a shell, printed as
//! text or JSON. Exit status: 0 no fault found, 3 a fault was found, 1
//! the diagnosis could not run.

use std::{process::ExitCode, time::Duration};

use clap::Args;
use sluice_proto::admin::v1::{DiagnoseRequest, admin_service_client::AdminServiceClient};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// The diagnose command's flags.
#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    /// The admin API (`http://host:port`, or `https://` with --ca-certificate).
    #[arg(long, env = "SLUICE_ENDPOINT", default_value = "http://127.0.0.1:7600")]
    pub endpoint: String,
    /// An admin token (`sluice-server token create`).
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// PEM (or a file holding it) of the CA of an https:// endpoint.
    #[arg(long, env = "SLUICE_CA_CERTIFICATE")]
    pub ca_certificate: Option<String>,
    /// The gateway's name or id.
    #[arg(long, env = "SLUICE_GATEWAY")]
    pub gateway: String,
    /// The host:port the client bootstraps from.
    #[arg(long, env = "SLUICE_DIAGNOSE_ADDRESS", default_value = "")]
    pub address: String,
    /// The TLS SNI host name the client asks for.
    #[arg(long, env = "SLUICE_DIAGNOSE_SNI_HOST", default_value = "")]
    pub sni_host: String,
    /// The virtual cluster the client expects (name or id).
    #[arg(long, env = "SLUICE_DIAGNOSE_VIRTUAL_CLUSTER", default_value = "")]
    pub virtual_cluster: String,
    /// The principal the client authenticates as.
    #[arg(long, env = "SLUICE_DIAGNOSE_PRINCIPAL", default_value = "")]
    pub principal: String,
    /// A topic the client uses, as it names it.
    #[arg(long, env = "SLUICE_DIAGNOSE_TOPIC", default_value = "")]
    pub topic: String,
    /// What the client saw (its error message).
    #[arg(long, env = "SLUICE_DIAGNOSE_SYMPTOM", default_value = "")]
    pub symptom: String,
    /// Ask the connected nodes to probe the path live (no records sent).
    #[arg(long, env = "SLUICE_DIAGNOSE_PROBE")]
    pub probe: bool,
    /// How long to wait for probes, in milliseconds (0: 8000; at most 30000).
    #[arg(long, env = "SLUICE_DIAGNOSE_PROBE_TIMEOUT_MS", default_value_t = 0)]
    pub probe_timeout_ms: u32,
    /// text | json
    #[arg(long, env = "SLUICE_DIAGNOSE_OUTPUT", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

/// Runs the command.
pub async fn run(args: DiagnoseArgs) -> ExitCode {
    match diagnose(&args).await {
        Ok(response) => {
            match args.output.as_str() {
                "json" => println!("{:#}", super::render::json(&response)),
                _ => print!("{}", super::render::text(&response)),
            }
            if response.domain == "none" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn diagnose(
    args: &DiagnoseArgs,
) -> anyhow::Result<sluice_proto::admin::v1::DiagnoseResponse> {
    anyhow::ensure!(
        !args.token.trim().is_empty(),
        "--token (SLUICE_TOKEN) is empty"
    );
    let mut endpoint = Endpoint::from_shared(args.endpoint.clone())
        .map_err(|e| anyhow::anyhow!("--endpoint {:?}: {e}", args.endpoint))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    if let Some(ca) = &args.ca_certificate {
        let pem = match ca.trim_start().starts_with("-----BEGIN") {
            true => ca.clone(),
            false => std::fs::read_to_string(ca)
                .map_err(|e| anyhow::anyhow!("--ca-certificate {ca}: {e}"))?,
        };
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", args.endpoint))?;
    let token: tonic::metadata::MetadataValue<_> = format!("Bearer {}", args.token.trim())
        .parse()
        .map_err(|_| anyhow::anyhow!("--token holds characters a header cannot"))?;
    let mut client =
        AdminServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
            Ok(request)
        });
    let response = client
        .diagnose(DiagnoseRequest {
            gateway: args.gateway.clone(),
            address: args.address.clone(),
            sni_host: args.sni_host.clone(),
            virtual_cluster: args.virtual_cluster.clone(),
            principal: args.principal.clone(),
            symptom: args.symptom.clone(),
            topic: args.topic.clone(),
            probe: args.probe,
            probe_timeout_ms: args.probe_timeout_ms,
        })
        .await
        .map_err(|s| anyhow::anyhow!("Diagnose: {} ({:?})", s.message(), s.code()))?;
    Ok(response.into_inner())
}

//! The plugin protocol layer, apart from the resources: go-plugin's
//! handshake (magic cookie, AutoMTLS, the handshake line), the controller
//! service, and values on the wire.

pub mod tls;
pub mod value;

use std::{io::Write, sync::Arc};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use sluice_proto::{
    plugin::{
        Empty,
        grpc_controller_server::{GrpcController, GrpcControllerServer},
    },
    tfplugin6::provider_server::{Provider, ProviderServer},
};
use tokio::{net::TcpListener, sync::Notify};
use tokio_stream::{StreamExt, wrappers::TcpListenerStream};
use tonic::{Request, Response, Status};

/// The largest message either way: Terraform's own limit (256 MiB), so a
/// large configuration or state is never refused by tonic's 4 MiB default.
pub const MAX_MESSAGE: usize = 256 << 20;

/// The cookie Terraform sets for its providers.
const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Whether Terraform (a go-plugin host) started this process.
pub fn started_by_terraform() -> bool {
    std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE)
}

struct Controller(Arc<Notify>);

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.0.notify_one();
        Ok(Response::new(Empty {}))
    }
}

/// Serves `provider` to the go-plugin host until it asks us to shut down.
pub async fn serve<P: Provider>(provider: P) -> anyhow::Result<()> {
    if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS")
        && !versions.split(',').any(|v| v.trim() == "6")
    {
        anyhow::bail!(
            "the plugin host offers protocol versions {versions}; this provider speaks 6"
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(Notify::new());
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(Controller(stop.clone())))
        .add_service(
            ProviderServer::new(provider)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        );
    let stopped = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let cert_field = match &client_cert {
        Some(pem) => {
            let (config, der) = tls::server_config(pem)?;
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let incoming = TcpListenerStream::new(listener).then(move |tcp| {
                let acceptor = acceptor.clone();
                async move { acceptor.accept(tcp?).await }
            });
            announce(addr, &STANDARD_NO_PAD.encode(der))?;
            return router
                .serve_with_incoming_shutdown(incoming.filter(Result::is_ok), stopped)
                .await
                .context("serving the plugin");
        }
        None => String::new(),
    };
    announce(addr, &cert_field)?;
    router
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopped)
        .await
        .context("serving the plugin")
}

/// Prints go-plugin's handshake line: core version 1, protocol 6.
fn announce(addr: std::net::SocketAddr, cert: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "1|6|tcp|{addr}|grpc|{cert}")?;
    out.flush()?;
    Ok(())
}

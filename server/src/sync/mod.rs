//! The data-plane sync endpoint (`sluice.dataplane.v1.DataPlaneSync`):
//! mTLS, one session per node stream, node status.

pub mod chunks;
pub mod emitter;
mod plan;
pub mod probes;
pub mod quotas;
pub mod registry;
pub mod session;
pub mod tls;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use sluice_proto::dataplane::v1::{
    NodeMessage, ServerMessage,
    data_plane_sync_server::{DataPlaneSync, DataPlaneSyncServer},
    node_message,
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub use registry::Registry;
use session::{Peer, Session};

use crate::store::Store;

/// How long a node has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Updates buffered towards one node before its session waits.
const OUTBOUND_BUFFER: usize = 4;

/// The sync service.
#[derive(Clone)]
pub struct SyncService {
    store: Store,
    registry: Registry,
    quotas: quotas::Quotas,
}

impl SyncService {
    /// Serves sync streams from `store`, recording nodes in `registry`.
    pub fn new(store: Store, registry: Registry) -> Self {
        Self {
            store,
            registry,
            quotas: quotas::Quotas::default(),
        }
    }

    /// The node's gateway and certificate, from the client certificate the
    /// TLS handshake verified (tonic's connect info carries it).
    async fn authenticate<T>(&self, request: &Request<T>) -> Result<Peer, Status> {
        let certs = request.peer_certs();
        let cert = certs
            .as_ref()
            .and_then(|c| c.first())
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let fingerprint = crate::pki::fingerprint_der(cert);
        match self.store.certificate_by_fingerprint(&fingerprint).await? {
            Some((certificate_id, gateway_id)) => Ok(Peer {
                gateway_id,
                certificate_id,
            }),
            None => Err(Status::permission_denied(format!(
                "client certificate {fingerprint} is not a current data_plane_certificate (unknown or revoked)"
            ))),
        }
    }
}

#[tonic::async_trait]
impl DataPlaneSync for SyncService {
    type StreamStream = ReceiverStream<Result<ServerMessage, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<NodeMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let peer = self.authenticate(&request).await?;
        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(NodeMessage {
                message: Some(node_message::Message::Hello(hello)),
            }))) => hello,
            Ok(Ok(_)) => {
                return Err(Status::invalid_argument(
                    "the first message must be a hello",
                ));
            }
            Ok(Err(status)) => return Err(status),
            Err(_) => return Err(Status::deadline_exceeded("no hello within 10 s")),
        };
        if hello.node_id.is_empty() || hello.node_id.len() > 128 {
            return Err(Status::invalid_argument(
                "hello.node_id must be 1-128 characters",
            ));
        }
        if !hello.gateway_id.is_empty() && hello.gateway_id != peer.gateway_id {
            return Err(Status::permission_denied(format!(
                "hello.gateway_id {} is not the gateway of this node's certificate ({})",
                hello.gateway_id, peer.gateway_id
            )));
        }
        let (out, rx) = mpsc::channel(OUTBOUND_BUFFER);
        let session = Session::new(
            self.store.clone(),
            self.registry.clone(),
            self.quotas.clone(),
            peer,
            hello,
            out,
        );
        tokio::spawn(session.run(inbound));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Binds the sync endpoint; returns the bound address and a future that
/// serves it until `shutdown` resolves.
pub async fn bind(
    store: Store,
    registry: Registry,
    listen: SocketAddr,
    names: Vec<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(
    SocketAddr,
    impl std::future::Future<Output = anyhow::Result<()>>,
)> {
    let acceptor = tls::acceptor(&store, &names).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the sync endpoint to {listen}"))?;
    let local = listener.local_addr()?;
    let incoming = ReceiverStream::new(tls::accept_loop(store.clone(), listener, acceptor));
    let service = DataPlaneSyncServer::new(SyncService::new(store, registry));
    let serve = async move {
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(20)))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .context("sync endpoint")
    };
    Ok((local, serve))
}

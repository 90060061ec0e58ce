//! One client connection, after the listener matched its port to a
//! route: dial the backend, then run two pumps until either ends.
//!
//! - the request pump reads client frames, runs the virtual cluster's
//!   chain over those a filter intercepts, queues every request that
//!   expects an answer in the in-flight FIFO and sends it to the broker;
//! - the response pump, the one writer of the client socket, answers the
//!   FIFO in order: a filter's own answer, or the broker's next response
//!   (checked against the request, run through the chain if intercepted).
//!
//! When the port is removed the connection takes no more requests,
//! answers everything in flight (bounded by [`DRAIN`]) and closes. The
//! pumps take any `AsyncRead`/`AsyncWrite`, so tests drive them over
//! in-memory pipes.

mod binding;
mod requests;
mod responses;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::mpsc,
    time::Instant,
};

pub(crate) use binding::Binding;

use crate::{
    auth, backend,
    filter::{InFlight, Notes},
    hop::{Hop, HopError, Kind},
    kafka::frame::{self, FrameReader, MAX_FRAME, PRE_AUTH_MAX_FRAME},
    listener::{
        handshake, proxy_protocol,
        routes::{Key, Route},
    },
    node::Node,
    quota::{Meter, Who},
};

/// How long a connection on a removed port may finish its in-flight requests.
pub const DRAIN: Duration = Duration::from_secs(5);
/// Requests one connection may have awaiting answers; a client that
/// pipelines more waits (its requests stay in its socket).
const MAX_IN_FLIGHT: usize = 256;

/// A note on a request whose quota throttled it: its answer carries the
/// throttle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throttled(pub(crate) Duration);

/// One entry of the in-flight FIFO.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A request sent to the broker, awaiting its response, with the
    /// route (chain, mapping) it was handled with.
    Broker(InFlight, Notes, Arc<Route>),
    /// A filter's answer (header included), written in its turn.
    Local(Bytes),
}

/// Serves one accepted client connection on `key`.
pub async fn serve(client: TcpStream, key: Key, node: Arc<Node>) {
    let mut who = client
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    match connect(client, key, &node, &mut who).await {
        Ok(()) => tracing::debug!(client = %who, "client connection closed"),
        Err(mut e) => {
            e.message = format!("client {who}: {}", e.message);
            node.report(&e);
        }
    }
}

/// The listener hop (PROXY header, TLS or plaintext, routing), then the
/// backend hop, then the pumps. `who` becomes the client's address as the
/// PROXY header names it, for the error report.
async fn connect(
    mut client: TcpStream,
    key: Key,
    node: &Node,
    who: &mut String,
) -> Result<(), HopError> {
    let listener_error = |kind, message: String| {
        HopError::new(Hop::Listener, format!("{}:{}", key.0, key.1), kind, message)
    };
    // The snapshot this connection is routed by; the binding applies any
    // revision that arrives during the handshake from the first request.
    let config = node.config.current();
    let Some(port) = config.compiled().ports.get(&key).cloned() else {
        return Err(listener_error(
            Kind::NoForwardPolicy,
            "no forward policy routes this port".into(),
        ));
    };
    if let Some(refused) = &port.refused {
        return Err(refused.clone());
    }
    // One budget for everything before the first request: a client that
    // dribbles a PROXY header, a handshake and a request is still bounded.
    let timeout = node.limits.handshake_timeout;
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let peer = client
        .peer_addr()
        .map_err(|e| listener_error(Kind::AcceptFailed, format!("no peer address: {e}")))?;
    let address = match &port.proxy_protocol {
        None => peer,
        Some(trusted) => {
            let address = proxy_protocol::client_address(&mut client, peer, trusted, left())
                .await
                .map_err(|message| {
                    HopError::new(
                        Hop::Listener,
                        port.listener_id.clone(),
                        Kind::ProxyHeader,
                        message,
                    )
                })?;
            if address != peer {
                *who = format!("{address} (via load balancer {peer})");
            }
            address
        }
    };
    let Some((stream, hello)) = handshake::greet(client, &port, address, left()).await? else {
        return Ok(());
    };
    let route = port.resolve(&hello)?;
    if let Some(refusal) = &route.refused {
        return Err(refusal.clone());
    }
    let (client_read, mut client_write) = stream.split();
    // The broker is dialled only for a client that sent a whole request
    // in time: an idle or half-sent connection costs no broker connection.
    // Until a client has authenticated, its frames are capped at SASL's
    // size, not a produce request's (a client the rules admit without
    // SASL, by certificate or anonymously, is as authenticated as it gets).
    let rules = &route.virtual_cluster.auth;
    let cap = if rules.takes_sasl() && rules.without_sasl(&hello).is_none() {
        PRE_AUTH_MAX_FRAME
    } else {
        MAX_FRAME
    };
    let mut requests = FrameReader::new(client_read, cap);
    let filled = tokio::time::timeout(left(), requests.fill()).await;
    // The client id quotas by client id count a connection under.
    let client_id = requests
        .peek_body()
        .map(|b| String::from_utf8_lossy(frame::request_client_id(b)).into_owned())
        .unwrap_or_default();
    match filled {
        Ok(Ok(true)) => {}
        // Closed before a request, or broken: the request pump reports it.
        Ok(Ok(false)) | Ok(Err(_)) => {}
        Err(_) => {
            return Err(HopError::new(
                Hop::Listener,
                route.listener_id.clone(),
                Kind::Timeout,
                format!(
                    "the client sent no first whole request within {timeout:?} ({} bytes of one buffered)",
                    requests.buffered()
                ),
            ));
        }
    }
    // The auth hop: SASL in the gate, or admitted at once.
    let vc = &route.virtual_cluster;
    let (session, upstream) = if vc.auth.takes_sasl() {
        match auth::gate::admit(node, &route, &hello, who, &mut requests, &mut client_write).await?
        {
            Some(admitted) => {
                requests.set_max(MAX_FRAME);
                (admitted.session, admitted.upstream)
            }
            None => return Ok(()),
        }
    } else {
        let Some(session) = vc.auth.without_sasl(&hello) else {
            return Err(auth::failed(
                node,
                &vc.id,
                "MTLS",
                who,
                "the client presented no verified certificate, and this virtual cluster admits \
                 only client_certificate"
                    .into(),
            ));
        };
        let (upstream, _) = backend::connect(&vc.backend, route.role, &node.directory).await?;
        (session, upstream)
    };
    tracing::info!(
        client = %who,
        listener = route.listener_id,
        virtual_cluster = vc.id,
        principal = %session.principal.to_string().escape_debug(),
        mechanism = session.mechanism,
        tls = hello.tls,
        sni = hello.sni.as_deref().unwrap_or(""),
        certificate = hello.certificate.as_ref().map_or("", |c| c.subject.as_str()),
        "client connected"
    );
    let meter = Meter::new(
        node.quotas.clone(),
        node.telemetry.clone(),
        Who {
            principal: session.principal.to_string(),
            listener: route.listener_id.clone(),
            virtual_cluster: vc.id.clone(),
        },
    );
    // The policy hop's max_connections: counted until the connection ends.
    let _slots = match &vc.quotas {
        Some(quotas) => meter.admit(quotas, &client_id)?,
        None => Vec::new(),
    };
    let binding = Binding::new(
        node.config.clone(),
        config,
        key,
        hello,
        route.clone(),
        session,
    );
    let (upstream_read, upstream_write) = upstream.split();
    run(
        node,
        binding,
        &meter,
        (requests, client_write),
        (upstream_read, upstream_write),
    )
    .await
}

/// Runs both pumps over a client and an upstream connection until the
/// client leaves, the broker closes, a hop fails or a drain ends.
pub(crate) async fn run<CR, CW, UR, UW>(
    node: &Node,
    binding: Binding,
    meter: &Meter,
    (client_read, client_write): (FrameReader<CR>, CW),
    (upstream_read, upstream_write): (UR, UW),
) -> Result<(), HopError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let (queue, in_flight) = mpsc::channel(MAX_IN_FLIGHT);
    let backend_id = binding.dialled_backend().to_string();
    let requests = requests::pump(node, binding, meter, client_read, upstream_write, queue);
    let responses = responses::pump(
        node,
        meter,
        FrameReader::new(upstream_read, MAX_FRAME),
        client_write,
        in_flight,
    );
    tokio::pin!(requests, responses);
    tokio::select! {
        ended = &mut requests => match ended {
            // The request pump dropped its end of the FIFO: the response
            // pump returns once everything queued is answered.
            Ok(requests::End::Drain) => match tokio::time::timeout(DRAIN, &mut responses).await {
                Ok(answered) => answered,
                Err(_) => Err(HopError::new(
                    Hop::BackendCluster,
                    backend_id.clone(),
                    Kind::DrainTimeout,
                    format!("requests still unanswered {DRAIN:?} after the connection began to drain"),
                )),
            },
            Ok(requests::End::ClientClosed) => Ok(()),
            Err(e) => Err(e),
        },
        ended = &mut responses => ended,
    }
}

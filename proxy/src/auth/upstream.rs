//! The gate's upstream: the connection a client's authentication may
//! travel on before the client is admitted — dialled bare (no backend
//! credentials) for relayed exchanges and ApiVersions, authenticated with
//! the backend cluster's credentials once the gateway admitted the client
//! itself — and one request/answer round trip on it, through the virtual
//! cluster's chain, within the handshake deadline.

use bytes::Bytes;
use tokio::{io::AsyncWriteExt, time::Instant};

use crate::{
    backend::{self, Upstream},
    filter::{Context, Findings, InFlight, Notes, RequestOutcome},
    hop::{Hop, HopError, Kind},
    io::Stream,
    kafka::{
        encoded,
        frame::{self, MAX_FRAME},
    },
    listener::routes::Route,
    node::Node,
};

/// The connection's upstream as the gate holds it.
pub(super) struct Dialled {
    pub(super) stream: Stream,
    pub(super) address: String,
}

/// The upstream, dialled bare (no backend credentials) if not yet.
pub(super) async fn bare<'a>(
    node: &Node,
    route: &Route,
    upstream: &'a mut Option<Dialled>,
) -> Result<&'a mut Dialled, HopError> {
    if upstream.is_none() {
        let (stream, address) = backend::connect_as(
            &route.virtual_cluster.backend,
            route.role,
            &node.directory,
            Upstream::Bare,
        )
        .await?;
        *upstream = Some(Dialled { stream, address });
    }
    upstream
        .as_mut()
        .ok_or_else(|| HopError::new(Hop::BackendCluster, "", Kind::Unreachable, "no upstream"))
}

/// The upstream of a client the gateway admitted itself: authenticated
/// with the backend cluster's credentials (dialled now, or the bare one
/// the exchange used, authenticated now).
pub(super) async fn with_gateway_credentials(
    node: &Node,
    route: &Route,
    upstream: Option<Dialled>,
) -> Result<Stream, HopError> {
    let backend = &route.virtual_cluster.backend;
    match upstream {
        Some(mut dialled) => {
            backend::authenticate(backend, &mut dialled.stream, &dialled.address).await?;
            Ok(dialled.stream)
        }
        None => backend::connect(backend, route.role, &node.directory)
            .await
            .map(|(stream, _)| stream),
    }
}

/// Sends one request to the broker through the chain and returns the
/// answer (header included), through the chain too, by `deadline`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn relay(
    node: &Node,
    route: &Route,
    upstream: &mut Dialled,
    wire: &[u8],
    body: Bytes,
    api_key: i16,
    version: i16,
    deadline: Instant,
    notes: Notes,
) -> Result<Bytes, HopError> {
    let backend = route.virtual_cluster.backend.id.clone();
    let address = upstream.address.clone();
    tokio::time::timeout_at(
        deadline,
        relay_now(node, route, upstream, wire, body, api_key, version, notes),
    )
    .await
    .map_err(|_| {
        HopError::new(
            Hop::BackendCluster,
            backend,
            Kind::Timeout,
            format!(
                "the broker at {address} did not answer api_key={api_key} while the client \
                 authenticated"
            ),
        )
    })?
}

/// [`relay`] without its deadline.
#[allow(clippy::too_many_arguments)]
async fn relay_now(
    node: &Node,
    route: &Route,
    upstream: &mut Dialled,
    wire: &[u8],
    body: Bytes,
    api_key: i16,
    version: i16,
    mut notes: Notes,
) -> Result<Bytes, HopError> {
    let backend = &route.virtual_cluster.backend.id;
    let fail = |kind, message: String| HopError::new(Hop::BackendCluster, backend, kind, message);
    let chain = &route.virtual_cluster.chain;
    let correlation_id = frame::request_key(&body).map_or(0, |(_, _, c)| c);
    let mut findings = Findings::default();
    let outcome = if chain.wants_request(api_key, version) {
        let mut cx = Context {
            route,
            principal: None,
            notes: &mut notes,
            findings: &mut findings,
        };
        Some(chain.on_request(&mut cx, api_key, version, body)?)
    } else {
        None
    };
    let sent = match outcome {
        Some(RequestOutcome::Respond(answer)) => return Ok(answer),
        Some(RequestOutcome::Forward(rewritten)) => {
            encoded::write_frame(&mut upstream.stream, &rewritten).await
        }
        Some(RequestOutcome::Unchanged) | None => upstream.stream.write_all(wire).await,
    };
    sent.map_err(|e| fail(Kind::WriteFailed, e.to_string()))?;
    let answer = frame::read_frame(&mut upstream.stream, MAX_FRAME)
        .await
        .map_err(|e| fail(Kind::BadFrame, format!("broker: {e}")))?
        .ok_or_else(|| {
            fail(
                Kind::Unreachable,
                format!("the broker at {} closed the connection", upstream.address),
            )
        })?
        .body();
    if frame::response_correlation(&answer) != Some(correlation_id) {
        return Err(fail(
            Kind::OutOfOrderResponse,
            format!("expected the answer to correlation id {correlation_id} (api_key={api_key})"),
        ));
    }
    let entry = InFlight {
        api_key,
        version,
        correlation_id,
    };
    let answer = if chain.wants_response(api_key, version) {
        let mut cx = Context {
            route,
            principal: None,
            notes: &mut notes,
            findings: &mut findings,
        };
        chain.on_response(&mut cx, &entry, answer)?.to_bytes()
    } else {
        answer
    };
    if !findings.is_empty() {
        node.act_on(backend, findings);
    }
    Ok(answer)
}

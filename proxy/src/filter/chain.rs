//! A virtual cluster's filters in order, compiled once per configuration
//! revision with the union of their interests, so the connection asks
//! "does anyone want this frame?" in O(1) and forwards every other frame
//! untouched, without decoding it.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind},
    protocol::{Decodable, Encodable, types::element_budget},
};

use super::{Context, Filter, InFlight, Verdict, interest::Mask};
use crate::{
    hop::{Hop, HopError, Kind},
    kafka::{
        encoded::{Encoded, Segments},
        request::UNSUPPORTED_VERSION,
    },
};

/// The most array elements (all arrays together) a client's request may
/// hold to be decoded: far above what real clients send (a fetch or
/// commit of tens of thousands of partitions), far below what would let
/// one request take gigabytes once decoded.
const MAX_REQUEST_ELEMENTS: u64 = 200_000;

/// One filter and what it intercepts.
struct Link {
    filter: Arc<dyn Filter>,
    requests: Mask,
    responses: Mask,
}

/// The ordered filters of one virtual cluster.
#[derive(Default)]
pub struct Chain {
    links: Vec<Link>,
    requests: Mask,
    responses: Mask,
}

/// What happens to a request the chain intercepted.
#[derive(Debug)]
pub enum RequestOutcome {
    /// Send this body (header included, no length prefix) to the broker;
    /// its record sets are references into the client's frame.
    Forward(Encoded),
    /// Answer the client with this body (header included) instead.
    Respond(Bytes),
    /// Send the client's frame as it came: every filter that saw it only
    /// observes (or could not read it, and only observes).
    Unchanged,
}

impl Chain {
    /// A chain of `filters`, run in this order on requests.
    pub fn new(filters: Vec<Arc<dyn Filter>>) -> Self {
        let mut chain = Chain::default();
        for filter in filters {
            let interest = filter.interest();
            chain.requests.union(&interest.requests);
            chain.responses.union(&interest.responses);
            chain.links.push(Link {
                filter,
                requests: interest.requests,
                responses: interest.responses,
            });
        }
        chain
    }

    /// The filters' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.links.iter().map(|l| l.filter.name()).collect()
    }

    /// Whether some filter intercepts requests of `key` at `version`.
    #[inline]
    pub fn wants_request(&self, key: i16, version: i16) -> bool {
        self.requests.contains(key, version)
    }

    /// Whether some filter intercepts responses of `key` at `version`.
    #[inline]
    pub fn wants_response(&self, key: i16, version: i16) -> bool {
        self.responses.contains(key, version)
    }

    /// Runs the interested filters over a request `body` (header
    /// included, as framed). Only called when [`Chain::wants_request`].
    pub fn on_request(
        &self,
        cx: &mut Context<'_>,
        key: i16,
        version: i16,
        body: Bytes,
    ) -> Result<RequestOutcome, HopError> {
        let vc = &cx.route.virtual_cluster.id;
        let undecodable = |e: anyhow::Error| {
            HopError::new(
                Hop::VirtualCluster,
                vc.clone(),
                Kind::UndecodableRequest,
                format!("request api_key={key} v{version}: {e:#}"),
            )
        };
        // Filters that only observe (ACL policies reported, not applied)
        // never change or fail a frame: what they cannot read goes on.
        let observing = self
            .links
            .iter()
            .filter(|l| l.requests.contains(key, version))
            .all(|l| l.filter.observes_only());
        let decoded = (|| {
            let api = ApiKey::try_from(key)
                .map_err(|_| undecodable(anyhow::anyhow!("unknown api key")))?;
            let header_version = api.request_header_version(version);
            let mut buf = body.clone();
            let header = RequestHeader::decode(&mut buf, header_version).map_err(undecodable)?;
            // A client's request is hostile input: its arrays may hold at
            // most MAX_REQUEST_ELEMENTS elements in all (a decoded element
            // can take a hundred times its wire bytes).
            let message = element_budget::with(MAX_REQUEST_ELEMENTS, || {
                RequestKind::decode(api, &mut buf, version)
            })
            .map_err(undecodable)?;
            Ok::<_, HopError>((api, header_version, header, message))
        })();
        let (api, header_version, mut header, mut message) = match decoded {
            Ok(decoded) => decoded,
            Err(e) if observing => {
                // Forwarded unread, and said so: what an observing policy
                // could not evaluate is counted, not silently skipped.
                let e = HopError::new(
                    e.hop,
                    e.entity,
                    e.kind,
                    format!(
                        "{}; forwarded unread (its policies only observe)",
                        e.message
                    ),
                )
                .with_detail("not_evaluated");
                cx.findings.warnings.push(e);
                return Ok(RequestOutcome::Unchanged);
            }
            Err(e) => return Err(e),
        };
        let source = body;
        for link in &self.links {
            if !link.requests.contains(key, version) {
                continue;
            }
            match link.filter.on_request(cx, &mut header, &mut message) {
                Verdict::Forward => {}
                Verdict::Respond(response) => {
                    let answer =
                        ResponseHeader::default().with_correlation_id(header.correlation_id);
                    let encoded =
                        encode_response(vc, api, version, &answer, &response, Bytes::new())?;
                    return Ok(RequestOutcome::Respond(encoded.to_bytes()));
                }
                Verdict::Close(error) => return Err(error),
            }
        }
        if observing {
            return Ok(RequestOutcome::Unchanged);
        }
        let mut out = Segments::new(source);
        header
            .encode(&mut out, header_version)
            .and_then(|()| encode_request_body(&message, &mut out, version))
            .map_err(|e| unencodable(vc, key, version, e))?;
        Ok(RequestOutcome::Forward(out.finish()))
    }

    /// Runs the interested filters, last first, over the response `body`
    /// (header included) to `in_flight`; the answer's record sets are
    /// references into `body`. Only called when [`Chain::wants_response`]
    /// for the request's key and version.
    pub fn on_response(
        &self,
        cx: &mut Context<'_>,
        in_flight: &InFlight,
        body: Bytes,
    ) -> Result<Encoded, HopError> {
        let (key, asked) = (in_flight.api_key, in_flight.version);
        let undecodable = |e: anyhow::Error| {
            HopError::new(
                Hop::BackendCluster,
                cx.route.virtual_cluster.backend.id.clone(),
                Kind::UndecodableResponse,
                format!("response api_key={key} v{asked}: {e:#}"),
            )
        };
        let api =
            ApiKey::try_from(key).map_err(|_| undecodable(anyhow::anyhow!("unknown api key")))?;
        let header_version = api.response_header_version(asked);
        let source = body.clone();
        let mut buf = body;
        let header = ResponseHeader::decode(&mut buf, header_version).map_err(undecodable)?;
        let mut version = asked;
        if api == ApiKey::ApiVersions && buf.get(..2) == Some(&UNSUPPORTED_VERSION.to_be_bytes()) {
            // A broker answers an ApiVersions version it does not support
            // with a v0 body and UNSUPPORTED_VERSION, so the client can
            // retry lower: it is read (and passed on) as v0.
            version = 0;
        }
        let mut message = ResponseKind::decode(api, &mut buf, version).map_err(undecodable)?;
        for link in self.links.iter().rev() {
            if !link.responses.contains(key, asked) {
                continue;
            }
            match link.filter.on_response(cx, &mut message, in_flight) {
                Verdict::Forward => {}
                Verdict::Respond(replacement) => message = replacement,
                Verdict::Close(error) => return Err(error),
            }
        }
        let vc = &cx.route.virtual_cluster.id;
        encode_response(vc, api, version, &header, &message, source)
    }
}

fn unencodable(vc: &str, key: i16, version: i16, e: anyhow::Error) -> HopError {
    HopError::new(
        Hop::VirtualCluster,
        vc,
        Kind::UnencodableMessage,
        format!("api_key={key} v{version}: {e:#}"),
    )
}

/// Encodes a response, referencing slices of `source` (the broker's frame
/// it was decoded from) instead of copying them.
fn encode_response(
    vc: &str,
    api: ApiKey,
    version: i16,
    header: &ResponseHeader,
    body: &ResponseKind,
    source: Bytes,
) -> Result<Encoded, HopError> {
    let header_version = api.response_header_version(version);
    let mut out = Segments::new(source);
    header
        .encode(&mut out, header_version)
        .and_then(|()| encode_response_body(body, &mut out, version))
        .map_err(|e| unencodable(vc, api as i16, version, e))?;
    Ok(out.finish())
}

/// Encodes a request body: Produce (whose record sets are the bulk) into
/// `out` itself, so they are referenced; the rest through one buffer.
fn encode_request_body(
    message: &RequestKind,
    out: &mut Segments,
    version: i16,
) -> anyhow::Result<()> {
    match message {
        RequestKind::Produce(m) => m.encode(out, version),
        other => {
            let mut body = BytesMut::new();
            other.encode(&mut body, version)?;
            out.put_slice(&body);
            Ok(())
        }
    }
}

/// Encodes a response body: Fetch (whose record sets are the bulk) into
/// `out` itself, so they are referenced; the rest through one buffer.
fn encode_response_body(
    message: &ResponseKind,
    out: &mut Segments,
    version: i16,
) -> anyhow::Result<()> {
    match message {
        ResponseKind::Fetch(m) => m.encode(out, version),
        other => {
            let mut body = BytesMut::new();
            other.encode(&mut body, version)?;
            out.put_slice(&body);
            Ok(())
        }
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

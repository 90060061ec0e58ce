//! The backend's broker list, asked for with a Metadata request on a
//! connection of its own (TLS and SASL as configured).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable, StrBytes},
};

use super::{Backend, OpenError};
use crate::{
    hop::Kind,
    io::Stream,
    kafka::frame::{self, FrameError, MAX_FRAME},
};

/// How long a metadata exchange (connect, ask, answer) may take: a
/// broker that accepts and never answers must not stall anything.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// The Metadata version the proxy asks with.
const METADATA_VERSION: i16 = 4;

/// Asks a broker for the cluster's brokers (id, host, port), within
/// [`METADATA_TIMEOUT`]; a TLS or SASL failure keeps its kind.
pub async fn fetch_brokers(
    backend: &Backend,
    address: &str,
) -> Result<Vec<(i32, String, i32)>, OpenError> {
    tokio::time::timeout(METADATA_TIMEOUT, ask_brokers(backend, address))
        .await
        .unwrap_or_else(|_| {
            Err(OpenError {
                kind: Kind::MetadataRefreshFailed,
                message: format!("{address}: no metadata answer within {METADATA_TIMEOUT:?}"),
            })
        })
}

async fn ask_brokers(
    backend: &Backend,
    address: &str,
) -> Result<Vec<(i32, String, i32)>, OpenError> {
    let mut stream = super::open(backend, address).await?;
    ask(&mut stream).await.map_err(|e| {
        // A broker that refuses the gateway's certificate says so only
        // now, on the first read (TLS 1.3): a TLS failure, named as one.
        let refused = e
            .downcast_ref::<FrameError>()
            .and_then(crate::tls::client::refused_after_handshake);
        match refused {
            Some(why) => OpenError {
                kind: Kind::TlsHandshake,
                message: format!("{address}: {why}"),
            },
            None => OpenError {
                kind: Kind::MetadataRefreshFailed,
                message: format!("{address}: {e:#}"),
            },
        }
    })
}

async fn ask(stream: &mut Stream) -> anyhow::Result<Vec<(i32, String, i32)>> {
    let key = ApiKey::Metadata;
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sluice-proxy")));
    let mut out = BytesMut::new();
    header.encode(&mut out, key.request_header_version(METADATA_VERSION))?;
    MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .encode(&mut out, METADATA_VERSION)?;
    frame::write_frame(stream, &out).await?;
    let mut reply: Bytes = frame::read_frame(stream, MAX_FRAME)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the broker closed the connection"))?
        .body();
    ResponseHeader::decode(&mut reply, key.response_header_version(METADATA_VERSION))?;
    let response = MetadataResponse::decode(&mut reply, METADATA_VERSION)?;
    Ok(response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.as_str().to_string(), b.port))
        .collect())
}

//! The two Kafka exchanges a probe makes: ApiVersions and Metadata
//! (which never creates a topic).

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
        RequestHeader, ResponseHeader, TopicName, metadata_request::MetadataRequestTopic,
    },
    protocol::{Decodable, Encodable, Request, StrBytes},
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::kafka::frame::{self, MAX_FRAME};

/// The ApiVersions version a probe asks with (any broker answers v0).
const API_VERSIONS_VERSION: i16 = 0;
/// The Metadata version a probe asks with (4: has allow_auto_topic_creation).
const METADATA_VERSION: i16 = 4;

/// One request and its answer's body.
async fn exchange<S, R>(stream: &mut S, request: &R, version: i16) -> Result<Bytes, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Encodable + Request,
{
    let key = ApiKey::try_from(R::KEY).map_err(|_| "unknown api key".to_string())?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sluice-probe")));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, key.request_header_version(version))
        .and_then(|()| request.encode(&mut out, version))
        .map_err(|e| format!("encoding the request: {e}"))?;
    frame::write_frame(stream, &out)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut reply = frame::read_frame(stream, MAX_FRAME)
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .ok_or_else(|| "the connection was closed without an answer".to_string())?
        .body();
    ResponseHeader::decode(&mut reply, key.response_header_version(version))
        .map_err(|e| format!("decoding the answer: {e}"))?;
    Ok(reply)
}

/// Asks for the API versions; the number of APIs offered.
pub(super) async fn api_versions<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<usize, String> {
    let mut body = exchange(stream, &ApiVersionsRequest::default(), API_VERSIONS_VERSION).await?;
    let answer = ApiVersionsResponse::decode(&mut body, API_VERSIONS_VERSION)
        .map_err(|e| format!("decoding the answer: {e}"))?;
    if answer.error_code != 0 {
        return Err(format!("ApiVersions answered error {}", answer.error_code));
    }
    Ok(answer.api_keys.len())
}

/// What a Metadata answer says.
pub(super) struct Metadata {
    /// Brokers as `id@host:port`.
    pub(super) brokers: Vec<String>,
    /// Each asked topic's error code (0: it exists).
    pub(super) topics: Vec<(String, i16)>,
}

/// Asks for the brokers and `topics` (without creating them).
pub(super) async fn metadata<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    topics: &[String],
) -> Result<Metadata, String> {
    let asked: Vec<MetadataRequestTopic> = topics
        .iter()
        .map(|t| {
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
        })
        .collect();
    let request = MetadataRequest::default()
        .with_topics(Some(asked))
        .with_allow_auto_topic_creation(false);
    let mut body = exchange(stream, &request, METADATA_VERSION).await?;
    let answer = MetadataResponse::decode(&mut body, METADATA_VERSION)
        .map_err(|e| format!("decoding the answer: {e}"))?;
    Ok(Metadata {
        brokers: answer
            .brokers
            .iter()
            .map(|b| format!("{}@{}:{}", b.node_id.0, b.host.as_str(), b.port))
            .collect(),
        topics: topics
            .iter()
            .map(|t| {
                let code = answer
                    .topics
                    .iter()
                    .find(|a| a.name.as_ref().is_some_and(|n| n.0.as_str() == t))
                    .map_or(3, |a| a.error_code);
                (t.clone(), code)
            })
            .collect(),
    })
}

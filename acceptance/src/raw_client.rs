//! A bare Kafka connection for tests and benchmarks that need exact
//! control of each request (when a login happens, what comes next):
//! one request at a time, encoded and decoded by the `kafka-protocol`
//! crate.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse,
    },
    protocol::{Decodable, Encodable, StrBytes},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The largest answer read (the tests' answers are small).
const MAX_ANSWER: i32 = 1 << 20;

/// Sends one request and reads its answer's body (after the header).
pub async fn exchange<T: Encodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &T,
) -> std::io::Result<Bytes> {
    let mut out = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sluice-test")))
        .encode(&mut out, key.request_header_version(version))
        .and_then(|()| body.encode(&mut out, version))
        .map_err(std::io::Error::other)?;
    stream.write_all(&(out.len() as i32).to_be_bytes()).await?;
    stream.write_all(&out).await?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let mut answer = vec![0u8; i32::from_be_bytes(len).clamp(0, MAX_ANSWER) as usize];
    stream.read_exact(&mut answer).await?;
    let mut answer = Bytes::from(answer);
    ResponseHeader::decode(&mut answer, key.response_header_version(version))
        .map_err(std::io::Error::other)?;
    Ok(answer)
}

/// Sends a request and decodes its answer as `R`.
pub async fn request<T: Encodable, R: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &T,
) -> std::io::Result<R> {
    let mut answer = exchange(stream, key, version, body).await?;
    R::decode(&mut answer, version).map_err(std::io::Error::other)
}

/// A one-message SASL login (PLAIN, OAUTHBEARER): SaslHandshake v1, then
/// SaslAuthenticate v2 with `auth_bytes`; the SaslAuthenticate answer
/// (its error code is the caller's to judge), or an error when the
/// handshake is refused.
pub async fn sasl_login(
    stream: &mut TcpStream,
    mechanism: &str,
    auth_bytes: Bytes,
) -> std::io::Result<SaslAuthenticateResponse> {
    let handshake: SaslHandshakeResponse = request(
        stream,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into())),
    )
    .await?;
    if handshake.error_code != 0 {
        return Err(std::io::Error::other(format!(
            "SaslHandshake for {mechanism} refused with error {}",
            handshake.error_code
        )));
    }
    request(
        stream,
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(auth_bytes),
    )
    .await
}

/// The OAUTHBEARER initial client response for `token` (RFC 7628 §3.1).
pub fn oauth_bearer(token: &str) -> Bytes {
    Bytes::from(format!("n,,\x01auth=Bearer {token}\x01\x01"))
}

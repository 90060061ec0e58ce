//! SASL towards the brokers: the gateway authenticates each connection it
//! opens with the backend cluster's own credentials (PLAIN or
//! SCRAM-SHA-256/512, the mechanisms from the `rsasl` crate), before any
//! client request is forwarded, so clients never see those credentials.

use std::fmt;

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse,
    },
    protocol::{Decodable, Encodable, StrBytes},
};
use rsasl::prelude::{Mechname, SASLClient, SASLConfig};
use tokio::io::{AsyncRead, AsyncWrite};

use super::OpenError;
use crate::{hop::Kind, kafka::frame};

/// The SaslHandshake version asked with (v1: SaslAuthenticate follows).
const HANDSHAKE_VERSION: i16 = 1;
/// The SaslAuthenticate version asked with.
const AUTHENTICATE_VERSION: i16 = 1;
/// Round trips a mechanism may take (SCRAM needs two).
const MAX_STEPS: usize = 4;
/// The most SCRAM iterations a broker may ask for (Apache Kafka's own
/// limit): each costs the gateway a hash round, so a hostile or
/// misconfigured broker cannot make one login burn seconds of CPU.
const MAX_SCRAM_ITERATIONS: u32 = 16_384;
/// The largest SASL answer read from a broker (they are tens of bytes).
const MAX_SASL_FRAME: usize = 64 * 1024;

/// A SASL mechanism the gateway uses towards brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// PLAIN.
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

impl Mechanism {
    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A backend cluster's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The username.
    pub username: String,
    /// The password (never printed).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Authenticates `stream` with `credentials`; the error says what the
/// broker answered (never the password): `auth_failed`, or
/// `tls_handshake_failed` when the broker ended the TLS session instead.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    credentials: &Credentials,
) -> Result<(), OpenError> {
    exchanges(stream, credentials).await.map_err(|e| match e {
        Failure::Tls(message) => OpenError {
            kind: Kind::TlsHandshake,
            message,
        },
        Failure::Auth(message) => OpenError {
            kind: Kind::AuthFailed,
            message,
        },
    })
}

/// Why authenticating failed.
enum Failure {
    /// The TLS session ended (a refused client certificate, say).
    Tls(String),
    /// The SASL exchange failed.
    Auth(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Auth(message)
    }
}

async fn exchanges<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    credentials: &Credentials,
) -> Result<(), Failure> {
    let mechanism = credentials.mechanism.name();
    let handshake: SaslHandshakeResponse = exchange(
        stream,
        ApiKey::SaslHandshake,
        HANDSHAKE_VERSION,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    )
    .await?;
    if handshake.error_code != 0 {
        let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(Failure::Auth(format!(
            "the broker does not accept {mechanism} (error {}; it offers [{}])",
            handshake.error_code,
            offered.join(", ")
        )));
    }
    let config = SASLConfig::with_credentials(
        None,
        credentials.username.clone(),
        credentials.password.clone(),
    )
    .map_err(|e| format!("{mechanism}: {e}"))?;
    let name = Mechname::parse(mechanism.as_bytes()).map_err(|e| format!("{mechanism}: {e}"))?;
    let mut session = SASLClient::new(config)
        .start_suggested(&[name])
        .map_err(|e| format!("{mechanism}: {e}"))?;
    let mut input: Option<Bytes> = None;
    for step in 0..MAX_STEPS {
        let scram = credentials.mechanism != Mechanism::Plain;
        // The broker's first SCRAM answer (server-first) sets how many
        // hash rounds the gateway computes: checked before rsasl sees it,
        // and anything not exactly `r=…,s=…,i=<digits>` is refused.
        if scram && step == 1 {
            let first = input.as_deref().unwrap_or_default();
            scram_iterations(first).map_err(|why| format!("{mechanism}: {why}"))?;
        }
        let (returned, stepped, out) = if scram && step == 1 {
            // Key derivation is CPU work (thousands of hash rounds): off
            // the runtime's threads, so other connections keep moving.
            let step_input = input.clone();
            tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                let stepped = session.step(step_input.as_deref(), &mut out);
                (session, stepped, out)
            })
            .await
            .map_err(|e| format!("{mechanism}: {e}"))?
        } else {
            let mut out = Vec::new();
            let stepped = session.step(input.as_deref(), &mut out);
            (session, stepped, out)
        };
        session = returned;
        let state = stepped.map_err(|e| {
            // A SCRAM server-final `e=<reason>` is the broker refusing
            // the credentials; anything else is an answer that does not
            // verify (a server that does not know the password).
            match input.as_deref().and_then(|i| i.strip_prefix(b"e=")) {
                Some(why) => format!(
                    "{mechanism} authentication as {:?} failed: the broker answered {:?} (wrong username or password?)",
                    credentials.username,
                    String::from_utf8_lossy(why)
                ),
                None => format!(
                    "{mechanism}: the broker's answer does not verify ({e}): is it the broker it claims to be?"
                ),
            }
        })?;
        if state.has_sent_message() {
            let answer: SaslAuthenticateResponse = exchange(
                stream,
                ApiKey::SaslAuthenticate,
                AUTHENTICATE_VERSION,
                2 + i32::try_from(step).unwrap_or(0),
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out)),
            )
            .await?;
            if answer.error_code != 0 {
                return Err(Failure::Auth(format!(
                    "{mechanism} authentication as {:?} failed (error {}: {})",
                    credentials.username,
                    answer.error_code,
                    answer.error_message.as_deref().unwrap_or("no message")
                )));
            }
            input = Some(answer.auth_bytes);
        }
        if state.is_finished() {
            return Ok(());
        }
    }
    Err(Failure::Auth(format!(
        "{mechanism}: no result after {MAX_STEPS} round trips"
    )))
}

/// The iteration count of a SCRAM server-first message, which must be
/// `r=<nonce>,s=<salt>,i=<digits>` (RFC 5802, extensions after it
/// allowed) with at most [`MAX_SCRAM_ITERATIONS`]; anything else is
/// refused, so no count reaches the key derivation unchecked.
fn scram_iterations(message: &[u8]) -> Result<u32, String> {
    let mut fields = message.split(|b| *b == b',');
    let (Some(nonce), Some(salt), Some(count)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("the broker's SCRAM server-first message is malformed".into());
    };
    let digits = count
        .strip_prefix(b"i=")
        .filter(|d| !d.is_empty() && d.len() <= 10 && d.iter().all(u8::is_ascii_digit));
    let (true, true, Some(digits)) = (nonce.starts_with(b"r="), salt.starts_with(b"s="), digits)
    else {
        return Err("the broker's SCRAM server-first message is malformed".into());
    };
    let iterations: u64 = digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
    if iterations == 0 || iterations > u64::from(MAX_SCRAM_ITERATIONS) {
        return Err(format!(
            "the broker asks for {iterations} SCRAM iterations; the gateway computes 1 to \
             {MAX_SCRAM_ITERATIONS} (Apache Kafka's limit)"
        ));
    }
    Ok(iterations as u32)
}

/// Sends one request and reads its response.
async fn exchange<S, Req, Resp>(
    stream: &mut S,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
) -> Result<Resp, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Req: Encodable,
    Resp: Decodable,
{
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("sluice-proxy")));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, key.request_header_version(version))
        .and_then(|()| request.encode(&mut out, version))
        .map_err(|e| format!("encoding {key:?}: {e}"))?;
    frame::write_frame(stream, &out)
        .await
        .map_err(|e| format!("sending {key:?}: {e}"))?;
    let mut reply = frame::read_frame(stream, MAX_SASL_FRAME)
        .await
        .map_err(|e| match crate::tls::client::refused_after_handshake(&e) {
            Some(why) => Failure::Tls(why),
            None => Failure::Auth(format!("reading the {key:?} answer: {e}")),
        })?
        .ok_or_else(|| format!("the broker closed the connection instead of answering {key:?}"))?
        .body();
    Ok(
        ResponseHeader::decode(&mut reply, key.response_header_version(version))
            .and_then(|_| Resp::decode(&mut reply, version))
            .map_err(|e| format!("decoding the {key:?} answer: {e}"))?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_iteration_counts_are_read_from_server_first_messages() {
        assert_eq!(scram_iterations(b"r=abc,s=c2FsdA==,i=4096"), Ok(4096));
        assert_eq!(scram_iterations(b"r=abc,s=c2FsdA==,i=4096,x=ext"), Ok(4096));
        for bad in [
            &b"r=abc,s=c2FsdA==,i=99999999999"[..],
            b"r=abc,s=c2FsdA==,i=16385",
            b"r=abc,s=c2FsdA==,i=0",
            b"r=abc\xff,s=c2FsdA==,i=4000000000",
            b"r=abc,s=c2FsdA==,i=4000000000,x=\xff",
            b"r=abc,s=c2FsdA==",
            b"r=abc,i=4096,s=c2FsdA==",
            b"v=c2lnbmF0dXJl",
            b"r=abc,s=c2FsdA==,i=+4096",
        ] {
            assert!(
                scram_iterations(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Plays a broker that answers the handshake, then a server-first.
    async fn broker_answering(server_first: &'static [u8]) -> Result<(), OpenError> {
        let (mut gateway, mut broker) = tokio::io::duplex(1 << 16);
        let serve = tokio::spawn(async move {
            let answer = |correlation: i32, body: &dyn Fn(&mut BytesMut)| {
                let mut out = BytesMut::new();
                ResponseHeader::default()
                    .with_correlation_id(correlation)
                    .encode(&mut out, 0)
                    .unwrap();
                body(&mut out);
                out
            };
            let hs = frame::read_frame(&mut broker, 1 << 16)
                .await
                .unwrap()
                .unwrap();
            let (_, _, c) = frame::request_key(&hs.body()).unwrap();
            let out = answer(c, &|out| {
                SaslHandshakeResponse::default().encode(out, 1).unwrap()
            });
            frame::write_frame(&mut broker, &out).await.unwrap();
            let first = frame::read_frame(&mut broker, 1 << 16)
                .await
                .unwrap()
                .unwrap();
            let (_, _, c) = frame::request_key(&first.body()).unwrap();
            let out = answer(c, &|out| {
                SaslAuthenticateResponse::default()
                    .with_auth_bytes(Bytes::from_static(server_first))
                    .encode(out, 1)
                    .unwrap()
            });
            frame::write_frame(&mut broker, &out).await.unwrap();
            // Whatever comes next is never answered.
            let _ = frame::read_frame(&mut broker, 1 << 16).await;
        });
        let credentials = Credentials {
            mechanism: Mechanism::ScramSha512,
            username: "svc".into(),
            password: "pw".into(),
        };
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            authenticate(&mut gateway, &credentials),
        )
        .await
        .expect("refused at once, not computed");
        serve.abort();
        result
    }

    #[tokio::test]
    async fn a_broker_cannot_make_the_gateway_compute_billions_of_rounds() {
        for first in [
            &b"r=NONCE,s=c2FsdA==,i=4000000000"[..],
            b"r=NONCE\xff,s=c2FsdA==,i=4000000000",
            b"r=NONCE,s=c2FsdA==,i=4000000000,x=\xff",
        ] {
            let err = broker_answering(first).await.unwrap_err();
            assert_eq!(err.kind, Kind::AuthFailed);
            assert!(
                err.message.contains("SCRAM iterations") || err.message.contains("malformed"),
                "{}",
                err.message
            );
        }
    }
}

//! The answers the gateway gives to SASL requests itself.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeResponse},
    protocol::{Encodable, StrBytes},
};

/// A SaslHandshake answer (header included) in the request's version;
/// `None` for a version this proxy cannot write.
pub(super) fn handshake(
    correlation_id: i32,
    version: i16,
    error_code: i16,
    mechanisms: &[&'static str],
) -> Option<Bytes> {
    let body = SaslHandshakeResponse::default()
        .with_error_code(error_code)
        .with_mechanisms(
            mechanisms
                .iter()
                .map(|m| StrBytes::from_static_str(m))
                .collect(),
        );
    encode(ApiKey::SaslHandshake, correlation_id, version, &body)
}

/// A SaslAuthenticate answer: empty `auth_bytes` and the session's
/// lifetime (KIP-368; 0: it does not expire) on success, the error and
/// its message otherwise.
pub(super) fn authenticate(
    correlation_id: i32,
    version: i16,
    error_code: i16,
    message: Option<&str>,
    session_lifetime_ms: i64,
) -> Option<Bytes> {
    let body = SaslAuthenticateResponse::default()
        .with_error_code(error_code)
        .with_error_message(message.map(|m| StrBytes::from_string(m.to_string())))
        .with_auth_bytes(Bytes::new())
        .with_session_lifetime_ms(session_lifetime_ms);
    encode(ApiKey::SaslAuthenticate, correlation_id, version, &body)
}

fn encode<T: Encodable>(key: ApiKey, correlation_id: i32, version: i16, body: &T) -> Option<Bytes> {
    let valid = key.valid_versions();
    if version < valid.min || version > valid.max {
        return None;
    }
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, key.response_header_version(version))
        .ok()?;
    body.encode(&mut out, version).ok()?;
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::{
        messages::{ResponseHeader, SaslHandshakeResponse},
        protocol::Decodable,
    };

    use super::*;

    #[test]
    fn a_handshake_answer_lists_the_mechanisms_a_client_library_reads() {
        let mut answer = handshake(7, 1, 33, &["PLAIN", "SCRAM-SHA-512"]).unwrap();
        let header = ResponseHeader::decode(&mut answer, 0).unwrap();
        assert_eq!(header.correlation_id, 7);
        let body = SaslHandshakeResponse::decode(&mut answer, 1).unwrap();
        assert_eq!(body.error_code, 33);
        let names: Vec<&str> = body.mechanisms.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["PLAIN", "SCRAM-SHA-512"]);
        assert!(handshake(7, 9, 0, &[]).is_none(), "no such version");
        let mut failed = authenticate(8, 2, 58, Some("no"), 0).unwrap();
        let header = ResponseHeader::decode(&mut failed, 1).unwrap();
        assert_eq!(header.correlation_id, 8);
        let body = SaslAuthenticateResponse::decode(&mut failed, 2).unwrap();
        assert_eq!(
            (body.error_code, body.error_message.as_deref()),
            (58, Some("no"))
        );
    }
}

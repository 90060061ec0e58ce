//! What the proxy reads of a request without decoding it (whether the
//! broker will answer it: every request but an `acks=0` Produce), and
//! the one answer it gives at the protocol level itself.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader,
        api_versions_response::ApiVersion,
    },
    protocol::{Decodable, Encodable},
};

/// Kafka's `UNSUPPORTED_VERSION` error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// Whether an ApiVersions request is newer than this proxy can read the
/// answer to. Such a request is not sent on: the proxy answers it as a
/// broker would ([`unsupported_api_versions`]) so the client retries lower.
pub fn api_versions_too_new(api_key: i16, version: i16) -> bool {
    api_key == ApiKey::ApiVersions as i16 && version > ApiKey::ApiVersions.valid_versions().max
}

/// A broker's answer to an ApiVersions version it does not support: a v0
/// body with `UNSUPPORTED_VERSION` and the ApiVersions versions it has.
pub fn unsupported_api_versions(correlation_id: i32) -> Bytes {
    let versions = ApiKey::ApiVersions.valid_versions();
    let body = ApiVersionsResponse::default()
        .with_error_code(UNSUPPORTED_VERSION)
        .with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(versions.min)
                .with_max_version(versions.max),
        ]);
    let mut out = BytesMut::new();
    // Header v0 and a v0 body always encode.
    let _ = ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, 0);
    let _ = body.encode(&mut out, 0);
    out.freeze()
}

/// APIs whose answers carry broker addresses the proxy does not rewrite
/// (KIP-932 share fetches, DescribeQuorum's listeners): carried on, they
/// would send clients around the gateway, so they are refused and not
/// advertised.
const ADDRESSES_NOT_REWRITTEN: [ApiKey; 3] = [
    ApiKey::DescribeQuorum,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
];

/// Whether requests of this API may be carried: it is one the proxy's
/// Kafka library knows (so none of its answers can surprise it) and its
/// answers carry no broker address the proxy leaves unrewritten.
pub fn forwardable(api_key: i16) -> bool {
    ApiKey::try_from(api_key).is_ok_and(|k| !ADDRESSES_NOT_REWRITTEN.contains(&k))
}

/// Whether a request gets a response (everything but `acks=0` produce),
/// or `None` for a produce request whose `acks` cannot be read.
pub fn expects_response(api_key: i16, version: i16, frame: &Bytes) -> Option<bool> {
    if api_key != ApiKey::Produce as i16 {
        return Some(true);
    }
    produce_acks(version, frame).map(|acks| acks != 0)
}

/// The `acks` of a produce request: the field after the header and, from
/// v3, the transactional id. Read by hand so the records stay undecoded.
fn produce_acks(version: i16, frame: &Bytes) -> Option<i16> {
    let header_version = ApiKey::Produce.request_header_version(version);
    let mut buf = frame.clone();
    RequestHeader::decode(&mut buf, header_version).ok()?;
    let mut rest: &[u8] = &buf;
    if version >= 3 {
        if version >= 9 {
            // Compact nullable string: unsigned varint (length + 1).
            let (len, used) = varint(rest)?;
            rest = rest.get(used + len.saturating_sub(1) as usize..)?;
        } else {
            let len = i16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
            rest = rest.get(2 + len.max(0) as usize..)?;
        }
    }
    Some(i16::from_be_bytes([*rest.first()?, *rest.get(1)?]))
}

fn varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for (i, b) in bytes.iter().take(5).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::{
        messages::{ProduceRequest, TransactionalId},
        protocol::StrBytes,
    };

    use super::*;

    fn produce(version: i16, acks: i16, client_id: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .encode(&mut out, ApiKey::Produce.request_header_version(version))
            .unwrap();
        ProduceRequest::default()
            .with_acks(acks)
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
            .encode(&mut out, version)
            .unwrap();
        let mut body = out.freeze();
        if !client_id.is_empty() {
            // Replace the (null) client id: key, version, correlation,
            // then an i16 length and the bytes.
            let mut patched = body[..8].to_vec();
            patched.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
            patched.extend_from_slice(client_id);
            patched.extend_from_slice(&body[10..]);
            body = Bytes::from(patched);
        }
        body
    }

    #[test]
    fn acks_are_read_at_every_version_and_an_unreadable_one_is_refused() {
        for version in [3, 8, 9, 11] {
            assert_eq!(
                expects_response(0, version, &produce(version, 0, b"")),
                Some(false)
            );
            assert_eq!(
                expects_response(0, version, &produce(version, 1, b"")),
                Some(true)
            );
            assert_eq!(
                expects_response(0, version, &produce(version, -1, b"")),
                Some(true)
            );
        }
        // A client id that is not UTF-8: a broker may accept it, but the
        // proxy cannot read acks behind it, so it refuses the request
        // rather than guess whether an answer will come.
        assert_eq!(expects_response(0, 8, &produce(8, 0, b"\xff\xfe")), None);
        assert_eq!(
            expects_response(0, 8, &Bytes::from_static(&[0, 0, 0, 8])),
            None
        );
        assert_eq!(
            expects_response(3, 12, &Bytes::new()),
            Some(true),
            "not a produce"
        );
    }

    #[test]
    fn apis_with_unrewritten_addresses_or_unknown_keys_are_not_carried() {
        assert!(forwardable(ApiKey::Metadata as i16));
        assert!(forwardable(ApiKey::Produce as i16));
        assert!(!forwardable(ApiKey::ShareFetch as i16));
        assert!(!forwardable(ApiKey::DescribeQuorum as i16));
        assert!(!forwardable(999));
        assert!(!forwardable(-1));
    }
}

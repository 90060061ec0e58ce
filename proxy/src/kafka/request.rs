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

/// Whether a request gets a response: everything but `acks=0` produce.
pub fn expects_response(api_key: i16, version: i16, frame: &[u8]) -> bool {
    api_key != ApiKey::Produce as i16 || produce_acks(version, frame) != Some(0)
}

/// The `acks` of a produce request: the field after the header and, from
/// v3, the transactional id. Read by hand so the records stay undecoded.
fn produce_acks(version: i16, frame: &[u8]) -> Option<i16> {
    let header_version = ApiKey::Produce.request_header_version(version);
    let mut buf = Bytes::copy_from_slice(frame.get(..frame.len().min(4096))?);
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

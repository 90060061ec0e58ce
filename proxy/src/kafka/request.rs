//! What the proxy reads of a request without decoding it: whether the
//! broker will answer it (every request but an `acks=0` Produce).

use bytes::Bytes;
use kafka_protocol::{
    messages::{ApiKey, RequestHeader},
    protocol::Decodable,
};

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

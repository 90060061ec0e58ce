//! Telling a client it is throttled, as brokers do: `throttle_time_ms`
//! in the Produce or Fetch answer (the larger of the broker's and the
//! gateway's); since KIP-219 a client waits that long itself. Answers are
//! never held back (a late Heartbeat answer would cost a rebalance): the
//! connection is muted instead, and its next requests wait out any debt
//! left, which holds clients older than KIP-219 (and those that ignore
//! the field) to the rate too.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, ProduceResponse, ResponseHeader},
    protocol::{Decodable, Encodable},
};

/// `body` (an answer to `api_key` at `version`) with `throttle_time_ms`
/// at least `ms`; unchanged for answers without the field. A Fetch
/// answer's field is overwritten in place (it follows the header); a
/// Produce answer (small: no records) is decoded and encoded again.
pub fn stamp(api_key: i16, version: i16, body: Bytes, ms: i32) -> Result<Bytes, String> {
    let Ok(api) = ApiKey::try_from(api_key) else {
        return Ok(body);
    };
    if version < 1 || !matches!(api, ApiKey::Produce | ApiKey::Fetch) {
        return Ok(body);
    }
    let header_version = api.response_header_version(version);
    let mut rest = body.clone();
    let header = ResponseHeader::decode(&mut rest, header_version)
        .map_err(|e| format!("response header: {e:#}"))?;
    let at = body.len() - rest.len();
    match api {
        ApiKey::Fetch => {
            let field = body
                .get(at..at + 4)
                .ok_or("a Fetch answer without throttle_time_ms")?;
            let theirs = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
            let mut out = BytesMut::from(&body[..]);
            out[at..at + 4].copy_from_slice(&theirs.max(ms).to_be_bytes());
            Ok(out.freeze())
        }
        _ => {
            let mut produce = ProduceResponse::decode(&mut rest, version)
                .map_err(|e| format!("Produce answer: {e:#}"))?;
            produce.throttle_time_ms = produce.throttle_time_ms.max(ms);
            let mut out = BytesMut::with_capacity(body.len());
            header
                .encode(&mut out, header_version)
                .and_then(|()| produce.encode(&mut out, version))
                .map_err(|e| format!("Produce answer: {e:#}"))?;
            Ok(out.freeze())
        }
    }
}

/// A throttle in whole milliseconds (rounded up), as the field holds it.
pub fn millis(throttle: std::time::Duration) -> i32 {
    i32::try_from(throttle.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
}

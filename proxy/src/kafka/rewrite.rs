//! Rewriting the responses that carry broker addresses, so clients only
//! ever see the listener's advertised host and ports: Metadata,
//! FindCoordinator (every version, batched keys too), DescribeCluster and
//! the KIP-951 `node_endpoints` of Produce (v10+) and Fetch (v16+).
//! ApiVersions is capped to what this proxy can decode. Everything else is
//! passed through untouched.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsResponse, DescribeClusterResponse, FetchResponse,
        FindCoordinatorResponse, MetadataResponse, ProduceResponse, ResponseHeader,
    },
    protocol::{Decodable, Encodable, StrBytes},
};

use crate::listener::routes::Mapping;

/// `COORDINATOR_NOT_AVAILABLE`: what a client sees for a coordinator the
/// listener has no port for (it retries).
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Whether responses of this API (at this version) carry broker addresses
/// or versions the proxy must limit.
pub fn needs_rewrite(api_key: i16, version: i16) -> bool {
    match ApiKey::try_from(api_key) {
        Ok(
            ApiKey::Metadata
            | ApiKey::FindCoordinator
            | ApiKey::DescribeCluster
            | ApiKey::ApiVersions,
        ) => true,
        Ok(ApiKey::Produce) => version >= 10,
        Ok(ApiKey::Fetch) => version >= 16,
        _ => false,
    }
}

/// Whether a request gets a response: everything but `acks=0` produce.
pub fn expects_response(api_key: i16, version: i16, frame: &[u8]) -> bool {
    api_key != ApiKey::Produce as i16 || produce_acks(version, frame) != Some(0)
}

/// The `acks` of a produce request: the field after the header and, from
/// v3, the transactional id. Read by hand so the records stay undecoded.
fn produce_acks(version: i16, frame: &[u8]) -> Option<i16> {
    use kafka_protocol::messages::RequestHeader;
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

/// What rewriting found besides the new bytes.
#[derive(Debug, Default)]
pub struct Findings {
    /// Real broker addresses seen (id, host, port), for the broker directory.
    pub brokers: Vec<(i32, String, i32)>,
    /// Broker ids the listener has no port for (listener-hop errors).
    pub unmapped: Vec<String>,
}

fn advertise(
    mapping: &Mapping,
    id: i32,
    host: &mut StrBytes,
    port: &mut i32,
    findings: &mut Findings,
) -> bool {
    findings
        .brokers
        .push((id, host.as_str().to_string(), *port));
    match mapping.port_of(id) {
        Ok(p) => {
            *host = StrBytes::from_string(mapping.advertised_host.clone());
            *port = i32::from(p);
            true
        }
        Err(e) => {
            findings.unmapped.push(e);
            false
        }
    }
}

fn encode<T: Encodable>(
    header: &ResponseHeader,
    header_version: i16,
    body: &T,
    version: i16,
) -> anyhow::Result<Bytes> {
    let mut out =
        BytesMut::with_capacity(header.compute_size(header_version)? + body.compute_size(version)?);
    header.encode(&mut out, header_version)?;
    body.encode(&mut out, version)?;
    Ok(out.freeze())
}

/// Rewrites one response frame of `api_key`/`version` for `mapping`.
pub fn rewrite(
    api_key: i16,
    version: i16,
    frame: Bytes,
    mapping: &Mapping,
) -> anyhow::Result<(Bytes, Findings)> {
    let key =
        ApiKey::try_from(api_key).map_err(|_| anyhow::anyhow!("unknown api key {api_key}"))?;
    let header_version = key.response_header_version(version);
    let mut buf = frame.clone();
    let header = ResponseHeader::decode(&mut buf, header_version)?;
    let mut findings = Findings::default();
    let out = match key {
        ApiKey::Metadata => {
            let mut body = MetadataResponse::decode(&mut buf, version)?;
            body.brokers.retain_mut(|b| {
                advertise(
                    mapping,
                    b.node_id.0,
                    &mut b.host,
                    &mut b.port,
                    &mut findings,
                )
            });
            encode(&header, header_version, &body, version)?
        }
        ApiKey::FindCoordinator => {
            let mut body = FindCoordinatorResponse::decode(&mut buf, version)?;
            if version < 4 {
                if body.error_code == 0
                    && !advertise(
                        mapping,
                        body.node_id.0,
                        &mut body.host,
                        &mut body.port,
                        &mut findings,
                    )
                {
                    body.error_code = COORDINATOR_NOT_AVAILABLE;
                    body.host = StrBytes::from_string(String::new());
                    body.port = -1;
                }
            } else {
                for c in &mut body.coordinators {
                    if c.error_code == 0
                        && !advertise(
                            mapping,
                            c.node_id.0,
                            &mut c.host,
                            &mut c.port,
                            &mut findings,
                        )
                    {
                        c.error_code = COORDINATOR_NOT_AVAILABLE;
                        c.host = StrBytes::from_string(String::new());
                        c.port = -1;
                    }
                }
            }
            encode(&header, header_version, &body, version)?
        }
        ApiKey::DescribeCluster => {
            let mut body = DescribeClusterResponse::decode(&mut buf, version)?;
            body.brokers.retain_mut(|b| {
                advertise(
                    mapping,
                    b.broker_id.0,
                    &mut b.host,
                    &mut b.port,
                    &mut findings,
                )
            });
            encode(&header, header_version, &body, version)?
        }
        ApiKey::Produce => {
            let mut body = ProduceResponse::decode(&mut buf, version)?;
            body.node_endpoints.retain_mut(|n| {
                advertise(
                    mapping,
                    n.node_id.0,
                    &mut n.host,
                    &mut n.port,
                    &mut findings,
                )
            });
            encode(&header, header_version, &body, version)?
        }
        ApiKey::Fetch => {
            let mut body = FetchResponse::decode(&mut buf, version)?;
            body.node_endpoints.retain_mut(|n| {
                advertise(
                    mapping,
                    n.node_id.0,
                    &mut n.host,
                    &mut n.port,
                    &mut findings,
                )
            });
            encode(&header, header_version, &body, version)?
        }
        ApiKey::ApiVersions => {
            let mut body = ApiVersionsResponse::decode(&mut buf, version)?;
            body.api_keys
                .retain_mut(|v| match ApiKey::try_from(v.api_key) {
                    Ok(k) => {
                        v.max_version = v.max_version.min(k.valid_versions().max);
                        v.min_version <= v.max_version
                    }
                    Err(_) => false,
                });
            encode(&header, header_version, &body, version)?
        }
        _ => frame,
    };
    Ok((out, findings))
}

#[cfg(test)]
mod tests;

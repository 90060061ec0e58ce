//! HAProxy PROXY protocol (v1 text, v2 binary) from trusted load
//! balancers: a connection from a trusted range must begin with a header,
//! whose source address then stands for the client; a connection from
//! anywhere else must not send one (a client could otherwise claim any
//! address). Headers are parsed with the `ppp` crate.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use ppp::{HeaderResult, PartialResult, v1, v2};
use tokio::{io::AsyncReadExt, net::TcpStream};

/// The longest header read: v1 is at most 107 bytes; v2 carries TLVs, and
/// a load balancer sends few.
const MAX_HEADER: usize = 1024;
/// The v2 signature; v1 begins with `PROXY `.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// Source ranges (CIDR) of the trusted load balancers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRanges(Vec<(IpAddr, u8)>);

impl TrustedRanges {
    /// Parses `trusted_ranges`; the error names the entry.
    pub fn parse(ranges: &[String]) -> Result<TrustedRanges, String> {
        let mut out = Vec::with_capacity(ranges.len());
        for (i, text) in ranges.iter().enumerate() {
            let bad = || format!("trusted_ranges[{i}]: {text:?} is not an address range (CIDR)");
            let (address, bits) = match text.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (text.as_str(), None),
            };
            let address: IpAddr = address.trim().parse().map_err(|_| bad())?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(bad)?,
                None => max,
            };
            out.push((address, bits));
        }
        if out.is_empty() {
            return Err("trusted_ranges: at least one range is needed".into());
        }
        Ok(TrustedRanges(out))
    }

    /// Whether `ip` is in one of the ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|(net, bits)| match (canonical(*net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                _ => false,
            })
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

/// The client address of a connection from `peer`: read from its PROXY
/// header when `peer` is trusted, its own otherwise. Errors say what the
/// listener refused.
pub async fn client_address(
    stream: &mut TcpStream,
    peer: SocketAddr,
    trusted: &TrustedRanges,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    let mut buf = vec![0u8; MAX_HEADER];
    let deadline = tokio::time::Instant::now() + timeout;
    let is_trusted = trusted.contains(peer.ip());
    loop {
        let seen = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .map_err(|_| {
                format!("no whole PROXY header from load balancer {peer} within {timeout:?}")
            })?
            .map_err(|e| format!("reading the PROXY header: {e}"))?;
        let data = &buf[..seen];
        if !is_trusted {
            // Only a prefix is needed to tell: a Kafka request never
            // begins with these bytes (its length would exceed any frame).
            let looks = starts_like(data, b"PROXY ") || starts_like(data, V2_SIGNATURE);
            if !looks {
                return Ok(peer);
            }
            let need = if data[0] == b'P' {
                6
            } else {
                V2_SIGNATURE.len()
            };
            if data.len() >= need {
                return Err(format!(
                    "{peer} sent a PROXY header but is not in proxy_protocol.trusted_ranges"
                ));
            }
            // A short prefix that might become a header: wait for more.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        if seen == 0 {
            return Err(format!("load balancer {peer} closed before a PROXY header"));
        }
        let parsed = HeaderResult::parse(data);
        if parsed.is_incomplete() {
            if seen == MAX_HEADER {
                return Err(format!(
                    "the PROXY header from {peer} exceeds {MAX_HEADER} bytes"
                ));
            }
            // `peek` returns at once while bytes are buffered: pause so a
            // header arriving in pieces is not busy-waited on.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let (length, source) = match parsed {
            HeaderResult::V1(Ok(h)) => (
                h.header.len(),
                match h.addresses {
                    v1::Addresses::Tcp4(a) => {
                        Some(SocketAddr::from((a.source_address, a.source_port)))
                    }
                    v1::Addresses::Tcp6(a) => {
                        Some(SocketAddr::from((a.source_address, a.source_port)))
                    }
                    v1::Addresses::Unknown => None,
                },
            ),
            HeaderResult::V2(Ok(h)) => (
                h.header.len(),
                match (h.command, h.addresses) {
                    (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                        Some(SocketAddr::from((a.source_address, a.source_port)))
                    }
                    (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                        Some(SocketAddr::from((a.source_address, a.source_port)))
                    }
                    _ => None,
                },
            ),
            HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => {
                return Err(format!(
                    "load balancer {peer} (in proxy_protocol.trusted_ranges) did not begin with a valid PROXY v1/v2 header"
                ));
            }
        };
        let mut header = vec![0u8; length];
        stream
            .read_exact(&mut header)
            .await
            .map_err(|e| format!("reading the PROXY header: {e}"))?;
        // LOCAL / UNKNOWN: the load balancer's own connection (health
        // checks): it stands for itself.
        return Ok(source.unwrap_or(peer));
    }
}

/// Whether `data` and `pattern` agree on their common prefix (and data
/// is not empty).
fn starts_like(data: &[u8], pattern: &[u8]) -> bool {
    let n = data.len().min(pattern.len());
    n > 0 && data[..n] == pattern[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_addresses() {
        let r = TrustedRanges::parse(&["10.0.0.0/8".into(), "::1".into(), "127.0.0.2/32".into()])
            .unwrap();
        assert!(r.contains("10.1.2.3".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(r.contains("::1".parse().unwrap()));
        assert!(r.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(r.contains("127.0.0.2".parse().unwrap()));
        assert!(!r.contains("127.0.0.3".parse().unwrap()));
        let err = TrustedRanges::parse(&["10.0.0.0/8".into(), "10.0.0.0/33".into()]).unwrap_err();
        assert!(err.starts_with("trusted_ranges[1]"), "{err}");
    }

    async fn through(bytes: Vec<u8>, trusted: &str) -> (Result<SocketAddr, String>, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let send = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut s = TcpStream::connect(at).await.unwrap();
            s.write_all(&bytes).await.unwrap();
            s
        });
        let (mut stream, peer) = listener.accept().await.unwrap();
        let ranges = TrustedRanges::parse(&[trusted.into()]).unwrap();
        let got = client_address(&mut stream, peer, &ranges, Duration::from_secs(2)).await;
        drop(send.await.unwrap());
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
        (got, rest)
    }

    #[tokio::test]
    async fn a_v1_header_from_a_trusted_peer_names_the_client() {
        let mut bytes = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 9092\r\n".to_vec();
        bytes.extend_from_slice(b"\0\0\0\x04kafk");
        let (got, rest) = through(bytes, "127.0.0.0/8").await;
        assert_eq!(got.unwrap(), "192.0.2.7:5555".parse().unwrap());
        assert_eq!(
            rest, b"\0\0\0\x04kafk",
            "the request after the header stays"
        );
    }

    #[tokio::test]
    async fn a_v2_header_from_a_trusted_peer_names_the_client() {
        let header = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (
                "198.51.100.9:4242".parse::<SocketAddr>().unwrap(),
                "127.0.0.1:9092".parse::<SocketAddr>().unwrap(),
            ),
        )
        .build()
        .unwrap();
        let mut bytes = header;
        bytes.extend_from_slice(b"rest");
        let (got, rest) = through(bytes, "127.0.0.1").await;
        assert_eq!(got.unwrap(), "198.51.100.9:4242".parse().unwrap());
        assert_eq!(rest, b"rest");
    }

    #[tokio::test]
    async fn untrusted_peers_cannot_claim_an_address() {
        let bytes = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 9092\r\n".to_vec();
        let (got, _) = through(bytes, "10.0.0.0/8").await;
        assert!(
            got.unwrap_err()
                .contains("not in proxy_protocol.trusted_ranges")
        );
        // A plain Kafka request from an untrusted peer is served as is.
        let (got, rest) = through(b"\0\0\0\x02ab".to_vec(), "10.0.0.0/8").await;
        assert_eq!(got.unwrap().ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(rest, b"\0\0\0\x02ab");
    }

    #[tokio::test]
    async fn a_trusted_peer_without_a_header_is_refused() {
        let (got, _) = through(b"\0\0\0\x02ab".to_vec(), "127.0.0.0/8").await;
        assert!(got.unwrap_err().contains("valid PROXY"));
    }
}

//! HAProxy PROXY protocol (v1 text, v2 binary) from trusted load
//! balancers: a connection from a trusted range must begin with a header,
//! whose source address then stands for the client; a connection from
//! anywhere else must not send one (a client could otherwise claim any
//! address). Headers are parsed with the `ppp` crate.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use ppp::{HeaderResult, v1, v2};
use tokio::{io::AsyncReadExt, net::TcpStream};

/// The longest header read: v1 is at most 107 bytes; v2 carries TLVs, and
/// a load balancer sends few.
const MAX_HEADER: usize = 1024;
/// The longest v1 header, CRLF included.
const MAX_V1_HEADER: usize = 107;
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
            // An IPv4-mapped range is the IPv4 range it maps (clients are
            // compared as IPv4 too); a wider one is not a range of either.
            let (address, bits) = match address {
                IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                    let v4 = v6.to_ipv4_mapped().ok_or_else(bad)?;
                    let bits = bits.checked_sub(96).ok_or_else(bad)?;
                    (IpAddr::V4(v4), bits)
                }
                other => (other, bits),
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
        self.0.iter().any(|(net, bits)| match (*net, ip) {
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
    // Never indexes past either address, whatever the prefix says.
    if a.len() != b.len() || a.get(..whole) != b.get(..whole) || a.get(..whole).is_none() {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    matches!((a.get(whole), b.get(whole)), (Some(x), Some(y)) if x & mask == y & mask)
}

/// The client address of a connection from `peer`: read from its PROXY
/// header when `peer` is trusted, its own otherwise. Errors say what the
/// listener refused. Nothing is polled: an untrusted peer is judged by
/// its first byte, and a trusted one's header is read exactly (its own
/// length fields say how far), so nothing after it is consumed.
pub async fn client_address(
    stream: &mut TcpStream,
    peer: SocketAddr,
    trusted: &TrustedRanges,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    let late = |_| format!("no whole PROXY header from load balancer {peer} within {timeout:?}");
    if !trusted.contains(peer.ip()) {
        let mut first = [0u8; 1];
        let seen = tokio::time::timeout(timeout, stream.peek(&mut first))
            .await
            .map_err(|_| format!("the client {peer} sent nothing within {timeout:?}"))?
            .map_err(|e| format!("reading the first byte: {e}"))?;
        // A Kafka request never begins with the first byte of a PROXY
        // header (its length would exceed any frame), nor does TLS.
        if seen == 1 && (first[0] == b'P' || first[0] == V2_SIGNATURE[0]) {
            return Err(format!(
                "{peer} sent a PROXY header but is not in proxy_protocol.trusted_ranges"
            ));
        }
        return Ok(peer);
    }
    let header = tokio::time::timeout(timeout, read_header(stream, peer))
        .await
        .map_err(late)??;
    let source = match HeaderResult::parse(&header) {
        HeaderResult::V1(Ok(h)) => match h.addresses {
            v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Unknown => None,
        },
        HeaderResult::V2(Ok(h)) => match (h.command, h.addresses) {
            (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            _ => None,
        },
        HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => return Err(invalid(peer)),
    };
    // LOCAL / UNKNOWN: the load balancer's own connection (health
    // checks): it stands for itself.
    Ok(source.unwrap_or(peer))
}

fn invalid(peer: SocketAddr) -> String {
    format!(
        "load balancer {peer} (in proxy_protocol.trusted_ranges) did not begin with a valid PROXY v1/v2 header"
    )
}

/// Reads exactly one PROXY header: v1 up to its CRLF, v2 as far as its
/// length field says; at most [`MAX_HEADER`] bytes.
async fn read_header(stream: &mut TcpStream, peer: SocketAddr) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            format!("load balancer {peer} closed before a whole PROXY header")
        }
        _ => format!("reading the PROXY header: {e}"),
    };
    // "PROXY " or the first six bytes of the v2 signature.
    let mut header = vec![0u8; 6];
    stream.read_exact(&mut header).await.map_err(io)?;
    if header == b"PROXY " {
        // Usually the whole line is there: take it in one read.
        let mut peeked = [0u8; MAX_V1_HEADER - 6];
        let seen = stream.peek(&mut peeked).await.map_err(io)?;
        if let Some(end) = peeked[..seen].windows(2).position(|w| w == b"\r\n") {
            let mut rest = vec![0u8; end + 2];
            stream.read_exact(&mut rest).await.map_err(io)?;
            header.extend_from_slice(&rest);
            return Ok(header);
        }
        // In pieces: byte by byte up to the CRLF (nothing after it taken).
        while !header.ends_with(b"\r\n") {
            if header.len() >= MAX_V1_HEADER {
                return Err(invalid(peer));
            }
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.map_err(io)?;
            header.push(byte[0]);
        }
        return Ok(header);
    }
    if header[..] != V2_SIGNATURE[..6] {
        return Err(invalid(peer));
    }
    // The rest of the signature, version/command, family, length.
    header.resize(16, 0);
    stream.read_exact(&mut header[6..]).await.map_err(io)?;
    let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if 16 + length > MAX_HEADER {
        return Err(format!(
            "the PROXY header from {peer} exceeds {MAX_HEADER} bytes"
        ));
    }
    header.resize(16 + length, 0);
    stream.read_exact(&mut header[16..]).await.map_err(io)?;
    Ok(header)
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
        // IPv4-mapped ranges are the IPv4 ranges they map (this panicked).
        let mapped = TrustedRanges::parse(&["::ffff:10.0.0.0/104".into()]).unwrap();
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(mapped.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("11.0.0.1".parse().unwrap()));
        let all = TrustedRanges::parse(&["::ffff:0.0.0.0/96".into()]).unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!(TrustedRanges::parse(&["::ffff:0.0.0.0/95".into()]).is_err());
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
        // Its first byte is enough to tell: nothing is waited for.
        let (got, _) = through(b"P".to_vec(), "10.0.0.0/8").await;
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
    async fn a_header_arriving_in_pieces_is_read_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let send = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut s = TcpStream::connect(at).await.unwrap();
            for piece in [
                &b"PRO"[..],
                b"XY TCP4 192.0.2.7 127.0",
                b".0.1 5555 9092\r\nnext",
            ] {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            s
        });
        let (mut stream, peer) = listener.accept().await.unwrap();
        let ranges = TrustedRanges::parse(&["127.0.0.1".into()]).unwrap();
        let got = client_address(&mut stream, peer, &ranges, Duration::from_secs(2)).await;
        assert_eq!(got.unwrap(), "192.0.2.7:5555".parse().unwrap());
        drop(send.await.unwrap());
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"next");
        // A v1 header that never ends is refused at its longest length.
        let (got, _) = through([&b"PROXY "[..], &[b'x'; 200]].concat(), "127.0.0.1").await;
        assert!(got.unwrap_err().contains("valid PROXY"));
    }

    #[tokio::test]
    async fn a_trusted_peer_without_a_header_is_refused() {
        let (got, _) = through(b"\0\0\0\x02ab".to_vec(), "127.0.0.0/8").await;
        assert!(got.unwrap_err().contains("valid PROXY"));
    }
}

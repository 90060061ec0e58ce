//! A raw Kafka probe: one ApiVersions request on any stream (plain TCP or
//! TLS), to tell whether a port serves a client or refuses it, without a
//! client library's retries and timeouts.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// ApiVersions v0 (header v1, client id "probe"), correlation id 1.
pub const API_VERSIONS: [u8; 19] = [
    0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 1, 0, 5, b'p', b'r', b'o', b'b', b'e',
];

/// Whether an ApiVersions request on `stream` is answered whole within
/// `wait` (true) or the connection ends without an answer (false).
pub async fn answered<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, wait: Duration) -> bool {
    if stream.write_all(&API_VERSIONS).await.is_err() || stream.flush().await.is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    if !matches!(
        tokio::time::timeout(wait, stream.read_exact(&mut len)).await,
        Ok(Ok(_))
    ) {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 20) as usize];
    matches!(
        tokio::time::timeout(wait, stream.read_exact(&mut body)).await,
        Ok(Ok(_))
    )
}

/// A TLS connection to `address` as a client that trusts `ca_pem`, asks
/// for `server_name` (SNI, and the name checked) and presents `identity`
/// when given.
pub async fn tls_connect(
    address: &str,
    server_name: &str,
    ca_pem: &str,
    identity: Option<&crate::pki::Pair>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots);
    let config = match identity {
        Some(pair) => {
            let chain = CertificateDer::pem_slice_iter(pair.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(std::io::Error::other)?;
            let key = PrivateKeyDer::from_pem_slice(pair.key.as_bytes())
                .map_err(std::io::Error::other)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(std::io::Error::other)?
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(server_name.to_string()).map_err(std::io::Error::other)?;
    let tcp = tokio::net::TcpStream::connect(address).await?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The DER of the certificate a TLS connection's server presented.
pub fn served_certificate(
    stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> Option<Vec<u8>> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.to_vec())
}

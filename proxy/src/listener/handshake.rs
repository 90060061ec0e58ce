//! A new connection's hello on the listener hop: TLS or plaintext, told
//! apart by the first byte on one port (a TLS record begins with 0x16, a
//! Kafka request with its length, which would be far above any frame
//! limit), then the TLS handshake with the listener's current
//! certificates: the SNI name asked for and the verified client
//! certificate are kept for routing, logs and authentication.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::routes::Port;
use crate::{
    hop::{Hop, HopError, Kind},
    io::Stream,
    tls::identity::ClientCertificate,
};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a client presented before its first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The client's address (from a trusted PROXY header, or the peer's).
    pub address: SocketAddr,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The SNI host name it asked for.
    pub sni: Option<String>,
    /// Its certificate, verified against the listener's trust bundles.
    pub certificate: Option<Arc<ClientCertificate>>,
    /// The certificate chain it presented (leaf first), kept to check it
    /// again when the listener's client_authentication changes.
    pub chain: Vec<CertificateDer<'static>>,
}

impl Hello {
    /// A plaintext client at `address`.
    pub fn plaintext(address: SocketAddr) -> Hello {
        Hello {
            address,
            tls: false,
            sni: None,
            certificate: None,
            chain: Vec::new(),
        }
    }
}

/// Reads the client's hello within `timeout`: `Ok(None)` when it closed
/// (or reset the connection) before sending anything.
pub async fn greet(
    tcp: TcpStream,
    port: &Port,
    address: SocketAddr,
    timeout: Duration,
) -> Result<Option<(Stream, Hello)>, HopError> {
    let fail = |kind, message: String| {
        HopError::new(Hop::Listener, port.listener_id.clone(), kind, message)
    };
    let mut first = [0u8; 1];
    let seen = match tokio::time::timeout(timeout, tcp.peek(&mut first)).await {
        Ok(Ok(n)) => n,
        // Reset or aborted before a byte: a load balancer's TCP health
        // check, say. Nothing was asked, so nothing was refused.
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            return Ok(None);
        }
        Ok(Err(e)) => return Err(fail(Kind::BadFrame, format!("reading the first byte: {e}"))),
        Err(_) => {
            return Err(fail(
                Kind::Timeout,
                format!("the client sent nothing within {timeout:?}"),
            ));
        }
    };
    if seen == 0 {
        return Ok(None);
    }
    if first[0] != TLS_HANDSHAKE {
        return Ok(Some((Stream::Tcp(tcp), Hello::plaintext(address))));
    }
    let Some(tls) = &port.tls else {
        return Err(fail(
            Kind::TlsHandshake,
            "the client began a TLS handshake, but this listener has no listener_policy_tls_server (connect with security.protocol=PLAINTEXT or add TLS to the listener)".into(),
        ));
    };
    let accepted = tokio::time::timeout(timeout, TlsAcceptor::from(tls.config.clone()).accept(tcp))
        .await
        .map_err(|_| {
            fail(
                Kind::Timeout,
                format!("the TLS handshake did not finish within {timeout:?}"),
            )
        })?
        .map_err(|e| {
            fail(
                Kind::TlsHandshake,
                format!(
                    "TLS handshake failed (listener_policy_tls_server {}): {}",
                    tls.policy_id,
                    client_reason(&e)
                ),
            )
        })?;
    let session = accepted.get_ref().1;
    let hello = Hello {
        address,
        tls: true,
        sni: session.server_name().map(str::to_string),
        certificate: session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| ClientCertificate::from_der(leaf))
            .map(Arc::new),
        chain: session
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
    };
    Ok(Some((
        Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(accepted))),
        hello,
    )))
}

/// Why a client's handshake failed, in an operator's words.
fn client_reason(e: &std::io::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
        return e.to_string();
    };
    let why = match tls {
        E::NoCertificatesPresented => {
            "the client presented no certificate (client_authentication.mode = required; \
             librdkafka sends none when its certificate's CA is not one the listener trusts)"
        }
        E::InvalidCertificate(C::UnknownIssuer) => {
            "the client's certificate is not signed by a CA of client_authentication.trust_bundle_ids"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the client's certificate has expired"
        }
        E::PeerIncompatible(_) => {
            "the client offers no TLS version or cipher this listener accepts (versions)"
        }
        E::AlertReceived(_) => {
            "the client refused the server's certificate (does it trust the CA, and does the certificate name the host it dialled?)"
        }
        _ => "",
    };
    if why.is_empty() {
        tls.to_string()
    } else {
        format!("{why} ({tls})")
    }
}

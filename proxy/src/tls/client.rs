//! TLS towards the brokers: the compiled form of `backend_cluster.tls`
//! (trusted CAs, versions, the gateway's own certificate for mutual TLS)
//! and the handshake, whose failures say why in words an operator knows
//! (expired, unknown CA, name mismatch).

use std::sync::Arc;

use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use sluice_proto::admin::v1::{BackendTls, TlsVersion};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{certified_key, provider, roots, versions};
use crate::io::Stream;

/// Compiles a backend's TLS settings, or says which field cannot be used
/// (the backend's connections are then refused).
pub fn compile(tls: &BackendTls) -> Result<Arc<ClientConfig>, String> {
    let offered: Vec<i32> = tls.versions.clone();
    let (min, max) = if offered.is_empty() {
        (0, 0)
    } else {
        let rank = |v: &i32| {
            if *v == TlsVersion::Tls13 as i32 {
                13
            } else {
                12
            }
        };
        let lowest = offered.iter().min_by_key(|v| rank(v)).copied().unwrap_or(0);
        let highest = offered.iter().max_by_key(|v| rank(v)).copied().unwrap_or(0);
        (lowest, highest)
    };
    for v in &offered {
        if TlsVersion::try_from(*v).is_err() {
            return Err(format!("tls.versions: {v} is unknown to this node"));
        }
    }
    let versions = versions(min, max).map_err(|e| format!("tls.versions: {e}"))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls.versions: {e}"))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
    } else if tls.ca_bundle.trim().is_empty() {
        let store = system_roots();
        if store.is_empty() {
            return Err(
                "tls.ca_bundle: empty, and this node has no system CA certificates to use instead"
                    .into(),
            );
        }
        builder.with_root_certificates(store.clone())
    } else {
        builder.with_root_certificates(roots(&tls.ca_bundle, "tls.ca_bundle")?)
    };
    let config = match &tls.client_identity {
        Some(identity) => {
            let key = certified_key(identity, "tls.client_identity")?;
            builder
                .with_client_auth_cert(key.cert.clone(), private_key(identity)?)
                .map_err(|e| format!("tls.client_identity: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn private_key(
    identity: &sluice_proto::admin::v1::CertificateAndKey,
) -> Result<rustls::pki_types::PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    let pem = identity
        .key
        .as_ref()
        .map(|k| k.value.as_str())
        .unwrap_or("");
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "tls.client_identity.key: not a PEM private key".to_string())
}

/// The system's CA certificates, read once per process (not once per
/// revision): a node picks up a changed system store when it restarts.
pub(crate) fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
            Arc::new(store)
        })
        .clone()
}

/// Runs the TLS handshake with the broker at `address` (`host:port`),
/// checking its certificate against the host part.
pub async fn handshake(
    config: &Arc<ClientConfig>,
    tcp: TcpStream,
    address: &str,
) -> Result<Stream, String> {
    let host = host_of(address);
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is not a host name or IP address TLS can verify"))?;
    TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map(|s| Stream::Tls(Box::new(s.into())))
        .map_err(|e| format!("TLS handshake failed: {}", reason(&e)))
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Why a handshake failed, in an operator's words.
pub(crate) fn reason(e: &std::io::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
        return e.to_string();
    };
    let why = match tls {
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the broker's certificate has expired"
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the broker's certificate is not valid yet"
        }
        E::InvalidCertificate(C::UnknownIssuer) => {
            "the broker's certificate is signed by an unknown CA (not in tls.ca_bundle)"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the broker's certificate does not name the address dialled (name mismatch)"
        }
        E::AlertReceived(alert) => {
            return format!(
                "the broker refused the handshake (alert {alert:?}; does it require a client certificate, tls.client_identity?)"
            );
        }
        _ => "",
    };
    if why.is_empty() {
        tls.to_string()
    } else {
        format!("{why} ({tls})")
    }
}

/// Why a broker ended a TLS session right after the handshake (TLS 1.3
/// reports a refused client certificate only then), if that is what a
/// failed read says; `None` for any other failure.
pub(crate) fn refused_after_handshake(e: &crate::kafka::frame::FrameError) -> Option<String> {
    let crate::kafka::frame::FrameError::Io(io) = e else {
        return None;
    };
    io.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .map(|_| format!("TLS: {}", reason(io)))
}

/// `insecure_skip_verify`: any certificate is accepted, but handshake
/// signatures are still checked, so the session is at least with the
/// holder of the presented key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_an_address() {
        assert_eq!(host_of("broker.example:9093"), "broker.example");
        assert_eq!(host_of("127.0.0.2:9093"), "127.0.0.2");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }
}

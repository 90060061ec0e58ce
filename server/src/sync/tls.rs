//! The sync endpoint's mutual TLS: a server certificate from the control
//! plane's CA, and client certificates verified against every gateway CA
//! (the set grows at runtime, so the verifier reads it per handshake). The
//! handlers read the verified peer certificate from tonic's connect info.

use std::{io, sync::Arc, time::Duration};

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::{pki, store::Store};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Verifies client certificates against the gateway CAs the store knows now.
#[derive(Debug)]
struct GatewayCaVerifier {
    store: StoreRoots,
    provider: Arc<CryptoProvider>,
}

/// The store, behind Debug (rustls requires verifiers to be Debug).
struct StoreRoots(Store);

impl std::fmt::Debug for StoreRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gateway CA roots")
    }
}

impl ClientCertVerifier for GatewayCaVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let roots = self.store.0.gateway_ca_roots();
        let mut store = rustls::RootCertStore::empty();
        for root in roots.iter() {
            store
                .add(root.clone())
                .map_err(|e| rustls::Error::General(format!("gateway CA: {e}")))?;
        }
        if store.is_empty() {
            return Err(rustls::Error::General(
                "no gateway CA exists yet: issue a data_plane_certificate first".into(),
            ));
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(store), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS acceptor of the sync endpoint: a fresh server certificate from
/// the control plane's CA for `names` (IPs and DNS names).
pub async fn acceptor(store: &Store, names: &[String]) -> anyhow::Result<TlsAcceptor> {
    let ca = store.control_plane_ca().await?;
    let issued = ca.issue("sluice-server sync endpoint", pki::Usage::Server, names)?;
    let mut chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    chain.push(pki::first_cert_der(&ca.cert_pem)?);
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.unwrap_or_default().as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(GatewayCaVerifier {
        store: StoreRoots(store.clone()),
        provider: provider.clone(),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections, runs the TLS handshakes concurrently and yields
/// the authenticated connections; failed handshakes are logged and dropped.
pub fn accept_loop(
    store: Store,
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> mpsc::Receiver<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "sync endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            // A certificate issued by another process (`sluice-server
            // dataplane-cert issue`) may come from a CA this one has not
            // loaded yet.
            if let Err(e) = store.reload_roots().await {
                tracing::warn!(error = %e, "could not reload gateway CAs");
            }
            let acceptor = acceptor.clone();
            let conns = tx.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::warn!(%remote, error = %e, "sync endpoint: TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%remote, "sync endpoint: TLS handshake timed out");
                        return;
                    }
                };
                let _ = conns.send(Ok(tls)).await;
            });
            if tx.is_closed() {
                break;
            }
        }
    });
    rx
}

//! AutoMTLS for go-plugin hosts: a fresh server certificate for
//! `localhost`, and a client verifier pinned to exactly the certificate
//! the host announced in `PLUGIN_CLIENT_CERT`. The host's certificate is a
//! self-signed CA with a P-521 key, so the verifier compares bytes instead
//! of building a chain, and checks P-521 handshake signatures itself
//! (ring has no P-521).

use std::sync::Arc;

use anyhow::Context;
use p521::ecdsa::{DerSignature, Signature, VerifyingKey, signature::Verifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::danger::{ClientCertVerified, ClientCertVerifier},
};

#[derive(Debug)]
struct PinnedClient {
    der: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

fn verify_p521(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let bad = |what: &str| rustls::Error::General(format!("P-521 signature: {what}"));
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| bad("unreadable certificate"))?;
    let key = VerifyingKey::from_sec1_bytes(&parsed.public_key().subject_public_key.data)
        .map_err(|_| bad("not a P-521 key"))?;
    let der = DerSignature::try_from(dss.signature()).map_err(|_| bad("malformed signature"))?;
    let signature = Signature::try_from(der).map_err(|_| bad("malformed signature"))?;
    key.verify(message, &signature)
        .map_err(|_| bad("does not verify"))?;
    Ok(HandshakeSignatureValid::assertion())
}

impl ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the client certificate the plugin host announced".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            return verify_p521(message, cert, dss);
        }
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            return verify_p521(message, cert, dss);
        }
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self
            .provider
            .signature_verification_algorithms
            .supported_schemes();
        schemes.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        schemes
    }
}

/// A TLS server config for the plugin, and the DER of its certificate (for
/// the handshake line).
pub fn server_config(client_pem: &str) -> anyhow::Result<(rustls::ServerConfig, Vec<u8>)> {
    let client = CertificateDer::pem_slice_iter(client_pem.as_bytes())
        .next()
        .context("PLUGIN_CLIENT_CERT holds no certificate")??;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key)?;
    let der = cert.der().to_vec();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedClient {
        der: client.as_ref().to_vec(),
        provider: provider.clone(),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?,
        )?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((config, der))
}

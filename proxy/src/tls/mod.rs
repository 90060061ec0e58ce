//! TLS on both sides of the proxy, through rustls: [`server`] terminates
//! clients' TLS on a listener (`listener_policy_tls_server`), [`client`]
//! speaks TLS to the brokers (`backend_cluster.tls`), [`identity`] reads
//! a verified client certificate. Configurations are compiled once per
//! applied revision; a bad one makes the affected path refuse its
//! connections, never fall back to plaintext.

pub mod client;
pub mod identity;
pub mod server;

use std::sync::Arc;

use rustls::{
    RootCertStore, SupportedProtocolVersion,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use sluice_proto::admin::v1::{CertificateAndKey, TlsVersion};

/// The crypto provider every TLS configuration of the proxy uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls versions for a stored range (unset bounds: TLS 1.2 and 1.3),
/// or why there are none.
pub(crate) fn versions(
    min: i32,
    max: i32,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let rank = |v: i32, default: u8| match TlsVersion::try_from(v) {
        Ok(TlsVersion::Unspecified) => Ok(default),
        Ok(TlsVersion::Tls12) => Ok(12),
        Ok(TlsVersion::Tls13) => Ok(13),
        Err(_) => Err(format!("TLS version {v} is unknown to this node")),
    };
    let (min, max) = (rank(min, 12)?, rank(max, 13)?);
    let out: Vec<_> = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(r, _)| (min..=max).contains(r))
        .map(|(_, v)| v)
        .collect();
    if out.is_empty() {
        return Err(format!("no TLS version between tls{min} and tls{max}"));
    }
    Ok(out)
}

/// The certificates of a PEM text (`field` names it in errors).
pub(crate) fn certificates(pem: &str, field: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{field}: not PEM certificates ({e})"))?;
    if certs.is_empty() {
        return Err(format!("{field}: no CERTIFICATE block"));
    }
    Ok(certs)
}

/// A root store of the CA certificates in a PEM text.
pub(crate) fn roots(pem: &str, field: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in certificates(pem, field)? {
        store
            .add(cert)
            .map_err(|e| format!("{field}: a CA certificate is unusable ({e})"))?;
    }
    Ok(store)
}

/// A certificate chain and its key, checked to belong together. Errors
/// never quote the key.
pub(crate) fn certified_key(
    pair: &CertificateAndKey,
    field: &str,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = certificates(&pair.certificate, &format!("{field}.certificate"))?;
    let key_pem = pair.key.as_ref().map(|k| k.value.as_str()).unwrap_or("");
    if key_pem.is_empty() {
        return Err(format!(
            "{field}.key: no private key reached this node (the control plane sent none)"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| format!("{field}.key: not a PEM private key"))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| {
            format!("{field}: the key is unusable or does not match the certificate ({e})")
        })
}

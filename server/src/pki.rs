//! Certificate authorities: one per gateway (signs its data-plane node
//! certificates) and the control plane's own (signs the sync endpoint's
//! server certificate). Keys are sealed under the master key at rest.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use sha2::{Digest, Sha256};

/// How long issued leaf certificates are valid.
const LEAF_DAYS: i64 = 365;

/// A CA certificate and its private key.
#[derive(Clone)]
pub struct Authority {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA private key, PEM (held in memory only while signing).
    pub key_pem: String,
}

/// A certificate issued by an [`Authority`].
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The generated private key, PEM, when the authority generated it.
    pub key_pem: Option<String>,
    /// `sha256:<hex>` of the certificate's DER.
    pub fingerprint: String,
    /// When the certificate expires.
    pub expires_at: std::time::SystemTime,
}

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A data-plane node authenticating to the sync endpoint.
    Client,
    /// The sync endpoint itself.
    Server,
}

/// `sha256:<hex>` of a certificate's DER encoding.
pub fn fingerprint_der(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// The DER of the first certificate in a PEM text.
pub fn first_cert_der(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .context("no CERTIFICATE block in PEM")?
        .context("unreadable CERTIFICATE block")
}

fn leaf_params(
    common_name: &str,
    usage: Usage,
    sans: &[String],
) -> anyhow::Result<(CertificateParams, std::time::SystemTime)> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![match usage {
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
    }];
    for san in sans {
        params
            .subject_alt_names
            .push(match san.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(san.clone().try_into().context("bad DNS name")?),
            });
    }
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(LEAF_DAYS);
    Ok((params, params_expiry(now + time::Duration::days(LEAF_DAYS))))
}

fn params_expiry(t: time::OffsetDateTime) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.unix_timestamp().max(0) as u64)
}

impl Authority {
    /// Generates a new self-signed CA.
    pub fn generate(common_name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Sluice");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn issuer(&self) -> anyhow::Result<Issuer<'static, KeyPair>> {
        let key = KeyPair::from_pem(&self.key_pem).context("CA key")?;
        Ok(Issuer::from_ca_cert_pem(&self.cert_pem, key)?)
    }

    /// Issues a certificate with a freshly generated key.
    pub fn issue(
        &self,
        common_name: &str,
        usage: Usage,
        sans: &[String],
    ) -> anyhow::Result<Issued> {
        let key = KeyPair::generate()?;
        let (params, expires_at) = leaf_params(common_name, usage, sans)?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(Issued {
            fingerprint: fingerprint_der(cert.der()),
            cert_pem: cert.pem(),
            key_pem: Some(key.serialize_pem()),
            expires_at,
        })
    }

    /// Signs a PEM certificate signing request as a client certificate; the
    /// subject is `common_name`, whatever the request asked for.
    pub fn sign_csr(&self, csr_pem: &str, common_name: &str) -> Result<Issued, String> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("not a readable certificate signing request: {e}"))?;
        let (params, expires_at) =
            leaf_params(common_name, Usage::Client, &[]).map_err(|e| e.to_string())?;
        let request = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let issuer = self.issuer().map_err(|e| e.to_string())?;
        let cert = request.signed_by(&issuer).map_err(|e| e.to_string())?;
        Ok(Issued {
            fingerprint: fingerprint_der(cert.der()),
            cert_pem: cert.pem(),
            key_pem: None,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_signs_requests() {
        let ca = Authority::generate("test CA").unwrap();
        let issued = ca.issue("node-1", Usage::Client, &[]).unwrap();
        assert!(issued.cert_pem.contains("BEGIN CERTIFICATE"));
        assert_eq!(
            issued.fingerprint,
            fingerprint_der(&first_cert_der(&issued.cert_pem).unwrap())
        );
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let signed = ca.sign_csr(&csr, "node-2").unwrap();
        assert!(signed.key_pem.is_none());
        assert!(
            ca.sign_csr(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
                "x"
            )
            .is_err()
        );
    }
}

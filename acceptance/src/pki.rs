//! Test certificates made at test time with rcgen: a CA, server and
//! client certificates with the names asked for (DNS names, wildcards, IP
//! addresses), and expired ones — written as PEM files for clients and
//! brokers that read files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The certificate (leaf only).
    pub cert: String,
    /// The private key.
    pub key: String,
}

impl Pair {
    /// Writes `<name>.crt` and `<name>.key` into `dir`; their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert).expect("write certificate");
        std::fs::write(&key, &self.key).expect("write key");
        (cert, key)
    }

    /// As the admin API's certificate-and-key (the key as a secret).
    pub fn to_proto(&self) -> sluice_proto::admin::v1::CertificateAndKey {
        sluice_proto::admin::v1::CertificateAndKey {
            certificate: self.cert.clone(),
            key: Some(sluice_proto::admin::v1::Secret {
                value: self.key.clone(),
                ..Default::default()
            }),
        }
    }

    /// The certificate's DER (to compare with what a server presented).
    pub fn der(&self) -> Vec<u8> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        CertificateDer::from_pem_slice(self.cert.as_bytes())
            .expect("a PEM certificate")
            .to_vec()
    }

    /// Certificate then key in one PEM file (HAProxy's `crt`).
    pub fn write_combined(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, format!("{}{}", self.cert, self.key)).expect("write pem");
        path
    }
}

/// A test certificate authority.
pub struct Ca {
    /// The CA certificate, PEM.
    pub cert: String,
    key: KeyPair,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS servers (listeners, brokers).
    Server,
    /// TLS clients (mutual TLS).
    Client,
}

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            cert: cert.pem(),
            key,
        }
    }

    /// Writes the CA certificate as `<name>.crt` into `dir`; its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.crt"));
        std::fs::write(&path, &self.cert).expect("write CA");
        path
    }

    /// A certificate for `names` (DNS names, `*.` wildcards or IP
    /// addresses), valid from an hour ago for a day.
    pub fn issue(&self, common_name: &str, names: &[&str], usage: Usage) -> Pair {
        let now = time::OffsetDateTime::now_utc();
        self.issue_valid(
            common_name,
            names,
            usage,
            now - time::Duration::hours(1),
            now + time::Duration::days(1),
        )
    }

    /// A certificate that expired an hour ago.
    pub fn issue_expired(&self, common_name: &str, names: &[&str], usage: Usage) -> Pair {
        let now = time::OffsetDateTime::now_utc();
        self.issue_valid(
            common_name,
            names,
            usage,
            now - time::Duration::days(2),
            now - time::Duration::hours(1),
        )
    }

    fn issue_valid(
        &self,
        common_name: &str,
        names: &[&str],
        usage: Usage,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Pair {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().expect("DNS name")),
            });
        }
        params.not_before = not_before;
        params.not_after = not_after;
        let issuer = Issuer::from_ca_cert_pem(&self.cert, &self.key).expect("issuer");
        let cert = params.signed_by(&key, &issuer).expect("sign");
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

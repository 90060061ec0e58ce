//! What a verified client certificate says about its holder: the subject
//! (and its common name) and the subject alternative names, kept on the
//! connection for logs and for `client_certificate` authentication.

use x509_parser::{
    extensions::GeneralName,
    prelude::{FromDer, X509Certificate},
};

/// The identity in a client certificate the listener verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientCertificate {
    /// The subject, RFC 4514 style (`CN=app,O=team-a`).
    pub subject: String,
    /// The subject's first common name, if any.
    pub common_name: Option<String>,
    /// Subject alternative names: `DNS:…`, `IP:…`, `URI:…`, `email:…`.
    pub alternative_names: Vec<String>,
}

impl ClientCertificate {
    /// Reads the leaf certificate (DER); `None` when it cannot be parsed
    /// (rustls verified it, so that does not happen in practice).
    pub fn from_der(der: &[u8]) -> Option<ClientCertificate> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        let mut alternative_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => alternative_names.push(format!("DNS:{d}")),
                    GeneralName::URI(u) => alternative_names.push(format!("URI:{u}")),
                    GeneralName::RFC822Name(e) => alternative_names.push(format!("email:{e}")),
                    GeneralName::IPAddress(ip) => {
                        if let Some(ip) = ip_of(ip) {
                            alternative_names.push(format!("IP:{ip}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(ClientCertificate {
            subject: subject.to_string(),
            common_name,
            alternative_names,
        })
    }
}

fn ip_of(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_and_alternative_names_are_read() {
        let mut params = rcgen::CertificateParams::new(vec!["app.team-a.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "app-1");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let id = ClientCertificate::from_der(cert.der()).unwrap();
        assert_eq!(id.common_name.as_deref(), Some("app-1"));
        assert!(id.subject.contains("CN=app-1"), "{}", id.subject);
        assert_eq!(
            id.alternative_names,
            ["DNS:app.team-a.example", "IP:127.0.0.1"]
        );
    }
}

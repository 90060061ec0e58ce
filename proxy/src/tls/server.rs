//! TLS termination on a listener: the compiled form of a
//! `listener_policy_tls_server` — which certificate to serve for which
//! SNI name, the versions, whether plaintext is also accepted, and how
//! client certificates are verified. A revision compiles new rustls
//! configurations; handshakes in progress and established sessions keep
//! theirs, so rotation drops nothing.

use std::sync::Arc;

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier, danger::ClientCertVerifier},
    sign::CertifiedKey,
};
use sluice_proto::admin::v1::{
    ClientAuthenticationMode, Kind, ListenerPolicyTlsServer, entity::Spec,
};

use super::{certified_key, provider, roots, versions};
use crate::config::Config;

/// A listener's TLS, compiled.
#[derive(Debug)]
pub struct TlsServer {
    /// The tls_server policy entity.
    pub policy_id: String,
    /// What the handshake runs with.
    pub config: Arc<ServerConfig>,
    /// Whether plaintext clients are served too.
    pub allow_plaintext: bool,
    /// How client certificates are verified, when they are.
    pub client_trust: Option<Arc<ClientTrust>>,
}

fn hex_prefix(digest: &[u8; 32]) -> String {
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// How a listener verifies client certificates: kept so connections
/// established under older settings are checked again when they change.
pub struct ClientTrust {
    /// Whether a certificate is required (else only requested).
    pub required: bool,
    /// SHA-256 over the trusted CA certificates (PEM), bundle by bundle.
    bundles: [u8; 32],
    verifier: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrust")
            .field("required", &self.required)
            .field("bundles", &hex_prefix(&self.bundles))
            .finish()
    }
}

impl ClientTrust {
    /// Whether both verify the same way.
    pub fn same_as(&self, other: &ClientTrust) -> bool {
        self.required == other.required && self.bundles == other.bundles
    }

    /// Checks a client's certificate chain (leaf first; empty when it
    /// sent none) as a new handshake would, or says why it would fail.
    pub fn accepts(&self, chain: &[CertificateDer<'static>]) -> Result<(), String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return if self.required {
                Err(
                    "the listener now requires a client certificate and the client presented none"
                        .into(),
                )
            } else {
                Ok(())
            };
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| {
                format!("the client's certificate no longer passes client_authentication ({e})")
            })
    }
}

impl TlsServer {
    /// Compiles a listener's tls_server policy, or says which field
    /// cannot be used (the listener then refuses every connection).
    pub fn compile(
        config: &Config,
        policy_id: &str,
        spec: &ListenerPolicyTlsServer,
    ) -> Result<TlsServer, String> {
        if spec.certificates.is_empty() {
            return Err("certificates: at least one certificate is needed".into());
        }
        let mut chains = Vec::with_capacity(spec.certificates.len());
        for (i, pair) in spec.certificates.iter().enumerate() {
            chains.push(certified_key(pair, &format!("certificates[{i}]"))?);
        }
        let (min, max) = spec.versions.as_ref().map_or((0, 0), |r| (r.min, r.max));
        let versions = versions(min, max).map_err(|e| format!("versions: {e}"))?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("versions: {e}"))?;
        let mut client_trust = None;
        let builder = match &spec.client_authentication {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                let mode = ClientAuthenticationMode::try_from(auth.mode).map_err(|_| {
                    format!(
                        "client_authentication.mode: {} is unknown to this node",
                        auth.mode
                    )
                })?;
                if auth.trust_bundle_ids.is_empty() {
                    return Err("client_authentication.trust_bundle_ids: at least one trust bundle is needed".into());
                }
                let mut store = rustls::RootCertStore::empty();
                let mut bundles = Vec::with_capacity(auth.trust_bundle_ids.len());
                for (i, id) in auth.trust_bundle_ids.iter().enumerate() {
                    let field = format!("client_authentication.trust_bundle_ids[{i}]");
                    let Some(Spec::TlsTrustBundle(bundle)) =
                        config.get(id).and_then(|e| e.spec.as_ref())
                    else {
                        return Err(format!(
                            "{field}: {id} is not a tls_trust_bundle on this node"
                        ));
                    };
                    let trusted = roots(
                        &bundle.trusted_ca,
                        &format!("tls_trust_bundle({id}).trusted_ca"),
                    )?;
                    store.roots.extend(trusted.roots);
                    bundles.push(bundle.trusted_ca.clone());
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider());
                let verifier = match mode {
                    ClientAuthenticationMode::Requested => verifier.allow_unauthenticated(),
                    ClientAuthenticationMode::Required | ClientAuthenticationMode::Unspecified => {
                        verifier
                    }
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| format!("client_authentication: {e}"))?;
                let digest = {
                    use sha2::{Digest, Sha256};
                    let mut hasher = Sha256::new();
                    for pem in &bundles {
                        hasher.update((pem.len() as u64).to_be_bytes());
                        hasher.update(pem.as_bytes());
                    }
                    hasher.finalize().into()
                };
                client_trust = Some(Arc::new(ClientTrust {
                    required: mode != ClientAuthenticationMode::Requested,
                    bundles: digest,
                    verifier: verifier.clone(),
                }));
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_cert_resolver(Arc::new(BySni { chains }));
        // Kafka is not HTTP: no ALPN is negotiated.
        server.alpn_protocols.clear();
        Ok(TlsServer {
            policy_id: policy_id.to_string(),
            config: Arc::new(server),
            allow_plaintext: spec.allow_plaintext,
            client_trust,
        })
    }
}

/// The tls_server policy of a listener (the lowest id if there were
/// several; the control plane allows one).
pub fn policy_of<'a>(
    config: &'a Config,
    listener_id: &str,
) -> Option<(&'a str, &'a ListenerPolicyTlsServer)> {
    config
        .of_kind(Kind::ListenerPolicyTlsServer)
        .filter_map(|e| match &e.spec {
            Some(Spec::ListenerPolicyTlsServer(t)) if t.listener_id == listener_id => {
                Some((e.id.as_str(), t))
            }
            _ => None,
        })
        .min_by_key(|(id, _)| *id)
}

/// Serves the first chain whose leaf certificate is valid for the
/// client's SNI name (wildcards included), or the first chain when the
/// client sent no name or no chain matches it (the client's own name
/// check then fails on its side, and routing refuses an unknown name).
#[derive(Debug)]
struct BySni {
    chains: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let first = self.chains.first().cloned();
        if self.chains.len() < 2 {
            return first;
        }
        let Some(name) = hello.server_name() else {
            return first;
        };
        let Ok(name) = ServerName::try_from(name.to_string()) else {
            return first;
        };
        self.chains
            .iter()
            .find(|chain| {
                chain
                    .cert
                    .first()
                    .is_some_and(|leaf| valid_for(leaf, &name))
            })
            .cloned()
            .or(first)
    }
}

/// Whether a leaf certificate names `name` in its SANs.
fn valid_for(leaf: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    webpki::EndEntityCert::try_from(leaf)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
}

#[cfg(test)]
mod tests {
    use sluice_proto::{
        admin::v1::{CertificateAndKey, ClientAuthentication, Entity, Secret, TlsTrustBundle},
        dataplane::v1::ConfigUpdate,
    };

    use super::*;

    struct Ca {
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    }

    fn ca(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn client_chain(ca: &Ca) -> Vec<CertificateDer<'static>> {
        let mut params = rcgen::CertificateParams::new(vec!["app.example".into()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.cert.pem(), &ca.key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        vec![cert.der().clone()]
    }

    /// The client check of a tls_server trusting `bundle` (its CA).
    fn trust(bundle: &Ca, mode: ClientAuthenticationMode) -> Arc<ClientTrust> {
        let config = crate::config::Config::default()
            .apply(&ConfigUpdate {
                revision: 1,
                snapshot: true,
                upserted: vec![Entity {
                    id: "bundle".into(),
                    gateway_id: "gw".into(),
                    spec: Some(Spec::TlsTrustBundle(TlsTrustBundle {
                        trusted_ca: bundle.cert.pem(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["kafka.localhost".into()])
            .unwrap()
            .self_signed(&server_key)
            .unwrap();
        let spec = ListenerPolicyTlsServer {
            listener_id: "listener".into(),
            certificates: vec![CertificateAndKey {
                certificate: server.pem(),
                key: Some(Secret {
                    value: server_key.serialize_pem(),
                    ..Default::default()
                }),
            }],
            client_authentication: Some(ClientAuthentication {
                mode: mode as i32,
                trust_bundle_ids: vec!["bundle".into()],
            }),
            ..Default::default()
        };
        TlsServer::compile(&config, "tls", &spec)
            .unwrap()
            .client_trust
            .unwrap()
    }

    #[test]
    fn an_open_connection_is_checked_again_as_a_new_handshake_would_be() {
        let (a, b) = (ca("ca-a"), ca("ca-b"));
        let chain = client_chain(&a);
        let required_a = trust(&a, ClientAuthenticationMode::Required);
        assert_eq!(required_a.accepts(&chain), Ok(()));
        // The trust bundle now holds another CA: the certificate fails.
        let required_b = trust(&b, ClientAuthenticationMode::Required);
        assert!(!required_b.same_as(&required_a));
        let err = required_b.accepts(&chain).unwrap_err();
        assert!(
            err.contains("no longer passes client_authentication"),
            "{err}"
        );
        // A client that sent none is let in while certificates are only
        // requested, and not once they are required.
        let requested = trust(&a, ClientAuthenticationMode::Requested);
        assert_eq!(requested.accepts(&[]), Ok(()));
        let err = required_a.accepts(&[]).unwrap_err();
        assert!(err.contains("now requires a client certificate"), "{err}");
        assert!(trust(&a, ClientAuthenticationMode::Required).same_as(&required_a));
    }
}

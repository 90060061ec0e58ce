//! TLS termination on a listener: the compiled form of a
//! `listener_policy_tls_server` — which certificate to serve for which
//! SNI name, the versions, whether plaintext is also accepted, and how
//! client certificates are verified. A revision compiles new rustls
//! configurations; handshakes in progress and established sessions keep
//! theirs, so rotation drops nothing.

use std::sync::Arc;

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, ServerName},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
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

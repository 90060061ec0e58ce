//! The admin API client the provider uses (`endpoint`, `token`,
//! `ca_certificate`, `request_timeout`): every call carries the bearer
//! token, is bounded in time, retried on UNAVAILABLE when it only reads,
//! cancelled by StopProvider, and an unreachable server is reported once
//! (see [`guard`]).

pub mod guard;

use std::{sync::Arc, time::Duration};

use sluice_proto::{admin::v1::admin_service_client::AdminServiceClient, tfplugin6::Diagnostic};
use tokio::sync::watch;
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

pub use guard::{Backoff, Guarded};

use crate::{
    diagnostics::{attribute_path, diagnostic},
    plugin::value::Value,
};

/// An authenticated, guarded admin client.
pub type Admin = AdminServiceClient<Guarded<Channel>>;

/// How long one admin call may take when neither `request_timeout` nor
/// `SLUICE_REQUEST_TIMEOUT` says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest `request_timeout` accepted (one hour).
pub const MAX_REQUEST_TIMEOUT_SECS: f64 = 3600.0;

/// How to reach the admin API.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `http://host:port` or `https://host:port`.
    pub endpoint: String,
    /// The admin token.
    pub token: String,
    /// A PEM CA to trust instead of the public roots (https only).
    pub ca_pem: Option<String>,
    /// The bound on one call, retries included.
    pub request_timeout: Duration,
}

/// `request_timeout` in seconds as a duration, or why it cannot be one.
pub fn parse_timeout(seconds: f64) -> Result<Duration, String> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_REQUEST_TIMEOUT_SECS {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(format!(
            "{seconds} is not a number of seconds above 0 and at most {MAX_REQUEST_TIMEOUT_SECS}"
        ))
    }
}

/// The settings from the provider configuration, the `SLUICE_*`
/// variables (read through `env`) filling what it leaves null; each
/// missing or invalid one is an error at its attribute.
pub fn settings(
    config: &Value,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, Vec<Diagnostic>> {
    let pick = |name: &str, var: &str| {
        config
            .get(name)
            .as_str()
            .map(str::to_string)
            .or_else(|| env(var))
            .unwrap_or_default()
    };
    let endpoint = pick("endpoint", "SLUICE_ENDPOINT");
    let token = pick("token", "SLUICE_TOKEN");
    let ca = pick("ca_certificate", "SLUICE_CA_CERTIFICATE");
    let mut errors = Vec::new();
    let mut error = |name: &str, summary: &str, detail: &str| {
        errors.push(diagnostic(summary, detail, Some(attribute_path(name))));
    };
    if endpoint.is_empty() {
        error(
            "endpoint",
            "missing endpoint",
            "set endpoint or SLUICE_ENDPOINT",
        );
    }
    if token.is_empty() {
        error("token", "missing token", "set token or SLUICE_TOKEN");
    }
    let timeout = match config.get("request_timeout") {
        Value::Number(n) => parse_timeout(*n),
        _ => match env("SLUICE_REQUEST_TIMEOUT") {
            Some(text) if !text.trim().is_empty() => text
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("SLUICE_REQUEST_TIMEOUT={text:?} is not a number"))
                .and_then(parse_timeout),
            _ => Ok(DEFAULT_REQUEST_TIMEOUT),
        },
    };
    let request_timeout = timeout.unwrap_or_else(|e| {
        error("request_timeout", "invalid request_timeout", &e);
        DEFAULT_REQUEST_TIMEOUT
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        endpoint,
        token,
        ca_pem: Some(ca).filter(|c| !c.trim().is_empty()),
        request_timeout,
    })
}

/// StopProvider's signal: once given, every admin call in flight or to
/// come ends with a "stopped" error.
#[derive(Clone, Debug)]
pub struct Stop(Arc<watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Stop(Arc::new(watch::channel(false).0))
    }
}

impl Stop {
    /// Cancels every call, now and later.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`Stop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once [`Stop::stop`] is called.
    pub async fn stopped(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// A (lazily) connected admin API.
#[derive(Clone)]
pub struct Connection {
    /// The admin client.
    pub admin: Admin,
    channel: Guarded<Channel>,
}

/// Connects (lazily) to the admin API; `stop` cancels its calls.
pub fn connect(settings: &Settings, stop: &Stop) -> anyhow::Result<Connection> {
    let endpoint = &settings.endpoint;
    let mut target = Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| anyhow::anyhow!("endpoint {endpoint:?}: {e}"))?
        .connect_timeout(Duration::from_secs(10).min(settings.request_timeout));
    let ca = settings.ca_pem.as_deref().filter(|c| !c.trim().is_empty());
    if endpoint.starts_with("https://") {
        // A CA given is the only one trusted; otherwise the public roots.
        let tls = match ca {
            Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        target = target.tls_config(tls)?;
    } else if ca.is_some() {
        anyhow::bail!(
            "ca_certificate is set but the endpoint {endpoint} is not https://: use https:// or leave ca_certificate unset"
        );
    }
    let authorization = format!("Bearer {}", settings.token)
        .parse()
        .map_err(|_| anyhow::anyhow!("token contains characters a header cannot carry"))?;
    let channel = Guarded::new(
        target.connect_lazy(),
        guard::Policy {
            endpoint: endpoint.clone(),
            authorization,
            timeout: settings.request_timeout,
            backoff: Backoff::default(),
        },
        stop.clone(),
    );
    Ok(Connection {
        admin: AdminServiceClient::new(channel.clone()),
        channel,
    })
}

impl Connection {
    /// Checks once that the admin API answers (its gRPC health service),
    /// so that an unreachable server is one error at configuration rather
    /// than one per resource. A server without the health service passes.
    pub async fn check(&self) -> Result<(), String> {
        check(self.channel.clone()).await
    }
}

/// [`Connection::check`].
async fn check(channel: Guarded<Channel>) -> Result<(), String> {
    let endpoint = channel.endpoint().to_string();
    match HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if matches!(s.code(), Code::Unimplemented | Code::NotFound) => Ok(()),
        Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded) => {
            Err(s.message().to_string())
        }
        Err(s) => Err(format!(
            "the Sluice admin API at {endpoint} answered its health check with {:?}: {}",
            s.code(),
            s.message()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(endpoint: &str) -> Settings {
        Settings {
            endpoint: endpoint.into(),
            token: "t".into(),
            ca_pem: None,
            request_timeout: Duration::from_secs(5),
        }
    }

    /// A TLS server on loopback whose self-signed certificate no public
    /// root vouches for; its address.
    async fn self_signed_server() -> String {
        use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        format!("https://localhost:{port}")
    }

    #[tokio::test]
    async fn https_without_a_ca_verifies_against_the_public_roots() {
        // Without roots tonic refuses at once ("Connecting to HTTPS
        // without TLS enabled"); with them the handshake runs and the
        // self-signed certificate is refused as from an unknown issuer.
        let endpoint = self_signed_server().await;
        let conn = connect(&plain(&endpoint), &Stop::default()).unwrap();
        let err = conn.check().await.unwrap_err();
        assert!(
            err.contains("cannot reach the Sluice admin API") && err.contains("UnknownIssuer"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_ca_on_plain_http_is_refused() {
        let mut s = plain("http://127.0.0.1:1");
        s.ca_pem = Some("-----BEGIN CERTIFICATE-----".into());
        assert!(connect(&s, &Stop::default()).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_one_clear_error_then_short_ones() {
        let port = free_port().await;
        let endpoint = format!("http://127.0.0.1:{port}");
        let conn = connect(&plain(&endpoint), &Stop::default()).unwrap();
        let first = conn.check().await.unwrap_err();
        assert!(
            first.contains(&format!("cannot reach the Sluice admin API at {endpoint}"))
                && first.contains("SLUICE_ENDPOINT")
                && first.contains("sluice-server"),
            "{first}"
        );
        let mut admin = conn.admin.clone();
        let later = admin
            .get_entity(sluice_proto::admin::v1::GetEntityRequest::default())
            .await
            .unwrap_err();
        assert_eq!(later.code(), Code::Unavailable);
        assert!(later.message().contains("unreachable"), "{later:?}");
        assert!(later.message().len() < first.len(), "{later:?}");
    }

    #[test]
    fn settings_come_from_the_configuration_then_the_environment() {
        use std::collections::BTreeMap;
        let env = |name: &str| {
            [
                ("SLUICE_ENDPOINT", "http://env:7600"),
                ("SLUICE_TOKEN", "env-token"),
                ("SLUICE_REQUEST_TIMEOUT", "12.5"),
            ]
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
        };
        let config = Value::Map(BTreeMap::from([(
            "endpoint".to_string(),
            Value::String("https://cfg:7600".into()),
        )]));
        let s = settings(&config, env).unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.token.as_str(), s.request_timeout),
            (
                "https://cfg:7600",
                "env-token",
                Duration::from_millis(12_500)
            )
        );
        assert_eq!(s.ca_pem, None);
        let config = Value::Map(BTreeMap::from([(
            "request_timeout".to_string(),
            Value::Number(0.0),
        )]));
        let errors = settings(&config, |_| None).unwrap_err();
        let summaries: Vec<&str> = errors.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "missing endpoint",
                "missing token",
                "invalid request_timeout"
            ]
        );
        let bad_env = |name: &str| (name == "SLUICE_REQUEST_TIMEOUT").then(|| "soon".to_string());
        assert!(settings(&config_with_endpoint_and_token(), bad_env).is_err());
        assert_eq!(
            settings(&config_with_endpoint_and_token(), |_| None)
                .unwrap()
                .request_timeout,
            DEFAULT_REQUEST_TIMEOUT
        );
    }

    fn config_with_endpoint_and_token() -> Value {
        Value::Map(
            [("endpoint", "http://a:1"), ("token", "t")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.into())))
                .collect(),
        )
    }

    #[test]
    fn timeouts_are_bounded() {
        assert_eq!(parse_timeout(30.0), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout(0.5), Ok(Duration::from_millis(500)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 3601.0] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    async fn free_port() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }
}

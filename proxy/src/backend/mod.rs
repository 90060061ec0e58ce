//! The backend hop: the backend cluster as the proxy dials it (TLS and
//! SASL included), broker addresses learned from its metadata, and
//! upstream connections to the broker a client addressed.

mod metadata;
pub mod sasl;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use sluice_proto::admin::v1::{BackendCluster, ScramAlgorithm, backend_authentication::Method};
use tokio::{net::TcpStream, task::JoinHandle, time::Instant};

pub use metadata::fetch_brokers;
use sasl::{Credentials, Mechanism};

use crate::{
    hop::{Hop, HopError, Kind},
    io::Stream,
    listener::routes::Role,
    node::Node,
};

/// How long connecting to a broker may take (TCP, TLS and SASL).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A backend cluster as the proxy dials it.
#[derive(Clone)]
pub struct Backend {
    /// The entity id.
    pub id: String,
    /// Where to bootstrap from.
    pub bootstrap_servers: Vec<String>,
    /// How often its broker list is refreshed.
    pub metadata_interval: Duration,
    /// TLS towards its brokers, when enabled.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SASL towards its brokers, when configured.
    pub sasl: Option<Credentials>,
    /// Set when it is configured with something this node cannot enforce
    /// or use: its connections are refused, it is never dialled.
    pub refused: Option<HopError>,
    /// The stored settings, for telling whether they changed.
    spec: BackendCluster,
}

impl PartialEq for Backend {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.spec == other.spec
    }
}

impl Eq for Backend {}

impl Backend {
    /// Whether a connection dialled under `self` is dialled the way
    /// `other` would dial it: the same backend, TLS and SASL settings. A
    /// connection whose backend's security settings changed is not.
    pub fn dials_like(&self, other: &Backend) -> bool {
        self.id == other.id
            && self.spec.tls == other.spec.tls
            && self.spec.authentication == other.spec.authentication
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("id", &self.id)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .field("refused", &self.refused)
            .finish()
    }
}

/// The first TLS setting a `tls` block holds besides `enabled`, if any:
/// such a block with `enabled = false` is a mistake, not plaintext.
pub fn tls_settings_without_enabled(
    tls: &sluice_proto::admin::v1::BackendTls,
) -> Option<&'static str> {
    if tls.enabled {
        None
    } else if !tls.ca_bundle.is_empty() {
        Some("ca_bundle")
    } else if tls.client_identity.is_some() {
        Some("client_identity")
    } else if tls.insecure_skip_verify {
        Some("insecure_skip_verify")
    } else {
        None
    }
}

impl Backend {
    /// Compiles a backend cluster; what cannot be used (a TLS setting, an
    /// authentication method unknown to this node) sets `refused`.
    pub fn compile(id: &str, spec: &BackendCluster) -> Backend {
        let mut backend = Backend {
            id: id.to_string(),
            bootstrap_servers: spec.bootstrap_servers.clone(),
            metadata_interval: Duration::from_secs(u64::from(
                spec.metadata_update_interval_seconds.max(1),
            )),
            tls: None,
            sasl: None,
            refused: None,
            spec: spec.clone(),
        };
        let refuse = |kind, message: String| {
            Some(HopError::new(
                Hop::BackendCluster,
                id,
                kind,
                format!("{message}; connections are refused"),
            ))
        };
        match spec.tls.as_ref() {
            Some(tls) if tls.enabled => match crate::tls::client::compile(tls) {
                Ok(config) => backend.tls = Some(config),
                Err(e) => backend.refused = refuse(Kind::InvalidConfig, e),
            },
            Some(tls) => {
                if let Some(field) = tls_settings_without_enabled(tls) {
                    backend.refused = refuse(
                        Kind::InvalidConfig,
                        format!(
                            "tls.{field} is set but tls.enabled is false: the gateway will not \
                         dial the brokers in plaintext with TLS settings configured"
                        ),
                    );
                }
            }
            None => {}
        }
        let password = |p: &Option<sluice_proto::admin::v1::Secret>| {
            p.as_ref().map(|s| s.value.clone()).unwrap_or_default()
        };
        match spec.authentication.as_ref().map(|a| a.method.as_ref()) {
            None | Some(Some(Method::Anonymous(_))) => {}
            Some(Some(Method::SaslPlain(p))) => {
                backend.sasl = Some(Credentials {
                    mechanism: Mechanism::Plain,
                    username: p.username.clone(),
                    password: password(&p.password),
                });
            }
            Some(Some(Method::SaslScram(s))) => match ScramAlgorithm::try_from(s.algorithm) {
                Ok(ScramAlgorithm::Sha256) | Ok(ScramAlgorithm::Sha512) => {
                    backend.sasl = Some(Credentials {
                        mechanism: if s.algorithm == ScramAlgorithm::Sha256 as i32 {
                            Mechanism::ScramSha256
                        } else {
                            Mechanism::ScramSha512
                        },
                        username: s.username.clone(),
                        password: password(&s.password),
                    });
                }
                _ => {
                    backend.refused = backend.refused.take().or(refuse(
                        Kind::NotEnforced,
                        format!(
                            "authentication.sasl_scram.algorithm {} is unknown to this node",
                            s.algorithm
                        ),
                    ));
                }
            },
            Some(None) => {
                backend.refused = backend.refused.take().or(refuse(
                    Kind::NotEnforced,
                    "authentication: a method unknown to this node".into(),
                ));
            }
        }
        if backend.sasl.as_ref().is_some_and(|c| c.password.is_empty()) {
            backend.refused = backend.refused.take().or(refuse(
                Kind::InvalidConfig,
                "authentication: no password reached this node".into(),
            ));
        }
        backend
    }
}

/// Why opening a broker connection failed.
#[derive(Debug)]
pub struct OpenError {
    /// Which step: unreachable, TLS, authentication.
    pub kind: Kind,
    /// What happened, naming the address.
    pub message: String,
}

/// Opens a connection to one broker address: TCP, then TLS and SASL as the
/// backend is configured, all within [`CONNECT_TIMEOUT`]; a step that
/// does not finish in time is named (a TLS handshake that never completes
/// is a broker not serving TLS on that port, not an unreachable one).
pub async fn open(backend: &Backend, address: &str) -> Result<Stream, OpenError> {
    open_as(backend, address, Upstream::Gateway).await
}

/// Whose credentials an upstream connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The backend cluster's own (SASL done by the gateway, when configured).
    Gateway,
    /// None yet: the client's own SASL exchange is relayed on it, or the
    /// gateway authenticates it later ([`authenticate`]).
    Bare,
}

/// [`open`], authenticating with the backend's credentials or not.
pub async fn open_as(
    backend: &Backend,
    address: &str,
    upstream: Upstream,
) -> Result<Stream, OpenError> {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    let fail = |kind, message: String| OpenError {
        kind,
        message: format!("{address}: {message}"),
    };
    let late = |kind, step: &'static str| {
        move |_| {
            fail(
                kind,
                format!("{step} did not finish within {CONNECT_TIMEOUT:?}"),
            )
        }
    };
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(address))
        .await
        .map_err(late(Kind::Unreachable, "connecting"))?
        .map_err(|e| fail(Kind::Unreachable, e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut stream = match &backend.tls {
        None => Stream::Tcp(tcp),
        Some(config) => tokio::time::timeout_at(
            deadline,
            crate::tls::client::handshake(config, tcp, address),
        )
        .await
        .map_err(late(
            Kind::TlsHandshake,
            "the TLS handshake (does the broker serve TLS on this port?)",
        ))?
        .map_err(|e| fail(Kind::TlsHandshake, e))?,
    };
    if let (Some(credentials), Upstream::Gateway) = (&backend.sasl, upstream) {
        tokio::time::timeout_at(deadline, sasl::authenticate(&mut stream, credentials))
            .await
            .map_err(late(Kind::AuthFailed, "SASL authentication"))?
            .map_err(|e| fail(e.kind, e.message))?;
    }
    Ok(stream)
}

/// Authenticates a bare upstream (dialled to `address`) with the backend
/// cluster's credentials, when it has any: what a connection whose client
/// the gateway authenticated itself needs before its first request.
pub async fn authenticate(
    backend: &Backend,
    stream: &mut Stream,
    address: &str,
) -> Result<(), HopError> {
    let Some(credentials) = &backend.sasl else {
        return Ok(());
    };
    let fail = |kind, message: String| {
        HopError::new(
            Hop::BackendCluster,
            backend.id.clone(),
            kind,
            format!("{address}: {message}"),
        )
    };
    tokio::time::timeout(CONNECT_TIMEOUT, sasl::authenticate(stream, credentials))
        .await
        .map_err(|_| {
            fail(
                Kind::AuthFailed,
                format!("SASL authentication did not finish within {CONNECT_TIMEOUT:?}"),
            )
        })?
        .map_err(|e| fail(e.kind, e.message))
}

/// How often a client asking for a broker id the directory does not know
/// may trigger a metadata fetch of its backend: connections naming
/// unknown ids (any id can be asked for by SNI name) cost at most one
/// fetch per backend per this interval, and concurrent ones share it.
const UNKNOWN_BROKER_REFETCH: Duration = Duration::from_secs(1);

/// Broker addresses (id → host:port) per backend cluster.
#[derive(Default)]
pub struct Directory {
    brokers: RwLock<HashMap<String, HashMap<i32, String>>>,
    /// Per backend: when a connection last fetched its brokers.
    fetches: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

impl Directory {
    /// Records brokers seen in a metadata answer.
    pub fn learn(&self, backend_id: &str, brokers: &[(i32, String, i32)]) {
        if brokers.is_empty() {
            return;
        }
        if let Ok(mut all) = self.brokers.write() {
            let map = all.entry(backend_id.to_string()).or_default();
            for (id, host, port) in brokers {
                map.insert(*id, format!("{host}:{port}"));
            }
        }
    }

    /// The lock a connection takes before fetching a backend's brokers,
    /// holding when that last happened.
    fn fetch_lock(&self, backend_id: &str) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        match self.fetches.lock() {
            Ok(mut all) => all.entry(backend_id.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// The address of a broker, if known.
    pub fn address(&self, backend_id: &str, broker: i32) -> Option<String> {
        self.brokers
            .read()
            .ok()?
            .get(backend_id)?
            .get(&broker)
            .cloned()
    }
}

/// Connects to the broker a client addressed: any bootstrap server for the
/// bootstrap port, the broker with that id for a broker port (learning the
/// cluster's brokers first when needed).
pub async fn connect(
    backend: &Backend,
    role: Role,
    directory: &Directory,
) -> Result<(Stream, String), HopError> {
    connect_as(backend, role, directory, Upstream::Gateway).await
}

/// [`connect`], with the backend's credentials or bare.
pub async fn connect_as(
    backend: &Backend,
    role: Role,
    directory: &Directory,
    upstream: Upstream,
) -> Result<(Stream, String), HopError> {
    let backend_id = backend.id.as_str();
    let fail =
        |kind, message: String| HopError::new(Hop::BackendCluster, backend_id, kind, message);
    if let Some(refused) = &backend.refused {
        return Err(refused.clone());
    }
    let mut last: Option<OpenError> = None;
    match role {
        Role::Bootstrap => {
            for address in &backend.bootstrap_servers {
                match open_as(backend, address, upstream).await {
                    Ok(s) => return Ok((s, address.clone())),
                    Err(e) => last = Some(e),
                }
            }
            Err(match last {
                // TLS and authentication failures keep their kind: the
                // broker answered, the gateway could not get in.
                Some(e) if e.kind != Kind::Unreachable => fail(e.kind, e.message),
                Some(e) => fail(
                    Kind::Unreachable,
                    format!("no bootstrap server answered ({})", e.message),
                ),
                None => fail(Kind::Unreachable, "no bootstrap_servers".into()),
            })
        }
        Role::Broker(id) => {
            if directory.address(backend_id, id).is_none() {
                // One fetch at a time per backend, and none if one ran
                // within UNKNOWN_BROKER_REFETCH: a client naming made-up
                // broker ids cannot make the gateway hammer the backend.
                let lock = directory.fetch_lock(backend_id);
                let mut fetched = lock.lock().await;
                let recent = fetched.is_some_and(|at| at.elapsed() < UNKNOWN_BROKER_REFETCH);
                if directory.address(backend_id, id).is_none() && !recent {
                    *fetched = Some(Instant::now());
                    for address in &backend.bootstrap_servers {
                        match fetch_brokers(backend, address).await {
                            Ok(brokers) => {
                                directory.learn(backend_id, &brokers);
                                last = None;
                                break;
                            }
                            Err(e) => last = Some(e),
                        }
                    }
                }
            }
            let Some(address) = directory.address(backend_id, id) else {
                return Err(match last {
                    Some(e)
                        if e.kind != Kind::Unreachable && e.kind != Kind::MetadataRefreshFailed =>
                    {
                        fail(e.kind, e.message)
                    }
                    last => fail(
                        Kind::UnknownBroker,
                        format!(
                            "the backend reports no broker {id}{}",
                            last.map(|e| format!(" ({})", e.message))
                                .unwrap_or_default()
                        ),
                    ),
                });
            };
            open_as(backend, &address, upstream)
                .await
                .map(|s| (s, address.clone()))
                .map_err(|e| fail(e.kind, format!("broker {id} at {}", e.message)))
        }
    }
}

/// Keeps one refresh task per backend cluster, each fetching its broker
/// list every `metadata_update_interval_seconds` (answers passing through
/// the proxy refresh it in between), so one silent backend delays only
/// itself. Tasks follow the configuration: started, restarted when their
/// backend changes, stopped when it goes.
pub async fn refresh_loop(node: Arc<Node>) {
    let mut tasks: HashMap<String, (Arc<Backend>, JoinHandle<()>)> = HashMap::new();
    let mut changes = node.config.watch();
    loop {
        let config = node.config.current();
        let backends = &config.compiled().backends;
        tasks.retain(|id, (had, task)| {
            let keep = backends.get(id).is_some_and(|now| now == had);
            if !keep {
                task.abort();
            }
            keep
        });
        // A backend this node refuses to serve is not dialled either.
        for (id, backend) in backends.iter().filter(|(_, b)| b.refused.is_none()) {
            if !tasks.contains_key(id) {
                let task = tokio::spawn(refresh(node.clone(), backend.clone()));
                tasks.insert(id.clone(), (backend.clone(), task));
            }
        }
        if changes.changed().await.is_err() {
            break;
        }
    }
    for (_, (_, task)) in tasks {
        task.abort();
    }
}

/// Refreshes one backend's broker list until aborted.
async fn refresh(node: Arc<Node>, backend: Arc<Backend>) {
    loop {
        let mut failure = None;
        for address in &backend.bootstrap_servers {
            match fetch_brokers(&backend, address).await {
                Ok(brokers) => {
                    node.directory.learn(&backend.id, &brokers);
                    failure = None;
                    break;
                }
                Err(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            // TLS and authentication failures keep their kind, so an
            // expired certificate or a wrong password is named as such.
            let kind = match e.kind {
                Kind::TlsHandshake | Kind::AuthFailed => e.kind,
                _ => Kind::MetadataRefreshFailed,
            };
            node.report(&HopError::new(
                Hop::BackendCluster,
                backend.id.clone(),
                kind,
                format!("metadata refresh failed: {}", e.message),
            ));
        }
        tokio::time::sleep(backend.metadata_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{BackendCluster, BackendTls};

    use super::*;

    #[test]
    fn a_tls_block_with_settings_but_not_enabled_refuses_instead_of_plaintext() {
        let spec = |tls: BackendTls| BackendCluster {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            tls: Some(tls),
            ..Default::default()
        };
        let backend = Backend::compile(
            "kafka",
            &spec(BackendTls {
                insecure_skip_verify: true,
                ..Default::default()
            }),
        );
        let refused = backend.refused.expect("refused");
        assert_eq!(refused.kind, Kind::InvalidConfig);
        assert!(
            refused
                .message
                .contains("tls.insecure_skip_verify is set but tls.enabled is false"),
            "{refused}"
        );
        assert!(backend.tls.is_none());
        let plain = Backend::compile("kafka", &spec(BackendTls::default()));
        assert!(plain.refused.is_none() && plain.tls.is_none());
    }
}

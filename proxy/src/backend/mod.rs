//! The backend hop: broker addresses learned from the backend cluster's
//! metadata, and upstream connections to the broker a client addressed.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable, StrBytes},
};
use tokio::{net::TcpStream, task::JoinHandle};

use crate::{
    config::Backend,
    hop::{Hop, HopError, Kind},
    kafka::frame::{self, MAX_FRAME},
    listener::routes::Role,
    node::Node,
};

/// How long connecting to a broker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a metadata exchange (connect, ask, answer) may take: a
/// broker that accepts and never answers must not stall anything.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// The Metadata version the proxy asks with.
const METADATA_VERSION: i16 = 4;

/// Broker addresses (id → host:port) per backend cluster.
#[derive(Default)]
pub struct Directory {
    brokers: RwLock<HashMap<String, HashMap<i32, String>>>,
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

async fn dial(address: &str) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Asks a broker for the cluster's brokers (id, host, port), within
/// [`METADATA_TIMEOUT`].
pub async fn fetch_brokers(address: &str) -> anyhow::Result<Vec<(i32, String, i32)>> {
    tokio::time::timeout(METADATA_TIMEOUT, ask_brokers(address))
        .await
        .map_err(|_| anyhow::anyhow!("no metadata answer within {METADATA_TIMEOUT:?}"))?
}

async fn ask_brokers(address: &str) -> anyhow::Result<Vec<(i32, String, i32)>> {
    let mut stream = dial(address).await?;
    let key = ApiKey::Metadata;
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sluice-proxy")));
    let mut out = BytesMut::new();
    header.encode(&mut out, key.request_header_version(METADATA_VERSION))?;
    MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .encode(&mut out, METADATA_VERSION)?;
    frame::write_frame(&mut stream, &out).await?;
    let mut reply: Bytes = frame::read_frame(&mut stream, MAX_FRAME)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the broker closed the connection"))?
        .body();
    ResponseHeader::decode(&mut reply, key.response_header_version(METADATA_VERSION))?;
    let response = MetadataResponse::decode(&mut reply, METADATA_VERSION)?;
    Ok(response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.as_str().to_string(), b.port))
        .collect())
}

/// Connects to the broker a client addressed: any bootstrap server for the
/// bootstrap port, the broker with that id for a broker port (learning the
/// cluster's brokers first when needed).
pub async fn connect(
    backend: &Backend,
    role: Role,
    directory: &Directory,
) -> Result<(TcpStream, String), HopError> {
    let backend_id = backend.id.as_str();
    let fail =
        |kind, message: String| HopError::new(Hop::BackendCluster, backend_id, kind, message);
    let mut last = String::from("no bootstrap_servers");
    match role {
        Role::Bootstrap => {
            for address in &backend.bootstrap_servers {
                match dial(address).await {
                    Ok(s) => return Ok((s, address.clone())),
                    Err(e) => last = format!("{address}: {e}"),
                }
            }
            Err(fail(
                Kind::Unreachable,
                format!("no bootstrap server answered ({last})"),
            ))
        }
        Role::Broker(id) => {
            if directory.address(backend_id, id).is_none() {
                for address in &backend.bootstrap_servers {
                    match fetch_brokers(address).await {
                        Ok(brokers) => {
                            directory.learn(backend_id, &brokers);
                            break;
                        }
                        Err(e) => last = format!("{address}: {e:#}"),
                    }
                }
            }
            let Some(address) = directory.address(backend_id, id) else {
                return Err(fail(
                    Kind::UnknownBroker,
                    format!("the backend reports no broker {id} ({last})"),
                ));
            };
            dial(&address)
                .await
                .map(|s| (s, address.clone()))
                .map_err(|e| fail(Kind::Unreachable, format!("broker {id} at {address}: {e}")))
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
        for (id, backend) in backends.iter().filter(|(_, b)| b.not_enforced.is_none()) {
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
            match fetch_brokers(address).await {
                Ok(brokers) => {
                    node.directory.learn(&backend.id, &brokers);
                    failure = None;
                    break;
                }
                Err(e) => failure = Some(format!("{address}: {e:#}")),
            }
        }
        if let Some(message) = failure {
            node.report(&HopError::new(
                Hop::BackendCluster,
                backend.id.clone(),
                Kind::MetadataRefreshFailed,
                format!("metadata refresh failed: {message}"),
            ));
        }
        tokio::time::sleep(backend.metadata_interval).await;
    }
}

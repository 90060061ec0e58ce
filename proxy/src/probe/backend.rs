//! Probing the backend hop from this node: each bootstrap server of a
//! backend cluster dialled as the node dials it (TCP, TLS, SASL), then
//! ApiVersions and Metadata (brokers, and the asked topic).

use std::time::Instant;

use tokio::net::TcpStream;

use super::{MAX_SERVERS, STEP_TIMEOUT, Steps, wire};
use crate::{config::Config, io::Stream};

const TARGET: &str = "backend_cluster";

/// Dials backend cluster `id` until one bootstrap server passes every step.
pub(super) async fn probe(config: &Config, id: &str, topics: &[String], steps: &mut Steps) {
    let started = Instant::now();
    let Some(backend) = config.compiled().backends.get(id).cloned() else {
        steps.record(
            TARGET,
            id,
            "route",
            started,
            Err(format!(
                "backend cluster {id} is not in this node's configuration (revision {})",
                config.revision
            )),
        );
        return;
    };
    if let Some(e) = &backend.refused {
        steps.record(
            TARGET,
            id,
            "route",
            started,
            Err(format!("{}: {}", e.kind.as_str(), e.message)),
        );
        return;
    }
    for server in backend.bootstrap_servers.iter().take(MAX_SERVERS) {
        if dial(&backend, server, topics, steps).await {
            return;
        }
    }
}

/// One bootstrap server, step by step; whether every step passed.
async fn dial(
    backend: &crate::config::Backend,
    server: &str,
    topics: &[String],
    steps: &mut Steps,
) -> bool {
    let id = backend.id.as_str();
    let started = Instant::now();
    let tcp = match tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(server)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return steps.record(TARGET, id, "tcp", started, Err(format!("{server}: {e}")));
        }
        Err(_) => {
            return steps.record(
                TARGET,
                id,
                "tcp",
                started,
                Err(format!("{server}: no connection within {STEP_TIMEOUT:?}")),
            );
        }
    };
    steps.record(
        TARGET,
        id,
        "tcp",
        started,
        Ok(format!("connected to {server}")),
    );
    let mut stream = match &backend.tls {
        None => Stream::Tcp(tcp),
        Some(config) => {
            let started = Instant::now();
            let handshake = crate::tls::client::handshake(config, tcp, server);
            match tokio::time::timeout(STEP_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => {
                    steps.record(
                        TARGET,
                        id,
                        "tls",
                        started,
                        Ok(format!("{server}: certificate verified")),
                    );
                    stream
                }
                Ok(Err(e)) => {
                    return steps.record(TARGET, id, "tls", started, Err(format!("{server}: {e}")));
                }
                Err(_) => {
                    return steps.record(TARGET, id, "tls", started, Err(format!(
                        "{server}: no TLS handshake within {STEP_TIMEOUT:?} (does the broker serve TLS on this port?)"
                    )));
                }
            }
        }
    };
    if let Some(credentials) = &backend.sasl {
        let started = Instant::now();
        let login = crate::backend::sasl::authenticate(&mut stream, credentials);
        let outcome = match tokio::time::timeout(STEP_TIMEOUT, login).await {
            Ok(Ok(())) => Ok(format!(
                "{server}: authenticated as {:?} ({})",
                credentials.username,
                credentials.mechanism.name()
            )),
            Ok(Err(e)) => Err(format!("{server}: {}", e.message)),
            Err(_) => Err(format!("{server}: no SASL answer within {STEP_TIMEOUT:?}")),
        };
        if !steps.record(TARGET, id, "sasl", started, outcome) {
            return false;
        }
    }
    let started = Instant::now();
    let versions = match tokio::time::timeout(STEP_TIMEOUT, wire::api_versions(&mut stream)).await {
        Ok(Ok(n)) => Ok(format!("{server}: ApiVersions answered ({n} APIs)")),
        Ok(Err(e)) => Err(format!("{server}: {e}")),
        Err(_) => Err(format!(
            "{server}: no ApiVersions answer within {STEP_TIMEOUT:?}"
        )),
    };
    if !steps.record(TARGET, id, "api_versions", started, versions) {
        return false;
    }
    let started = Instant::now();
    let metadata =
        match tokio::time::timeout(STEP_TIMEOUT, wire::metadata(&mut stream, topics)).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                return steps.record(
                    TARGET,
                    id,
                    "metadata",
                    started,
                    Err(format!("{server}: {e}")),
                );
            }
            Err(_) => {
                return steps.record(
                    TARGET,
                    id,
                    "metadata",
                    started,
                    Err(format!(
                        "{server}: no Metadata answer within {STEP_TIMEOUT:?}"
                    )),
                );
            }
        };
    steps.record(
        TARGET,
        id,
        "metadata",
        started,
        Ok(format!("{server}: brokers {}", metadata.brokers.join(", "))),
    );
    for (topic, code) in metadata.topics {
        let outcome = match code {
            0 => Ok(format!("topic {topic:?} exists on this backend")),
            3 => Err(format!(
                "topic {topic:?} does not exist on this backend (UNKNOWN_TOPIC_OR_PARTITION)"
            )),
            29 => Err(format!(
                "topic {topic:?}: the backend denies describing it (TOPIC_AUTHORIZATION_FAILED)"
            )),
            other => Err(format!("topic {topic:?}: Metadata answered error {other}")),
        };
        steps.record(TARGET, id, "topic", Instant::now(), outcome);
    }
    true
}

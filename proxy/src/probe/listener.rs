//! Probing the listener hop: where this node's configuration sends the
//! address (and SNI name), whether the port is bound here, and whether a
//! client connecting to it gets an ApiVersions answer.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use sluice_proto::{admin::v1::BackendTls, dataplane::v1::ProbeRequest};
use tokio::net::TcpStream;

use super::{STEP_TIMEOUT, Steps, wire};
use crate::{
    config::Config,
    io::Stream,
    listener::{
        handshake::Hello,
        routes::{Key, Port, Role},
    },
    node::Node,
};

const TARGET: &str = "listener";

/// `host:port` split, `[v6]:port` included.
fn split(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// The bound port the address reaches on this node's configuration:
/// the exact address, an address it resolves to, or a wildcard.
async fn port_for(config: &Config, host: &str, port: u16) -> Option<(Key, Arc<Port>)> {
    let ports = &config.compiled().ports;
    let mut hosts = vec![host.to_string()];
    if host.parse::<std::net::IpAddr>().is_err()
        && let Ok(Ok(found)) =
            tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, port))).await
    {
        hosts.extend(found.map(|a| a.ip().to_string()));
    }
    hosts.extend(["0.0.0.0".to_string(), "::".to_string()]);
    hosts.iter().find_map(|h| {
        let key = (h.clone(), port);
        ports.get(&key).map(|p| (key, p.clone()))
    })
}

/// Walks the listener hop as a client would reach it from this node.
pub(super) async fn probe(node: &Node, config: &Config, request: &ProbeRequest, steps: &mut Steps) {
    let started = Instant::now();
    let Some((host, number)) = split(&request.address) else {
        steps.record(
            TARGET,
            "",
            "route",
            started,
            Err(format!("{:?} is not host:port", request.address)),
        );
        return;
    };
    let found = port_for(config, &host, number).await;
    let Some((key, port)) = found else {
        steps.record(
            TARGET,
            "",
            "route",
            started,
            Err(format!(
                "no listener of this node's configuration (revision {}) serves {}",
                config.revision, request.address
            )),
        );
        return;
    };
    let listener = port.listener_id.clone();
    let tls = port.tls.is_some() || request.tls || !request.sni_host.is_empty();
    let hello = Hello {
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls,
        sni: (!request.sni_host.is_empty()).then(|| request.sni_host.clone()),
        certificate: None,
        chain: Vec::new(),
    };
    // A node run with --listeners serves only some listeners: the others
    // are not its to probe, and not bound on purpose.
    let serves = node.listeners.as_ref().is_none_or(|only| {
        only.contains(&listener)
            || config
                .get(&listener)
                .is_some_and(|l| only.contains(&l.name))
    });
    if !serves {
        steps.skip(
            TARGET,
            &listener,
            "route",
            "this node does not serve the listener (--listeners)",
        );
        return;
    }
    // Just applied: the port may be bound a moment later.
    let mut bound = node.is_bound(&key);
    for _ in 0..10 {
        if bound {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        bound = node.is_bound(&key);
    }
    let route = match (bound, port.resolve(&hello)) {
        (false, _) => Err(format!(
            "{}:{} (listener {listener}) is not bound on this node (see its bind_failed errors)",
            key.0, key.1
        )),
        (true, Err(e)) => Err(format!(
            "{}/{}: {}",
            e.hop.as_str(),
            e.kind.as_str(),
            e.message
        )),
        (true, Ok(route)) => match &route.refused {
            Some(e) => Err(format!(
                "{}/{}: {}",
                e.hop.as_str(),
                e.kind.as_str(),
                e.message
            )),
            None => Ok(format!(
                "listener {listener} ▸ forward policy {} ▸ virtual cluster {} ▸ backend cluster {} ({})",
                route.policy_id,
                route.virtual_cluster.id,
                route.virtual_cluster.backend.id,
                match route.role {
                    Role::Bootstrap => "bootstrap".to_string(),
                    Role::Broker(id) => format!("broker {id}"),
                }
            )),
        },
    };
    steps.record(TARGET, &listener, "route", started, route);
    // The node dials its own bound address (loopback for a wildcard),
    // never a host the caller named: a probe is not a way to make nodes
    // connect elsewhere.
    let own = match key.0.as_str() {
        "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "::1".to_string(),
        bound => bound.to_string(),
    };
    if port.proxy_protocol.is_some() {
        steps.skip(TARGET, &listener, "tcp", "the listener expects PROXY protocol headers from its load balancers; the probe does not connect as a client");
        return;
    }
    if port
        .tls
        .as_ref()
        .and_then(|t| t.client_trust.as_ref())
        .is_some_and(|t| t.required)
    {
        steps.skip(TARGET, &listener, "tcp", "the listener requires client certificates, which the probe does not have; it does not connect as a client");
        return;
    }
    connect(request, &own, number, tls, &listener, steps).await;
}

/// Connects to the address as a client: TCP, TLS (not verified: the
/// probe asks which name is served, not whether to trust it) and one
/// ApiVersions exchange.
async fn connect(
    request: &ProbeRequest,
    host: &str,
    port: u16,
    tls: bool,
    listener: &str,
    steps: &mut Steps,
) {
    let started = Instant::now();
    let tcp = match tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            steps.record(TARGET, listener, "tcp", started, Err(e.to_string()));
            return;
        }
        Err(_) => {
            steps.record(
                TARGET,
                listener,
                "tcp",
                started,
                Err(format!("no connection within {STEP_TIMEOUT:?}")),
            );
            return;
        }
    };
    steps.record(
        TARGET,
        listener,
        "tcp",
        started,
        Ok(format!("connected to {host}:{port}")),
    );
    let mut stream = if tls {
        let started = Instant::now();
        let name = match request.sni_host.as_str() {
            "" => host.to_string(),
            sni => sni.to_string(),
        };
        let unverified = BackendTls {
            enabled: true,
            insecure_skip_verify: true,
            ..Default::default()
        };
        let handshake = async {
            let config = crate::tls::client::compile(&unverified)?;
            crate::tls::client::handshake(&config, tcp, &format!("{name}:{port}")).await
        };
        match tokio::time::timeout(STEP_TIMEOUT, handshake).await {
            Ok(Ok(stream)) => {
                steps.record(
                    TARGET,
                    listener,
                    "tls",
                    started,
                    Ok(format!("TLS handshake done asking for {name:?}")),
                );
                stream
            }
            Ok(Err(e)) => {
                steps.record(TARGET, listener, "tls", started, Err(e));
                return;
            }
            Err(_) => {
                steps.record(
                    TARGET,
                    listener,
                    "tls",
                    started,
                    Err(format!("no TLS handshake within {STEP_TIMEOUT:?}")),
                );
                return;
            }
        }
    } else {
        Stream::Tcp(tcp)
    };
    let started = Instant::now();
    let answer = match tokio::time::timeout(STEP_TIMEOUT, wire::api_versions(&mut stream)).await {
        Ok(Ok(n)) => Ok(format!("ApiVersions answered ({n} APIs)")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no ApiVersions answer within {STEP_TIMEOUT:?}")),
    };
    steps.record(TARGET, listener, "api_versions", started, answer);
}

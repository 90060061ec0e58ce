//! Which virtual cluster and broker each listener port serves. A bound
//! port is a [`Port`]: its listener's TLS and PROXY-protocol settings and
//! the listener's forward policies, oldest first. A connection is routed
//! once it has said hello (TLS or not, which SNI name): the first forward
//! policy that matches wins. `port_mapping` turns a listener's ports into
//! a bootstrap port (first, when `bootstrap_port = at_start`) and one
//! port per broker id from `min_broker_id`; `sni` routes host names to
//! virtual clusters by `dns_label` ([`sni`]).

pub mod sni;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, sync::Arc};

use sluice_proto::admin::v1::{
    BootstrapPort, Kind as EntityKind, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};

use super::{handshake::Hello, proxy_protocol::TrustedRanges};
use crate::{
    config::{Config, VirtualCluster, parse_ports},
    hop::{Hop, HopError, Kind},
    tls::server::TlsServer,
};
use sni::{SniForward, SniNames};

/// A bound address and port.
pub type Key = (String, u16);

/// What a port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Any broker will do: clients bootstrap here.
    Bootstrap,
    /// The broker with this id.
    Broker(i32),
}

/// One bound port: its listener's settings and forward policies.
#[derive(Debug)]
pub struct Port {
    /// The listener entity.
    pub listener_id: String,
    /// The port number.
    pub port: u16,
    /// TLS termination, when the listener has a tls_server policy.
    pub tls: Option<Arc<TlsServer>>,
    /// Load balancers whose PROXY headers are trusted, when configured.
    pub proxy_protocol: Option<Arc<TrustedRanges>>,
    /// Set when the listener itself cannot be served as configured (a
    /// TLS policy that does not compile, say): every connection is
    /// refused at accept, never served in plaintext instead.
    pub refused: Option<HopError>,
    /// The forward policies reaching this port, oldest first.
    pub forwards: Vec<Forwarding>,
}

/// One forward policy as a port applies it.
#[derive(Debug)]
pub enum Forwarding {
    /// Port mapping: every connection on the port takes this route.
    Mapped(Arc<Route>),
    /// SNI routing: the client's SNI name picks the route.
    Sni(Arc<SniForward>),
}

impl Port {
    /// The route of a connection that said `hello`, or the listener-hop
    /// error that refuses it.
    pub fn resolve(&self, hello: &Hello) -> Result<Arc<Route>, HopError> {
        let refuse = |kind, message: String| {
            Err(HopError::new(
                Hop::Listener,
                self.listener_id.clone(),
                kind,
                message,
            ))
        };
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        if let Some(tls) = &self.tls
            && !hello.tls
            && !tls.allow_plaintext
        {
            return refuse(
                Kind::TlsRequired,
                format!(
                    "this listener requires TLS (listener_policy_tls_server {} has allow_plaintext = false); the client spoke plaintext",
                    tls.policy_id
                ),
            );
        }
        for forward in &self.forwards {
            match forward {
                Forwarding::Mapped(route) => return Ok(route.clone()),
                Forwarding::Sni(sni) => {
                    if let Some(route) = hello.sni.as_deref().and_then(|name| {
                        sni.route(&self.listener_id, name, self.port, self.refused.as_ref())
                    }) {
                        return Ok(route);
                    }
                }
            }
        }
        let suffixes: Vec<&str> = self
            .forwards
            .iter()
            .filter_map(|f| match f {
                Forwarding::Sni(s) => Some(s.names.suffix.as_str()),
                Forwarding::Mapped(_) => None,
            })
            .collect();
        match (&hello.sni, suffixes.is_empty()) {
            (_, true) => refuse(
                Kind::NoForwardPolicy,
                "no forward policy routes this port".into(),
            ),
            (Some(name), false) => refuse(
                Kind::UnknownServerName,
                format!(
                    "no virtual cluster serves the SNI name {name:?} (this port routes bootstrap.<dns_label>{} and broker names of the virtual clusters' dns_label)",
                    suffixes.join(" or ")
                ),
            ),
            (None, false) if !hello.tls => refuse(
                Kind::UnknownServerName,
                format!(
                    "this port routes by TLS SNI host name (…{}) and the client connected without TLS",
                    suffixes.join(" or …")
                ),
            ),
            (None, false) => refuse(
                Kind::UnknownServerName,
                format!(
                    "the client sent no SNI name: this port routes by host name (connect to bootstrap.<dns_label>{})",
                    suffixes.join(" or ")
                ),
            ),
        }
    }
}

/// One connection's route: which listener and forward policy it belongs
/// to, the broker it stands for, and the compiled virtual cluster
/// (backend and filter chain) it leads to.
#[derive(Debug)]
pub struct Route {
    /// The listener entity.
    pub listener_id: String,
    /// The forward policy entity.
    pub policy_id: String,
    /// Bootstrap or a broker.
    pub role: Role,
    /// How the virtual cluster's brokers are advertised on this listener.
    pub mapping: Arc<Mapping>,
    /// Where the route leads.
    pub virtual_cluster: Arc<VirtualCluster>,
    /// Set when the listener, the virtual cluster or its backend is
    /// configured with something this node cannot enforce or use:
    /// connections are refused with this error.
    pub refused: Option<HopError>,
}

/// Every port of a listener in ascending order.
fn ports_of(specs: &[String]) -> Vec<u16> {
    let mut out: Vec<u16> = specs
        .iter()
        .filter_map(|s| parse_ports(s))
        .flatten()
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// How one virtual cluster's brokers are advertised on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// One port per broker.
    Ports(PortMap),
    /// One host name per broker, on one port.
    Sni(SniNames),
}

impl Mapping {
    /// The advertised host and port of a broker, or why there is none.
    pub fn address_of(&self, broker_id: i32) -> Result<(String, u16), String> {
        match self {
            Mapping::Ports(map) => map
                .port_of(broker_id)
                .map(|port| (map.advertised_host.clone(), port)),
            Mapping::Sni(names) => names.broker(broker_id),
        }
    }
}

impl From<PortMap> for Mapping {
    fn from(map: PortMap) -> Mapping {
        Mapping::Ports(map)
    }
}

/// The port mapping of one virtual cluster on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    /// Advertised host.
    pub advertised_host: String,
    /// Broker id → port.
    pub brokers: BTreeMap<i32, u16>,
    /// The first broker id with a port.
    pub min_broker_id: i32,
    /// The last broker id with a port.
    pub max_broker_id: i32,
}

impl PortMap {
    /// The advertised port of a broker, or why there is none.
    pub fn port_of(&self, broker_id: i32) -> Result<u16, String> {
        self.brokers.get(&broker_id).copied().ok_or_else(|| {
            format!(
                "broker id {broker_id} has no port: this listener maps broker ids {}..={} (min_broker_id = {}); \
                 set min_broker_id or add ports",
                self.min_broker_id, self.max_broker_id, self.min_broker_id
            )
        })
    }
}

/// A listener's settings every one of its ports shares.
struct ListenerSettings {
    tls: Option<Arc<TlsServer>>,
    proxy_protocol: Option<Arc<TrustedRanges>>,
    refused: Option<HopError>,
}

impl ListenerSettings {
    /// A port of the listener, with no forward policies yet.
    fn port(&self, listener_id: &str, port: u16) -> Port {
        Port {
            listener_id: listener_id.to_string(),
            port,
            tls: self.tls.clone(),
            proxy_protocol: self.proxy_protocol.clone(),
            refused: self.refused.clone(),
            forwards: Vec::new(),
        }
    }
}

/// Compiles a listener's TLS and PROXY-protocol settings; what does not
/// compile refuses the listener's connections (and is reported once).
fn listener_settings(
    config: &Config,
    listener_id: &str,
    listener: &sluice_proto::admin::v1::Listener,
    problems: &mut Vec<HopError>,
) -> ListenerSettings {
    let mut out = ListenerSettings {
        tls: None,
        proxy_protocol: None,
        refused: None,
    };
    let fail =
        |message: String| HopError::new(Hop::Listener, listener_id, Kind::InvalidConfig, message);
    if let Some((policy_id, spec)) = crate::tls::server::policy_of(config, listener_id) {
        match TlsServer::compile(config, policy_id, spec) {
            Ok(tls) => out.tls = Some(Arc::new(tls)),
            Err(e) => {
                out.refused = Some(fail(format!(
                    "listener_policy_tls_server {policy_id}: {e}; connections are refused"
                )));
            }
        }
    }
    if let Some(pp) = &listener.proxy_protocol {
        match TrustedRanges::parse(&pp.trusted_ranges) {
            Ok(ranges) => out.proxy_protocol = Some(Arc::new(ranges)),
            Err(e) => {
                out.refused = Some(fail(format!("proxy_protocol.{e}; connections are refused")));
            }
        }
    }
    if let Some(refused) = &out.refused {
        problems.push(refused.clone());
    }
    out
}

/// Every (address, port) the configuration wants bound, with its forward
/// policies, and the problems to report once for this revision. Forward
/// policies to a virtual cluster this node does not have are skipped
/// (the configuration check refuses those first).
pub(crate) fn ports(
    config: &Config,
    virtual_clusters: &BTreeMap<String, Arc<VirtualCluster>>,
) -> (BTreeMap<Key, Arc<Port>>, Vec<HopError>) {
    let mut problems = Vec::new();
    let mut out: BTreeMap<Key, Port> = BTreeMap::new();
    let mut settings: BTreeMap<String, ListenerSettings> = BTreeMap::new();
    // When two forward policies claim one port (the server refuses that
    // now; older stored data may have it), the oldest wins on every node.
    let mut policies: Vec<_> = config
        .of_kind(EntityKind::ListenerPolicyForwardToVirtualCluster)
        .collect();
    policies.sort_by_key(|p| {
        let created = p.created_at.as_ref().map(|t| (t.seconds, t.nanos));
        (created, p.id.as_str())
    });
    for policy in policies {
        let Some(Spec::ListenerPolicyForwardToVirtualCluster(forward)) = &policy.spec else {
            continue;
        };
        let Some(Spec::Listener(listener)) = config
            .get(&forward.listener_id)
            .and_then(|l| l.spec.as_ref())
        else {
            continue;
        };
        let listener_id = &forward.listener_id;
        let shared = settings
            .entry(listener_id.clone())
            .or_insert_with(|| listener_settings(config, listener_id, listener, &mut problems));
        let ports = ports_of(&listener.ports);
        match &forward.config {
            Some(Forward::PortMapping(mapping)) => {
                let Some(virtual_cluster) = virtual_clusters.get(&mapping.destination_id) else {
                    continue;
                };
                let bootstrap = mapping.bootstrap_port != BootstrapPort::None as i32;
                let broker_ports = if bootstrap {
                    ports.get(1..).unwrap_or_default()
                } else {
                    &ports[..]
                };
                // A port an older port mapping already took on any of
                // this listener's addresses is not this policy's: its
                // broker is left out of the mapping (reported as outside
                // it) rather than advertised on a port that leads
                // elsewhere.
                let taken = |port: u16| {
                    listener.addresses.iter().any(|a| {
                        out.get(&(a.clone(), port)).is_some_and(|p| {
                            p.forwards
                                .iter()
                                .any(|f| matches!(f, Forwarding::Mapped(_)))
                        })
                    })
                };
                let brokers: BTreeMap<i32, u16> = broker_ports
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        let id = i32::try_from(i).ok()?.checked_add(mapping.min_broker_id)?;
                        Some((id, *p))
                    })
                    .filter(|(_, p)| !taken(*p))
                    .collect();
                let bootstrap_port = ports.first().copied().filter(|p| bootstrap && !taken(*p));
                let map = Arc::new(Mapping::Ports(PortMap {
                    advertised_host: mapping.advertised_host.clone(),
                    min_broker_id: mapping.min_broker_id,
                    max_broker_id: brokers
                        .keys()
                        .next_back()
                        .copied()
                        .unwrap_or(mapping.min_broker_id),
                    brokers: brokers.clone(),
                }));
                let refused = shared
                    .refused
                    .clone()
                    .or_else(|| virtual_cluster.refused.clone());
                let route = |role| {
                    Arc::new(Route {
                        refused: refused.clone(),
                        listener_id: listener_id.clone(),
                        policy_id: policy.id.clone(),
                        role,
                        mapping: map.clone(),
                        virtual_cluster: virtual_cluster.clone(),
                    })
                };
                let mut roles: Vec<(u16, Role)> = brokers
                    .iter()
                    .map(|(id, p)| (*p, Role::Broker(*id)))
                    .collect();
                if let Some(first) = bootstrap_port {
                    roles.insert(0, (first, Role::Bootstrap));
                }
                for address in &listener.addresses {
                    for (number, role) in &roles {
                        let entry = out
                            .entry((address.clone(), *number))
                            .or_insert_with(|| shared.port(listener_id, *number));
                        if entry.listener_id == *listener_id {
                            entry.forwards.push(Forwarding::Mapped(route(*role)));
                        }
                    }
                }
            }
            Some(Forward::Sni(sni)) => {
                let forward = Arc::new(SniForward::new(&policy.id, sni, virtual_clusters));
                for error in forward.ambiguous.values() {
                    if !problems.contains(error) {
                        problems.push(error.clone());
                    }
                }
                for address in &listener.addresses {
                    for number in &ports {
                        let entry = out
                            .entry((address.clone(), *number))
                            .or_insert_with(|| shared.port(listener_id, *number));
                        if entry.listener_id == *listener_id {
                            entry.forwards.push(Forwarding::Sni(forward.clone()));
                        }
                    }
                }
            }
            None => {}
        }
    }
    let ports = out.into_iter().map(|(k, p)| (k, Arc::new(p))).collect();
    (ports, problems)
}

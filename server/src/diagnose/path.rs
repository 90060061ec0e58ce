//! Resolving the path a client takes from what it uses (an address, an
//! SNI name) through the gateway's configuration, with the data plane's
//! own router (`sluice_proxy`'s compiled ports), so the answer is what a
//! node does with the same revision.

use std::{net::SocketAddr, sync::Arc};

use sluice_proto::admin::v1::{
    DiagnosedPath, Entity, Kind, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use sluice_proxy::{
    config::parse_ports,
    hop::HopError,
    listener::{
        handshake::Hello,
        routes::{Key, Port, Role, Route},
    },
};

use super::facts::Facts;

/// What the listener hop looks like from the configuration.
pub enum Listening {
    /// Neither an address nor an SNI name was given.
    NotAsked,
    /// The address is a listener of another gateway.
    Foreign {
        /// That listener.
        listener: Box<Entity>,
        /// Its gateway, in words.
        gateway: String,
    },
    /// No listener of the gateway serves the address.
    NoListener,
    /// A listener serves the port, on other addresses.
    OtherAddress {
        /// The listener.
        listener_id: String,
        /// Its addresses.
        addresses: Vec<String>,
    },
    /// The port's listener has no forward policy.
    NoForward {
        /// The listener.
        listener_id: String,
    },
    /// The connection would be refused at the listener (or on its route).
    Refused {
        /// The listener.
        listener_id: String,
        /// Why.
        error: HopError,
    },
    /// The connection is routed.
    Routed {
        /// The listener.
        listener_id: String,
        /// Where to.
        route: Arc<Route>,
    },
}

/// The resolved path and how the listener hop resolved.
pub struct Resolution {
    /// The path, as far as it goes.
    pub path: DiagnosedPath,
    /// The listener hop.
    pub listening: Listening,
    /// The address a probe connects to: the bound address of the port the
    /// client's address resolved to (loopback for a wildcard); empty when
    /// it resolved to none (nodes never dial what a caller names).
    pub probe_address: String,
}

/// `host:port` split, `[v6]:port` included.
pub fn split(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

fn wildcard(address: &str) -> bool {
    matches!(address, "0.0.0.0" | "::")
}

/// The hosts an address may be bound as: itself, what it resolves to.
async fn hosts_of(host: &str, port: u16) -> Vec<String> {
    let mut hosts = vec![host.to_string()];
    if host.parse::<std::net::IpAddr>().is_err() {
        let lookup = tokio::net::lookup_host((host, port));
        if let Ok(Ok(found)) = tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await
        {
            hosts.extend(found.map(|a: SocketAddr| a.ip().to_string()));
        }
    }
    hosts
}

fn serves(listener: &Entity, hosts: &[String], port: u16) -> bool {
    let Some(Spec::Listener(l)) = &listener.spec else {
        return false;
    };
    let on_port = l
        .ports
        .iter()
        .filter_map(|p| parse_ports(p))
        .any(|r| r.contains(&port));
    on_port && l.addresses.iter().any(|a| wildcard(a) || hosts.contains(a))
}

/// Resolves the request's address or SNI name.
pub async fn resolve(facts: &Facts) -> Resolution {
    let mut resolution = Resolution {
        path: DiagnosedPath {
            gateway_id: facts.gateway_id().into(),
            gateway_name: facts
                .gateway
                .as_ref()
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            ..Default::default()
        },
        listening: Listening::NotAsked,
        probe_address: String::new(),
    };
    let Ok(config) = &facts.config else {
        return resolution;
    };
    let sni = facts.request.sni_host.trim().to_ascii_lowercase();
    let sni = (!sni.is_empty()).then_some(sni);
    let ports = &config.compiled().ports;
    let found: Option<(Key, Arc<Port>)> = match split(&facts.request.address) {
        Some((host, port)) => {
            let hosts = hosts_of(&host, port).await;
            let exact = hosts
                .iter()
                .chain(["0.0.0.0".to_string(), "::".to_string()].iter())
                .find_map(|h| {
                    ports
                        .get(&(h.clone(), port))
                        .map(|p| ((h.clone(), port), p.clone()))
                });
            if exact.is_none() {
                resolution.listening = elsewhere(facts, &hosts, port);
                return finish(facts, resolution);
            }
            exact
        }
        None if sni.is_some() => {
            // No address: the first port whose SNI routing serves the name.
            let hello = hello(true, sni.clone());
            let first = ports.iter().find(|(_, p)| p.resolve(&hello).is_ok());
            let any_sni = ports.iter().find(|(_, p)| {
                p.forwards
                    .iter()
                    .any(|f| matches!(f, sluice_proxy::listener::routes::Forwarding::Sni(_)))
            });
            first.or(any_sni).map(|(k, p)| (k.clone(), p.clone()))
        }
        None => None,
    };
    let Some((key, port)) = found else {
        if sni.is_some() {
            resolution.listening = Listening::NoListener;
        }
        return finish(facts, resolution);
    };
    {
        let host = if wildcard(&key.0) {
            "127.0.0.1"
        } else {
            key.0.as_str()
        };
        resolution.probe_address = match host.contains(':') {
            true => format!("[{host}]:{}", key.1),
            false => format!("{host}:{}", key.1),
        };
    }
    let listener_id = port.listener_id.clone();
    resolution.path.listener_id = listener_id.clone();
    resolution.path.listener_name = facts
        .entities
        .get(&listener_id)
        .map(|e| e.name.clone())
        .unwrap_or_default();
    resolution.path.tls = port.tls.is_some();
    resolution.listening = if port.forwards.is_empty() && port.refused.is_none() {
        Listening::NoForward { listener_id }
    } else {
        match port.resolve(&hello(port.tls.is_some() || sni.is_some(), sni)) {
            Err(error) => Listening::Refused { listener_id, error },
            Ok(route) => match &route.refused {
                Some(error) if error.hop == sluice_proxy::hop::Hop::Listener => {
                    Listening::Refused {
                        listener_id,
                        error: error.clone(),
                    }
                }
                _ => Listening::Routed { listener_id, route },
            },
        }
    };
    finish(facts, resolution)
}

/// How a client would hello: TLS or not, which SNI name.
fn hello(tls: bool, sni: Option<String>) -> Hello {
    Hello {
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls,
        sni,
        certificate: None,
        chain: Vec::new(),
    }
}

/// Why no port of the gateway's configuration serves the address.
fn elsewhere(facts: &Facts, hosts: &[String], port: u16) -> Listening {
    if let Some(listener) = facts
        .foreign_listeners
        .iter()
        .find(|l| serves(l, hosts, port))
    {
        let gateway = facts
            .gateways
            .iter()
            .find(|g| g.id == listener.gateway_id)
            .map_or_else(
                || listener.gateway_id.clone(),
                |g| format!("{} ({})", g.name, g.id),
            );
        return Listening::Foreign {
            listener: Box::new(listener.clone()),
            gateway,
        };
    }
    // A listener with no forward policy is not bound at all.
    let forwarded = |listener_id: &str| {
        facts.of_kind(Kind::ListenerPolicyForwardToVirtualCluster).iter().any(|f| {
            matches!(&f.spec, Some(Spec::ListenerPolicyForwardToVirtualCluster(p)) if p.listener_id == listener_id)
        })
    };
    if let Some(listener) = facts
        .of_kind(Kind::Listener)
        .into_iter()
        .find(|l| serves(l, hosts, port) && !forwarded(&l.id))
    {
        return Listening::NoForward {
            listener_id: listener.id.clone(),
        };
    }
    for listener in facts.of_kind(Kind::Listener) {
        if let Some(Spec::Listener(l)) = &listener.spec
            && l.ports
                .iter()
                .filter_map(|p| parse_ports(p))
                .any(|r| r.contains(&port))
        {
            return Listening::OtherAddress {
                listener_id: listener.id.clone(),
                addresses: l.addresses.clone(),
            };
        }
    }
    Listening::NoListener
}

/// Fills the rest of the path from the route (or the virtual cluster
/// the request names).
fn finish(facts: &Facts, mut resolution: Resolution) -> Resolution {
    let path = &mut resolution.path;
    let mut vc_id = String::new();
    if let Listening::Routed { route, .. } = &resolution.listening {
        path.forward_policy_id = route.policy_id.clone();
        path.forward_mode = match facts
            .entities
            .get(&route.policy_id)
            .and_then(|e| e.spec.as_ref())
        {
            Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) => match &f.config {
                Some(Forward::Sni(_)) => "sni",
                _ => "port_mapping",
            },
            _ => "",
        }
        .into();
        path.role = match route.role {
            Role::Bootstrap => "bootstrap".into(),
            Role::Broker(id) => format!("broker {id}"),
        };
        vc_id = route.virtual_cluster.id.clone();
    } else if let Some(vc) = facts.find(Kind::VirtualCluster, facts.request.virtual_cluster.trim())
    {
        vc_id = vc.id.clone();
    }
    let Some(vc) = facts.entities.get(&vc_id) else {
        return resolution;
    };
    path.virtual_cluster_id = vc.id.clone();
    path.virtual_cluster_name = vc.name.clone();
    if let Some(Spec::VirtualCluster(v)) = &vc.spec {
        path.backend_cluster_id = v.destination_id.clone();
        path.backend_cluster_name = facts
            .entities
            .get(&v.destination_id)
            .map(|b| b.name.clone())
            .unwrap_or_default();
        let topic = facts.request.topic.trim();
        if !topic.is_empty() {
            let names = sluice_proxy::filter::namespace::Names::compile(
                v.namespace.as_ref(),
                &v.topic_aliases,
            );
            path.backend_topic = names
                .inward(sluice_proxy::filter::namespace::Resource::Topic, topic)
                .unwrap_or_default();
        }
    }
    resolution
}

/// The SNI names the gateway serves for bootstrapping, for "did you
/// mean" (bootstrap.<dns_label><suffix> per SNI forward policy).
pub fn served_names(facts: &Facts) -> Vec<String> {
    let mut names = Vec::new();
    for forward in facts.of_kind(Kind::ListenerPolicyForwardToVirtualCluster) {
        let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &forward.spec else {
            continue;
        };
        let Some(Forward::Sni(sni)) = &f.config else {
            continue;
        };
        for vc in facts.of_kind(Kind::VirtualCluster) {
            if let Some(Spec::VirtualCluster(v)) = &vc.spec {
                names.push(format!("bootstrap.{}{}", v.dns_label, sni.sni_suffix));
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The served name closest to `name` (edit distance), if close enough to
/// be a typo.
pub fn nearest<'a>(name: &str, served: &'a [String]) -> Option<&'a str> {
    served
        .iter()
        .map(|s| (distance(name, s), s))
        .filter(|(d, s)| *d <= 3.max(s.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s.as_str())
}

/// Levenshtein distance, on characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_and_typos_are_recognised() {
        assert_eq!(split("[::1]:9092"), Some(("::1".into(), 9092)));
        assert_eq!(split("127.0.0.1:x"), None);
        let served = vec![
            "bootstrap.team-a.sluice.localhost".to_string(),
            "bootstrap.team-b.sluice.localhost".to_string(),
        ];
        assert_eq!(
            nearest("bootstrap.taem-a.sluice.localhost", &served),
            Some("bootstrap.team-a.sluice.localhost")
        );
        assert_eq!(nearest("kafka.example.com", &served), None);
    }
}

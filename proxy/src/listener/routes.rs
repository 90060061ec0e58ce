//! Which virtual cluster and broker each listener port serves: the
//! `port_mapping` forward policy turns a listener's ports into a bootstrap
//! port (first, when `bootstrap_port = at_start`) and one port per broker
//! id from `min_broker_id`.

use std::{collections::BTreeMap, sync::Arc};

use sluice_proto::admin::v1::{
    BootstrapPort, Kind, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};

use crate::config::{Config, NotEnforced, VirtualCluster, parse_ports};

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

/// One bound port's route: which listener and forward policy it belongs
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
    /// Where the port leads.
    pub virtual_cluster: Arc<VirtualCluster>,
    /// Set when the listener, the virtual cluster or its backend is
    /// configured with something this node cannot enforce: connections
    /// are refused at accept.
    pub not_enforced: Option<NotEnforced>,
}

/// Every port of a listener in ascending order.
fn ports(specs: &[String]) -> Vec<u16> {
    let mut out: Vec<u16> = specs
        .iter()
        .filter_map(|s| parse_ports(s))
        .flatten()
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The port mapping of one virtual cluster on one listener, for rewriting
/// broker addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Advertised host.
    pub advertised_host: String,
    /// Broker id → port.
    pub brokers: BTreeMap<i32, u16>,
    /// The first broker id with a port.
    pub min_broker_id: i32,
    /// The last broker id with a port.
    pub max_broker_id: i32,
}

impl Mapping {
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

/// Every (address, port) the configuration wants bound, with its route.
/// Forward policies to a virtual cluster this node does not have are
/// skipped (the configuration check refuses those first).
pub(crate) fn routes(
    config: &Config,
    virtual_clusters: &BTreeMap<String, Arc<VirtualCluster>>,
) -> BTreeMap<Key, Arc<Route>> {
    let mut out = BTreeMap::new();
    // When two forward policies claim one port (the server refuses that
    // now; older stored data may have it), the oldest wins on every node.
    let mut policies: Vec<_> = config
        .of_kind(Kind::ListenerPolicyForwardToVirtualCluster)
        .collect();
    policies.sort_by_key(|p| {
        let created = p.created_at.as_ref().map(|t| (t.seconds, t.nanos));
        (created, p.id.as_str())
    });
    for policy in policies {
        let Some(Spec::ListenerPolicyForwardToVirtualCluster(forward)) = &policy.spec else {
            continue;
        };
        let Some(Forward::PortMapping(mapping)) = &forward.config else {
            continue;
        };
        let Some(virtual_cluster) = virtual_clusters.get(&mapping.destination_id) else {
            continue;
        };
        let Some(Spec::Listener(listener)) = config
            .get(&forward.listener_id)
            .and_then(|l| l.spec.as_ref())
        else {
            continue;
        };
        let ports = ports(&listener.ports);
        let bootstrap = mapping.bootstrap_port != BootstrapPort::None as i32;
        let broker_ports = if bootstrap {
            ports.get(1..).unwrap_or_default()
        } else {
            &ports[..]
        };
        // A port an older policy already took on any of this listener's
        // addresses is not this policy's: its broker is left out of the
        // mapping (reported as outside it) rather than advertised on a
        // port that leads elsewhere.
        let taken = |port: u16| {
            listener
                .addresses
                .iter()
                .any(|a| out.contains_key(&(a.clone(), port)))
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
        let map = Arc::new(Mapping {
            advertised_host: mapping.advertised_host.clone(),
            min_broker_id: mapping.min_broker_id,
            max_broker_id: brokers
                .keys()
                .next_back()
                .copied()
                .unwrap_or(mapping.min_broker_id),
            brokers: brokers.clone(),
        });
        let not_enforced = crate::config::enforce_listener(config, &forward.listener_id)
            .or_else(|| virtual_cluster.not_enforced.clone());
        let route = |role| {
            Arc::new(Route {
                not_enforced: not_enforced.clone(),
                listener_id: forward.listener_id.clone(),
                policy_id: policy.id.clone(),
                role,
                mapping: map.clone(),
                virtual_cluster: virtual_cluster.clone(),
            })
        };
        for address in &listener.addresses {
            if let Some(first) = bootstrap_port {
                out.entry((address.clone(), first))
                    .or_insert_with(|| route(Role::Bootstrap));
            }
            for (id, port) in &brokers {
                out.entry((address.clone(), *port))
                    .or_insert_with(|| route(Role::Broker(*id)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use sluice_proto::{
        admin::v1::{
            BackendCluster, Entity, Gateway, Listener, ListenerPolicyForwardToVirtualCluster,
            PortMapping, VirtualCluster,
        },
        dataplane::v1::ConfigUpdate,
    };

    use super::*;

    fn entity(id: &str, spec: Spec) -> Entity {
        Entity {
            id: id.into(),
            gateway_id: "gw".into(),
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn config(ports: &[&str], min_broker_id: i32, bootstrap: BootstrapPort) -> Config {
        apply(entities(ports, min_broker_id, bootstrap))
    }

    fn apply(upserted: Vec<Entity>) -> Config {
        Config::default()
            .apply(&ConfigUpdate {
                revision: 1,
                snapshot: true,
                upserted,
                ..Default::default()
            })
            .unwrap()
    }

    fn entities(ports: &[&str], min_broker_id: i32, bootstrap: BootstrapPort) -> Vec<Entity> {
        vec![
            Entity {
                id: "gw".into(),
                spec: Some(Spec::Gateway(Gateway::default())),
                ..Default::default()
            },
            entity("b", Spec::BackendCluster(BackendCluster::default())),
            entity(
                "vc",
                Spec::VirtualCluster(VirtualCluster {
                    destination_id: "b".into(),
                    ..Default::default()
                }),
            ),
            entity(
                "l",
                Spec::Listener(Listener {
                    addresses: vec!["127.0.0.1".into()],
                    ports: ports.iter().map(|p| p.to_string()).collect(),
                }),
            ),
            entity(
                "f",
                Spec::ListenerPolicyForwardToVirtualCluster(
                    ListenerPolicyForwardToVirtualCluster {
                        listener_id: "l".into(),
                        config: Some(Forward::PortMapping(PortMapping {
                            destination_id: "vc".into(),
                            advertised_host: "127.0.0.1".into(),
                            bootstrap_port: bootstrap as i32,
                            min_broker_id,
                        })),
                    },
                ),
            ),
        ]
    }

    #[test]
    fn first_port_bootstraps_then_one_port_per_broker() {
        let config = config(&["19093-19095", "19092"], 111, BootstrapPort::AtStart);
        let r = &config.compiled().routes;
        let roles: Vec<(u16, Role)> = r.iter().map(|((_, p), route)| (*p, route.role)).collect();
        assert_eq!(
            roles,
            [
                (19092, Role::Bootstrap),
                (19093, Role::Broker(111)),
                (19094, Role::Broker(112)),
                (19095, Role::Broker(113))
            ]
        );
        let mapping = &r[&("127.0.0.1".to_string(), 19092)].mapping;
        assert_eq!(mapping.port_of(112), Ok(19094));
        let err = mapping.port_of(7).unwrap_err();
        assert!(
            err.contains("min_broker_id = 111") && err.contains("111..=113"),
            "{err}"
        );
    }

    #[test]
    fn without_a_bootstrap_port_every_port_is_a_broker() {
        let config = config(&["9000-9001"], 0, BootstrapPort::None);
        let roles: Vec<Role> = config
            .compiled()
            .routes
            .values()
            .map(|route| route.role)
            .collect();
        assert_eq!(roles, [Role::Broker(0), Role::Broker(1)]);
    }

    fn created(mut e: Entity, seconds: i64) -> Entity {
        e.created_at = Some(prost_types::Timestamp { seconds, nanos: 0 });
        e
    }

    #[test]
    fn two_policies_on_one_port_resolve_to_the_oldest_on_every_node() {
        let mut all = entities(&["9000-9001"], 0, BootstrapPort::AtStart);
        let f = all.pop().unwrap();
        let mut rival = f.clone();
        rival.id = "a-rival".into(); // sorts before "f" by id
        if let Some(Spec::ListenerPolicyForwardToVirtualCluster(p)) = &mut rival.spec
            && let Some(Forward::PortMapping(m)) = &mut p.config
        {
            m.destination_id = "vc2".into();
        }
        all.push(entity(
            "vc2",
            Spec::VirtualCluster(VirtualCluster {
                destination_id: "b".into(),
                ..Default::default()
            }),
        ));
        for (older, expected) in [(true, "vc"), (false, "vc2")] {
            let (f_at, rival_at) = if older { (1, 2) } else { (2, 1) };
            let mut set = all.clone();
            set.push(created(f.clone(), f_at));
            set.push(created(rival.clone(), rival_at));
            // Whatever order the entities arrive in.
            for reversed in [false, true] {
                let mut set = set.clone();
                if reversed {
                    set.reverse();
                }
                let config = apply(set);
                for route in config.compiled().routes.values() {
                    assert_eq!(route.virtual_cluster.id, expected);
                }
            }
        }
    }

    #[test]
    fn broker_ids_past_i32_max_get_no_port_instead_of_overflowing() {
        let config = config(&["9000-9003"], i32::MAX - 1, BootstrapPort::AtStart);
        let roles: Vec<Role> = config.compiled().routes.values().map(|r| r.role).collect();
        assert_eq!(
            roles,
            [
                Role::Bootstrap,
                Role::Broker(i32::MAX - 1),
                Role::Broker(i32::MAX)
            ]
        );
    }

    #[test]
    fn configuration_this_node_cannot_enforce_marks_the_route_refused() {
        use sluice_proto::admin::v1::{
            BackendTls, ListenerPolicyTlsServer, Namespace, ProducePolicyModifyHeaders,
        };
        let refused = |extra: Vec<Entity>, edit: &dyn Fn(&mut Vec<Entity>)| {
            let mut set = entities(&["9000-9001"], 0, BootstrapPort::AtStart);
            edit(&mut set);
            set.extend(extra);
            let config = apply(set);
            let route = config.compiled().routes.values().next().unwrap().clone();
            route
                .not_enforced
                .as_ref()
                .map(|n| (n.hop.as_str(), n.entity.clone(), n.feature.clone()))
        };
        let none: &dyn Fn(&mut Vec<Entity>) = &|_| {};
        assert_eq!(refused(vec![], none), None, "plain port mapping is served");
        let namespace: &dyn Fn(&mut Vec<Entity>) = &|set| {
            if let Some(Spec::VirtualCluster(vc)) = &mut set[2].spec {
                vc.namespace = Some(Namespace::default());
            }
        };
        assert_eq!(
            refused(vec![], namespace),
            Some(("virtual_cluster", "vc".into(), "namespace".into()))
        );
        let backend_tls: &dyn Fn(&mut Vec<Entity>) = &|set| {
            if let Some(Spec::BackendCluster(b)) = &mut set[1].spec {
                b.tls = Some(BackendTls {
                    enabled: true,
                    ..Default::default()
                });
            }
        };
        assert_eq!(
            refused(vec![], backend_tls),
            Some(("backend_cluster", "b".into(), "tls.enabled".into()))
        );
        let policy = |enabled| {
            entity(
                "p1",
                Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
                    virtual_cluster_id: "vc".into(),
                    enabled: Some(enabled),
                    ..Default::default()
                }),
            )
        };
        assert_eq!(
            refused(vec![policy(true)], none),
            Some((
                "virtual_cluster",
                "vc".into(),
                "produce_policy_modify_headers(p1)".into()
            ))
        );
        assert_eq!(
            refused(vec![policy(false)], none),
            None,
            "a disabled policy does nothing"
        );
        let tls = entity(
            "t1",
            Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
                listener_id: "l".into(),
                ..Default::default()
            }),
        );
        assert_eq!(
            refused(vec![tls], none),
            Some((
                "listener",
                "l".into(),
                "listener_policy_tls_server(t1)".into()
            ))
        );
    }

    #[test]
    fn a_newer_policy_never_advertises_a_port_an_older_one_took() {
        let mut set = entities(&["9000-9002"], 0, BootstrapPort::AtStart);
        let f = set.pop().unwrap();
        set.push(created(f.clone(), 1));
        set.push(entity(
            "l2",
            Spec::Listener(Listener {
                addresses: vec!["127.0.0.1".into()],
                ports: vec!["9001-9003".into()],
            }),
        ));
        let mut newer = f;
        newer.id = "f2".into();
        if let Some(Spec::ListenerPolicyForwardToVirtualCluster(p)) = &mut newer.spec {
            p.listener_id = "l2".into();
        }
        set.push(created(newer, 2));
        let config = apply(set);
        let routes = &config.compiled().routes;
        let port = |p: u16| routes[&("127.0.0.1".to_string(), p)].clone();
        assert_eq!(
            port(9001).policy_id,
            "f",
            "the older policy keeps its ports"
        );
        assert_eq!(port(9002).policy_id, "f");
        let newer = port(9003);
        assert_eq!(newer.policy_id, "f2");
        assert_eq!(newer.role, Role::Broker(1));
        assert_eq!(
            newer.mapping.brokers,
            BTreeMap::from([(1, 9003)]),
            "broker 0's port belongs to the other policy"
        );
    }
}

//! How listener ports are routed.
use sluice_proto::{
    admin::v1::{
        BackendCluster, Entity, Gateway, Listener, ListenerPolicyForwardToVirtualCluster,
        PortMapping, VirtualCluster,
    },
    dataplane::v1::ConfigUpdate,
};

use super::*;
use crate::listener::handshake::Hello;

/// Every port's route for a plaintext client (port mapping routes
/// without a hello).
fn routes(config: &Config) -> BTreeMap<Key, Arc<Route>> {
    let hello = Hello::plaintext("127.0.0.1:1".parse().unwrap());
    config
        .compiled()
        .ports
        .iter()
        .filter_map(|(k, p)| Some((k.clone(), p.resolve(&hello).ok()?)))
        .collect()
}

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
                ..Default::default()
            }),
        ),
        entity(
            "f",
            Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
                listener_id: "l".into(),
                config: Some(Forward::PortMapping(PortMapping {
                    destination_id: "vc".into(),
                    advertised_host: "127.0.0.1".into(),
                    bootstrap_port: bootstrap as i32,
                    min_broker_id,
                })),
            }),
        ),
    ]
}

#[test]
fn first_port_bootstraps_then_one_port_per_broker() {
    let config = config(&["19093-19095", "19092"], 111, BootstrapPort::AtStart);
    let r = &routes(&config);
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
    assert_eq!(mapping.address_of(112), Ok(("127.0.0.1".into(), 19094)));
    let err = mapping.address_of(7).unwrap_err();
    assert!(
        err.contains("min_broker_id = 111") && err.contains("111..=113"),
        "{err}"
    );
}

#[test]
fn without_a_bootstrap_port_every_port_is_a_broker() {
    let config = config(&["9000-9001"], 0, BootstrapPort::None);
    let roles: Vec<Role> = routes(&config).values().map(|route| route.role).collect();
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
            for route in routes(&config).values() {
                assert_eq!(route.virtual_cluster.id, expected);
            }
        }
    }
}

#[test]
fn broker_ids_past_i32_max_get_no_port_instead_of_overflowing() {
    let config = config(&["9000-9003"], i32::MAX - 1, BootstrapPort::AtStart);
    let roles: Vec<Role> = routes(&config).values().map(|r| r.role).collect();
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
fn configuration_this_node_cannot_enforce_or_use_refuses_the_route() {
    use sluice_proto::admin::v1::{
        BackendTls, ListenerPolicyTlsServer, Namespace, ProducePolicyModifyHeaders,
    };
    let refused = |extra: Vec<Entity>, edit: &dyn Fn(&mut Vec<Entity>)| {
        let mut set = entities(&["9000-9001"], 0, BootstrapPort::AtStart);
        edit(&mut set);
        set.extend(extra);
        let config = apply(set);
        let port = config.compiled().ports.values().next().unwrap().clone();
        let refusal = match port.resolve(&Hello::plaintext("127.0.0.1:1".parse().unwrap())) {
            Ok(route) => route.refused.clone(),
            Err(e) => Some(e),
        };
        refusal.map(|e| {
            (
                e.hop.as_str(),
                e.entity.clone(),
                e.kind.as_str(),
                e.message.clone(),
            )
        })
    };
    let expect = |got: Option<(&str, String, &str, String)>,
                  hop: &str,
                  entity: &str,
                  kind: &str,
                  needle: &str| {
        let (h, e, k, m) = got.expect("refused");
        assert_eq!((h, e.as_str(), k), (hop, entity, kind), "{m}");
        assert!(m.contains(needle), "{needle:?} not in {m:?}");
    };
    let none: &dyn Fn(&mut Vec<Entity>) = &|_| {};
    assert_eq!(refused(vec![], none), None, "plain port mapping is served");
    let namespace: &dyn Fn(&mut Vec<Entity>) = &|set| {
        if let Some(Spec::VirtualCluster(vc)) = &mut set[2].spec {
            vc.namespace = Some(Namespace::default());
        }
    };
    expect(
        refused(vec![], namespace),
        "virtual_cluster",
        "vc",
        "not_enforced",
        "feature=namespace",
    );
    let backend_tls: &dyn Fn(&mut Vec<Entity>) = &|set| {
        if let Some(Spec::BackendCluster(b)) = &mut set[1].spec {
            b.tls = Some(BackendTls {
                enabled: true,
                ca_bundle: "not a certificate".into(),
                ..Default::default()
            });
        }
    };
    expect(
        refused(vec![], backend_tls),
        "backend_cluster",
        "b",
        "invalid_config",
        "tls.ca_bundle",
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
    // A record policy a node cannot enforce as written (no actions)
    // refuses its virtual cluster's connections.
    expect(
        refused(vec![policy(true)], none),
        "policy",
        "vc",
        "invalid_config",
        "produce_policy_modify_headers(p1).actions: empty",
    );
    assert_eq!(
        refused(vec![policy(false)], none),
        None,
        "a disabled policy does nothing"
    );
    // A TLS policy that cannot be used never lets plaintext through.
    let tls = entity(
        "t1",
        Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
            listener_id: "l".into(),
            allow_plaintext: true,
            ..Default::default()
        }),
    );
    expect(
        refused(vec![tls], none),
        "listener",
        "l",
        "invalid_config",
        "listener_policy_tls_server t1: certificates",
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
            ..Default::default()
        }),
    ));
    let mut newer = f;
    newer.id = "f2".into();
    if let Some(Spec::ListenerPolicyForwardToVirtualCluster(p)) = &mut newer.spec {
        p.listener_id = "l2".into();
    }
    set.push(created(newer, 2));
    let config = apply(set);
    let routes = &routes(&config);
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
    let Mapping::Ports(map) = &*newer.mapping else {
        panic!("a port mapping")
    };
    assert_eq!(
        map.brokers,
        BTreeMap::from([(1, 9003)]),
        "broker 0's port belongs to the other policy"
    );
}

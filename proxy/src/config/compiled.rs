//! The configuration as the request path uses it: turned from entities
//! into typed structures once per applied revision (routes per port,
//! each virtual cluster's filter chain, backend settings), so no
//! connection ever matches on entity specs. A revision whose policies
//! cannot compile is NACKed with the reason and never applied.

use std::{collections::BTreeMap, sync::Arc};

use sluice_proto::admin::v1::{AclMode, Kind, entity::Spec};

use super::{Config, enforce};
pub use crate::backend::Backend;
use crate::{
    auth::Rules,
    filter::{
        ApiVersionsCap, BrokerAddresses, Chain, Filter, Namespace, RecordPolicies, SessionLifetime,
        acl::AclPolicies, namespace::Names,
    },
    hop::{Hop, HopError, Kind as ErrorKind},
    listener::routes::{self, Key, Port},
    quota::QuotaPolicies,
};

/// One revision, compiled.
#[derive(Debug, Default)]
pub struct Compiled {
    /// Every bound (address, port) and where it leads.
    pub ports: BTreeMap<Key, Arc<Port>>,
    /// Every virtual cluster, by id.
    pub virtual_clusters: BTreeMap<String, Arc<VirtualCluster>>,
    /// Every backend cluster, by id.
    pub backends: BTreeMap<String, Arc<Backend>>,
    /// Configuration this node cannot use (its connections are refused),
    /// reported once when the revision is applied.
    pub problems: Vec<HopError>,
}

/// A virtual cluster: its backend and its filter chain.
#[derive(Debug)]
pub struct VirtualCluster {
    /// The entity id.
    pub id: String,
    /// Its `dns_label`, for SNI host names.
    pub dns_label: String,
    /// Where its connections go.
    pub backend: Arc<Backend>,
    /// Its policies, in order.
    pub chain: Chain,
    /// Its client authentication rules.
    pub auth: Rules,
    /// Its quota policies, if it has any.
    pub quotas: Option<Arc<QuotaPolicies>>,
    /// Set when it (or its backend) is configured with something this
    /// node cannot enforce or use: its connections are refused.
    pub refused: Option<HopError>,
}

/// Compiles a checked configuration, or says which entity cannot be.
pub(crate) fn compile(config: &Config) -> Result<Compiled, String> {
    let mut problems = Vec::new();
    let mut backends = BTreeMap::new();
    for entity in config.of_kind(Kind::BackendCluster) {
        let Some(Spec::BackendCluster(b)) = &entity.spec else {
            continue;
        };
        let backend = Backend::compile(&entity.id, b);
        if let Some(problem) = &backend.refused {
            problems.push(problem.clone());
        }
        backends.insert(entity.id.clone(), Arc::new(backend));
    }
    let mut virtual_clusters = BTreeMap::new();
    let policies = enforce::first_policies(config);
    for entity in config.of_kind(Kind::VirtualCluster) {
        let Some(Spec::VirtualCluster(vc)) = &entity.spec else {
            continue;
        };
        let backend = backends.get(&vc.destination_id).cloned().ok_or_else(|| {
            format!(
                "virtual_cluster {}: destination_id {} is not a backend cluster on this node",
                entity.id, vc.destination_id
            )
        })?;
        let (auth, auth_refused) = match Rules::compile(&vc.authentication) {
            Ok(rules) => (rules, None),
            Err(e) => (
                Rules::deny_all(),
                Some(HopError::new(
                    Hop::Auth,
                    entity.id.clone(),
                    ErrorKind::InvalidConfig,
                    format!("{e}; connections to this virtual cluster are refused"),
                )),
            ),
        };
        let not_enforced = enforce::virtual_cluster(entity, &policies).map(|n| n.error());
        if let (None, Some(problem)) = (&not_enforced, &auth_refused) {
            problems.push(problem.clone());
        }
        // ACL policies that cannot be enforced as written refuse the
        // virtual cluster's connections (fail closed), like auth rules.
        let (chain, chain_refused) = match chain(config, &mut problems, &entity.id, vc, &backend.id)
        {
            Ok(chain) => (chain, None),
            Err(problem) => (Chain::new(base_filters()), Some(problem)),
        };
        if let (None, None, Some(problem)) = (&not_enforced, &auth_refused, &chain_refused) {
            problems.push(problem.clone());
        }
        // Quotas that cannot be enforced as written refuse the virtual
        // cluster's connections too.
        let (quotas, quotas_refused) = match QuotaPolicies::compile(config, &entity.id) {
            Ok(quotas) => (quotas.map(Arc::new), None),
            Err(e) => (
                None,
                Some(HopError::new(
                    Hop::Policy,
                    entity.id.clone(),
                    ErrorKind::InvalidConfig,
                    format!("{e}; connections to this virtual cluster are refused"),
                )),
            ),
        };
        if let (None, None, None, Some(problem)) = (
            &not_enforced,
            &auth_refused,
            &chain_refused,
            &quotas_refused,
        ) {
            problems.push(problem.clone());
        }
        let refused = not_enforced
            .or(auth_refused)
            .or(chain_refused)
            .or(quotas_refused)
            .or_else(|| backend.refused.clone());
        virtual_clusters.insert(
            entity.id.clone(),
            Arc::new(VirtualCluster {
                id: entity.id.clone(),
                dns_label: vc.dns_label.clone(),
                chain,
                auth,
                quotas,
                backend,
                refused,
            }),
        );
    }
    let (ports, listener_problems) = routes::ports(config, &virtual_clusters);
    problems.extend(listener_problems);
    Ok(Compiled {
        ports,
        virtual_clusters,
        backends,
        problems,
    })
}

/// The filters every chain starts with: address rewriting, version
/// capping and relayed session lifetimes.
pub(crate) fn base_filters() -> Vec<Arc<dyn Filter>> {
    vec![
        Arc::new(BrokerAddresses),
        Arc::new(ApiVersionsCap),
        Arc::new(SessionLifetime),
    ]
}

/// A virtual cluster's filters: the base ones, then its namespace and
/// aliases, then one per enforced policy of the virtual cluster, each
/// added here.
fn chain(
    config: &Config,
    problems: &mut Vec<HopError>,
    vc_id: &str,
    vc: &sluice_proto::admin::v1::VirtualCluster,
    backend_id: &str,
) -> Result<Chain, HopError> {
    let mut filters = base_filters();
    // Under enforce_on_gateway the ACLs decide; under passthrough the
    // policies there are are only evaluated and reported.
    let decides = vc.acl_mode == AclMode::EnforceOnGateway as i32;
    let acls = match AclPolicies::compile(config, vc_id, !decides) {
        Ok(policies) => (decides || !policies.is_empty()).then(|| Arc::new(policies)),
        Err(e) if decides => {
            return Err(HopError::new(
                Hop::Policy,
                vc_id,
                ErrorKind::InvalidConfig,
                format!("{e}; connections to this virtual cluster are refused"),
            ));
        }
        // Policies only reported: one that cannot be compiled is reported
        // (once per revision) and the virtual cluster served as before.
        Err(e) => {
            problems.push(HopError::new(
                Hop::Policy,
                vc_id,
                ErrorKind::InvalidConfig,
                format!("{e}; its ACL policies are not evaluated (acl_mode = passthrough)"),
            ));
            None
        }
    };
    let renames = vc.namespace.is_some() || !vc.topic_aliases.is_empty();
    if renames || acls.is_some() {
        let names = Names::compile(vc.namespace.as_ref(), &vc.topic_aliases);
        filters.push(Arc::new(Namespace::new(names, backend_id, acls)));
    }
    // Record policies run after the namespace: on the partitions it let
    // through, naming topics as the client does.
    let names = renames.then(|| Arc::new(Names::compile(vc.namespace.as_ref(), &vc.topic_aliases)));
    match RecordPolicies::compile(config, vc_id, backend_id, names) {
        Ok(Some(policies)) => filters.push(Arc::new(policies)),
        Ok(None) => {}
        Err(e) => {
            return Err(HopError::new(
                Hop::Policy,
                vc_id,
                ErrorKind::InvalidConfig,
                format!("{e}; connections to this virtual cluster are refused"),
            ));
        }
    }
    Ok(Chain::new(filters))
}

/// A route to a virtual cluster with `chain`, for tests of filters and
/// connections.
#[cfg(test)]
pub(crate) fn test_route(
    chain: Chain,
    mapping: impl Into<crate::listener::routes::Mapping>,
) -> crate::listener::routes::Route {
    let backend = Arc::new(Backend::compile(
        "backend",
        &sluice_proto::admin::v1::BackendCluster {
            bootstrap_servers: vec!["127.0.0.1:1".into()],
            ..Default::default()
        },
    ));
    crate::listener::routes::Route {
        listener_id: "listener".into(),
        policy_id: "forward".into(),
        role: routes::Role::Bootstrap,
        mapping: Arc::new(mapping.into()),
        refused: None,
        virtual_cluster: Arc::new(VirtualCluster {
            id: "vc".into(),
            dns_label: "vc".into(),
            backend,
            chain,
            auth: Rules::default(),
            quotas: None,
            refused: None,
        }),
    }
}

/// A port that maps every connection to `route`, for tests.
#[cfg(test)]
pub(crate) fn test_port(route: crate::listener::routes::Route) -> Port {
    Port {
        listener_id: route.listener_id.clone(),
        port: 19092,
        tls: None,
        proxy_protocol: None,
        refused: None,
        forwards: vec![crate::listener::routes::Forwarding::Mapped(Arc::new(route))],
    }
}

//! The configuration as the request path uses it: turned from entities
//! into typed structures once per applied revision (routes per port,
//! each virtual cluster's filter chain, backend settings), so no
//! connection ever matches on entity specs. A revision whose policies
//! cannot compile is NACKed with the reason and never applied.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use sluice_proto::admin::v1::{Kind, entity::Spec};

use super::{
    Config,
    enforce::{self, NotEnforced},
};
use crate::{
    filter::{ApiVersionsCap, BrokerAddresses, Chain, Filter},
    listener::routes::{self, Key, Route},
};

/// One revision, compiled.
#[derive(Debug, Default)]
pub struct Compiled {
    /// Every bound (address, port) and where it leads.
    pub routes: BTreeMap<Key, Arc<Route>>,
    /// Every virtual cluster, by id.
    pub virtual_clusters: BTreeMap<String, Arc<VirtualCluster>>,
    /// Every backend cluster, by id.
    pub backends: BTreeMap<String, Arc<Backend>>,
    /// Configuration that binds nothing because it is not enforced (SNI
    /// routing), reported when the revision is applied.
    pub unserved: Vec<NotEnforced>,
}

/// A virtual cluster: its backend and its filter chain.
#[derive(Debug)]
pub struct VirtualCluster {
    /// The entity id.
    pub id: String,
    /// Where its connections go.
    pub backend: Arc<Backend>,
    /// Its policies, in order.
    pub chain: Chain,
    /// Set when it (or its backend) is configured with something this
    /// node cannot enforce: its connections are refused.
    pub not_enforced: Option<NotEnforced>,
}

/// A backend cluster as the proxy dials it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Set when it is configured with something this node cannot enforce.
    pub not_enforced: Option<NotEnforced>,
    /// The entity id.
    pub id: String,
    /// Where to bootstrap from.
    pub bootstrap_servers: Vec<String>,
    /// How often its broker list is refreshed.
    pub metadata_interval: Duration,
}

/// Compiles a checked configuration, or says which entity cannot be.
pub(crate) fn compile(config: &Config) -> Result<Compiled, String> {
    let mut backends = BTreeMap::new();
    for entity in config.of_kind(Kind::BackendCluster) {
        let Some(Spec::BackendCluster(b)) = &entity.spec else {
            continue;
        };
        backends.insert(
            entity.id.clone(),
            Arc::new(Backend {
                not_enforced: enforce::backend(entity),
                id: entity.id.clone(),
                bootstrap_servers: b.bootstrap_servers.clone(),
                metadata_interval: Duration::from_secs(u64::from(
                    b.metadata_update_interval_seconds.max(1),
                )),
            }),
        );
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
        let not_enforced =
            enforce::virtual_cluster(entity, &policies).or_else(|| backend.not_enforced.clone());
        virtual_clusters.insert(
            entity.id.clone(),
            Arc::new(VirtualCluster {
                id: entity.id.clone(),
                chain: chain(config, &entity.id)?,
                backend,
                not_enforced,
            }),
        );
    }
    let routes = routes::routes(config, &virtual_clusters);
    Ok(Compiled {
        routes,
        virtual_clusters,
        backends,
        unserved: enforce::forward_policies(config),
    })
}

/// The filters every chain starts with: address rewriting and version
/// capping.
pub(crate) fn base_filters() -> Vec<Arc<dyn Filter>> {
    vec![Arc::new(BrokerAddresses), Arc::new(ApiVersionsCap)]
}

/// A virtual cluster's filters: the base ones, then one per enforced
/// policy of the virtual cluster, each added here.
fn chain(_config: &Config, _virtual_cluster_id: &str) -> Result<Chain, String> {
    let filters = base_filters();
    Ok(Chain::new(filters))
}

/// A route to a virtual cluster with `chain`, for tests of filters and
/// connections.
#[cfg(test)]
pub(crate) fn test_route(chain: Chain, mapping: crate::listener::routes::Mapping) -> Route {
    let backend = Arc::new(Backend {
        not_enforced: None,
        id: "backend".into(),
        bootstrap_servers: vec!["127.0.0.1:1".into()],
        metadata_interval: Duration::from_secs(60),
    });
    Route {
        listener_id: "listener".into(),
        policy_id: "forward".into(),
        role: routes::Role::Bootstrap,
        mapping: Arc::new(mapping),
        not_enforced: None,
        virtual_cluster: Arc::new(VirtualCluster {
            id: "vc".into(),
            backend,
            chain,
            not_enforced: None,
        }),
    }
}

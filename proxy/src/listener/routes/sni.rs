//! SNI routing: one port serves every virtual cluster, told apart by the
//! TLS SNI host name the client asked for. Bootstrap is
//! `bootstrap.<dns_label><suffix>`; brokers are
//! `broker-<id>.<dns_label><suffix>` (`per_cluster_suffix`) or
//! `broker-<id>-<dns_label><suffix>` (`shared_suffix`, where
//! `bootstrap-<dns_label><suffix>` also bootstraps, so one wildcard
//! certificate covers every name).

use std::{collections::BTreeMap, sync::Arc};

use sluice_proto::admin::v1::{BrokerHostFormat, Sni};

use super::{Mapping, Role, Route};
use crate::{
    config::VirtualCluster,
    hop::{Hop, HopError, Kind},
};

/// How broker host names are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostFormat {
    /// `broker-<id>.<dns_label><suffix>`.
    PerCluster,
    /// `broker-<id>-<dns_label><suffix>`.
    Shared,
}

/// The host names of one virtual cluster under one SNI forward policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniNames {
    /// The virtual cluster's dns_label (lower case).
    pub label: String,
    /// The policy's `sni_suffix` (lower case).
    pub suffix: String,
    /// How broker names are formed.
    pub format: HostFormat,
    /// The port clients are told to connect to.
    pub port: u16,
}

impl SniNames {
    /// The advertised host name and port of a broker.
    pub fn broker(&self, id: i32) -> Result<(String, u16), String> {
        if id < 0 {
            return Err(format!("broker id {id} cannot be named under SNI routing"));
        }
        let sep = match self.format {
            HostFormat::PerCluster => '.',
            HostFormat::Shared => '-',
        };
        Ok((
            format!("broker-{id}{sep}{}{}", self.label, self.suffix),
            self.port,
        ))
    }
}

/// The compiled form of one `sni` forward policy.
#[derive(Debug)]
pub struct SniForward {
    /// The forward policy entity.
    pub policy_id: String,
    /// Suffix and format (the label and port are filled per route).
    pub names: SniNames,
    /// The advertised port; 0 means the port the client connected to.
    pub advertised_port: u16,
    /// Every virtual cluster by lower-case dns_label.
    pub clusters: BTreeMap<String, Arc<VirtualCluster>>,
    /// Labels held by more than one virtual cluster (the control plane
    /// refuses that): their names are refused rather than guessed at.
    pub ambiguous: BTreeMap<String, HopError>,
}

impl SniForward {
    /// Compiles a policy over the node's virtual clusters. Two clusters
    /// with one label (the control plane refuses that) are both refused
    /// at the virtual_cluster hop: routing to either would be a guess.
    pub fn new(
        policy_id: &str,
        sni: &Sni,
        virtual_clusters: &BTreeMap<String, Arc<VirtualCluster>>,
    ) -> SniForward {
        let mut clusters: BTreeMap<String, Arc<VirtualCluster>> = BTreeMap::new();
        let mut holders: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for vc in virtual_clusters.values() {
            let label = vc.dns_label.to_ascii_lowercase();
            holders.entry(label.clone()).or_default().push(&vc.id);
            clusters.entry(label).or_insert_with(|| vc.clone());
        }
        let ambiguous = holders
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(label, ids)| {
                let error = HopError::new(
                    Hop::VirtualCluster,
                    ids[0],
                    Kind::InvalidConfig,
                    format!(
                        "virtual clusters {} share dns_label {label:?}: SNI names cannot tell \
                         them apart, so their SNI connections are refused",
                        ids.join(", ")
                    ),
                );
                (label, error)
            })
            .collect();
        let format = if sni.broker_host_format == BrokerHostFormat::SharedSuffix as i32 {
            HostFormat::Shared
        } else {
            HostFormat::PerCluster
        };
        SniForward {
            policy_id: policy_id.to_string(),
            names: SniNames {
                label: String::new(),
                suffix: sni.sni_suffix.trim_end_matches('.').to_ascii_lowercase(),
                format,
                port: 0,
            },
            advertised_port: u16::try_from(sni.advertised_port).unwrap_or(0),
            clusters,
            ambiguous,
        }
    }

    /// The virtual cluster label and role a host name asks for.
    pub fn parse(&self, name: &str) -> Option<(String, Role)> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let head = name.strip_suffix(self.names.suffix.as_str())?;
        if let Some(label) = head.strip_prefix("bootstrap.") {
            return Some((label.to_string(), Role::Bootstrap));
        }
        if self.names.format == HostFormat::Shared
            && let Some(label) = head.strip_prefix("bootstrap-")
        {
            return Some((label.to_string(), Role::Bootstrap));
        }
        let rest = head.strip_prefix("broker-")?;
        let sep = match self.names.format {
            HostFormat::PerCluster => '.',
            HostFormat::Shared => '-',
        };
        let (id, label) = rest.split_once(sep)?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((label.to_string(), Role::Broker(id.parse().ok()?)))
    }

    /// The route for a host name on `port`, if it names a virtual cluster.
    pub fn route(
        &self,
        listener_id: &str,
        name: &str,
        port: u16,
        listener_refused: Option<&HopError>,
    ) -> Option<Arc<Route>> {
        let (label, role) = self.parse(name)?;
        let virtual_cluster = self.clusters.get(&label)?;
        let label_key = label.clone();
        let names = SniNames {
            label,
            port: if self.advertised_port == 0 {
                port
            } else {
                self.advertised_port
            },
            ..self.names.clone()
        };
        Some(Arc::new(Route {
            listener_id: listener_id.to_string(),
            policy_id: self.policy_id.clone(),
            role,
            mapping: Arc::new(Mapping::Sni(names)),
            refused: listener_refused
                .cloned()
                .or_else(|| self.ambiguous.get(&label_key).cloned())
                .or_else(|| virtual_cluster.refused.clone()),
            virtual_cluster: virtual_cluster.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(format: BrokerHostFormat) -> SniForward {
        SniForward::new(
            "f",
            &Sni {
                sni_suffix: ".sluice.localhost".into(),
                advertised_port: 0,
                broker_host_format: format as i32,
            },
            &BTreeMap::new(),
        )
    }

    #[test]
    fn per_cluster_names() {
        let f = forward(BrokerHostFormat::PerClusterSuffix);
        assert_eq!(
            f.parse("bootstrap.team-a.sluice.localhost"),
            Some(("team-a".into(), Role::Bootstrap))
        );
        assert_eq!(
            f.parse("Broker-111.Team-A.sluice.localhost."),
            Some(("team-a".into(), Role::Broker(111)))
        );
        assert_eq!(f.parse("broker-111-team-a.sluice.localhost"), None);
        assert_eq!(f.parse("broker-x.team-a.sluice.localhost"), None);
        assert_eq!(f.parse("bootstrap.team-a.other.localhost"), None);
        let names = SniNames {
            label: "team-a".into(),
            port: 9092,
            ..f.names.clone()
        };
        assert_eq!(
            names.broker(111),
            Ok(("broker-111.team-a.sluice.localhost".into(), 9092))
        );
    }

    #[test]
    fn shared_suffix_names_fit_one_wildcard() {
        let f = forward(BrokerHostFormat::SharedSuffix);
        assert_eq!(
            f.parse("broker-7-team-b.sluice.localhost"),
            Some(("team-b".into(), Role::Broker(7)))
        );
        assert_eq!(
            f.parse("bootstrap-team-b.sluice.localhost"),
            Some(("team-b".into(), Role::Bootstrap))
        );
        assert_eq!(
            f.parse("bootstrap.team-b.sluice.localhost"),
            Some(("team-b".into(), Role::Bootstrap))
        );
        let names = SniNames {
            label: "team-b".into(),
            port: 9443,
            ..f.names.clone()
        };
        assert_eq!(
            names.broker(7),
            Ok(("broker-7-team-b.sluice.localhost".into(), 9443))
        );
    }

    #[test]
    fn two_clusters_with_one_label_are_both_refused_never_guessed() {
        let backend = Arc::new(crate::backend::Backend::compile(
            "kafka",
            &Default::default(),
        ));
        let vc = |id: &str, label: &str| {
            Arc::new(VirtualCluster {
                id: id.into(),
                dns_label: label.into(),
                backend: backend.clone(),
                chain: crate::filter::Chain::new(Vec::new()),
                auth: Default::default(),
                quotas: None,
                refused: None,
            })
        };
        let clusters = BTreeMap::from([
            ("vc-1".to_string(), vc("vc-1", "team-a")),
            ("vc-2".to_string(), vc("vc-2", "Team-A")),
            ("vc-3".to_string(), vc("vc-3", "team-b")),
        ]);
        let f = SniForward::new(
            "f",
            &Sni {
                sni_suffix: ".sluice.localhost".into(),
                advertised_port: 0,
                broker_host_format: BrokerHostFormat::PerClusterSuffix as i32,
            },
            &clusters,
        );
        let route = f
            .route("l", "bootstrap.team-a.sluice.localhost", 9092, None)
            .unwrap();
        let refused = route.refused.as_ref().expect("refused");
        assert_eq!(refused.hop, Hop::VirtualCluster);
        assert!(
            refused
                .message
                .contains("vc-1, vc-2 share dns_label \"team-a\""),
            "{refused}"
        );
        let other = f
            .route("l", "bootstrap.team-b.sluice.localhost", 9092, None)
            .unwrap();
        assert!(other.refused.is_none());
    }
}

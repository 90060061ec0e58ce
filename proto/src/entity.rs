//! Helpers on the generated entity types that every Sluice crate needs.

use crate::{
    admin::v1::{Entity, Kind, PolicyEnforcement, entity::Spec},
    facts,
};

/// Every kind, in dependency order (a kind only refers to kinds before it).
pub const ALL_KINDS: [Kind; 19] = [
    Kind::Gateway,
    Kind::BackendCluster,
    Kind::StaticKey,
    Kind::TlsTrustBundle,
    Kind::VirtualCluster,
    Kind::Listener,
    Kind::ListenerPolicyTlsServer,
    Kind::ListenerPolicyForwardToVirtualCluster,
    Kind::ClusterPolicyAcls,
    Kind::ProducePolicyModifyHeaders,
    Kind::ProducePolicySchemaValidation,
    Kind::ProducePolicyEncrypt,
    Kind::ConsumePolicyModifyHeaders,
    Kind::ConsumePolicySchemaValidation,
    Kind::ConsumePolicyDecrypt,
    Kind::ConsumePolicySkipRecord,
    Kind::ClusterPolicyQuota,
    Kind::DataPlaneCertificate,
    Kind::EventHook,
];

impl Kind {
    /// The snake_case name used in errors, logs, the database and Terraform
    /// (`virtual_cluster`, `cluster_policy_acls`, ...).
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Unspecified => "unspecified",
            Kind::Gateway => "gateway",
            Kind::BackendCluster => "backend_cluster",
            Kind::VirtualCluster => "virtual_cluster",
            Kind::Listener => "listener",
            Kind::ListenerPolicyTlsServer => "listener_policy_tls_server",
            Kind::ListenerPolicyForwardToVirtualCluster => {
                "listener_policy_forward_to_virtual_cluster"
            }
            Kind::ClusterPolicyAcls => "cluster_policy_acls",
            Kind::ProducePolicyModifyHeaders => "produce_policy_modify_headers",
            Kind::ProducePolicySchemaValidation => "produce_policy_schema_validation",
            Kind::ProducePolicyEncrypt => "produce_policy_encrypt",
            Kind::ConsumePolicyModifyHeaders => "consume_policy_modify_headers",
            Kind::ConsumePolicySchemaValidation => "consume_policy_schema_validation",
            Kind::ConsumePolicyDecrypt => "consume_policy_decrypt",
            Kind::ConsumePolicySkipRecord => "consume_policy_skip_record",
            Kind::StaticKey => "static_key",
            Kind::TlsTrustBundle => "tls_trust_bundle",
            Kind::DataPlaneCertificate => "data_plane_certificate",
            Kind::EventHook => "event_hook",
            Kind::ClusterPolicyQuota => "cluster_policy_quota",
        }
    }

    /// The kind named by [`Kind::slug`], if any.
    pub fn from_slug(slug: &str) -> Option<Kind> {
        ALL_KINDS.into_iter().find(|k| k.slug() == slug)
    }

    /// Whether this kind is a virtual-cluster policy (cluster, produce or
    /// consume phase).
    pub fn is_virtual_cluster_policy(self) -> bool {
        matches!(
            self,
            Kind::ClusterPolicyAcls
                | Kind::ProducePolicyModifyHeaders
                | Kind::ProducePolicySchemaValidation
                | Kind::ProducePolicyEncrypt
                | Kind::ConsumePolicyModifyHeaders
                | Kind::ConsumePolicySchemaValidation
                | Kind::ConsumePolicyDecrypt
                | Kind::ConsumePolicySkipRecord
                | Kind::ClusterPolicyQuota
        )
    }

    /// Whether data planes receive entities of this kind (everything but
    /// their own certificates and event hooks, which only the control plane
    /// uses).
    pub fn is_data_plane_config(self) -> bool {
        !matches!(
            self,
            Kind::Unspecified | Kind::DataPlaneCertificate | Kind::EventHook
        )
    }

    /// Whether this kind is a listener policy.
    pub fn is_listener_policy(self) -> bool {
        matches!(
            self,
            Kind::ListenerPolicyTlsServer | Kind::ListenerPolicyForwardToVirtualCluster
        )
    }
}

impl Spec {
    /// The kind this spec describes.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Gateway(_) => Kind::Gateway,
            Spec::BackendCluster(_) => Kind::BackendCluster,
            Spec::VirtualCluster(_) => Kind::VirtualCluster,
            Spec::Listener(_) => Kind::Listener,
            Spec::ListenerPolicyTlsServer(_) => Kind::ListenerPolicyTlsServer,
            Spec::ListenerPolicyForwardToVirtualCluster(_) => {
                Kind::ListenerPolicyForwardToVirtualCluster
            }
            Spec::ClusterPolicyAcls(_) => Kind::ClusterPolicyAcls,
            Spec::ProducePolicyModifyHeaders(_) => Kind::ProducePolicyModifyHeaders,
            Spec::ProducePolicySchemaValidation(_) => Kind::ProducePolicySchemaValidation,
            Spec::ProducePolicyEncrypt(_) => Kind::ProducePolicyEncrypt,
            Spec::ConsumePolicyModifyHeaders(_) => Kind::ConsumePolicyModifyHeaders,
            Spec::ConsumePolicySchemaValidation(_) => Kind::ConsumePolicySchemaValidation,
            Spec::ConsumePolicyDecrypt(_) => Kind::ConsumePolicyDecrypt,
            Spec::ConsumePolicySkipRecord(_) => Kind::ConsumePolicySkipRecord,
            Spec::StaticKey(_) => Kind::StaticKey,
            Spec::TlsTrustBundle(_) => Kind::TlsTrustBundle,
            Spec::DataPlaneCertificate(_) => Kind::DataPlaneCertificate,
            Spec::EventHook(_) => Kind::EventHook,
            Spec::ClusterPolicyQuota(_) => Kind::ClusterPolicyQuota,
        }
    }

    /// The fields every virtual-cluster policy shares, when this is one.
    pub fn policy(&self) -> Option<PolicyFields<'_>> {
        macro_rules! fields {
            ($p:expr) => {
                Some(PolicyFields {
                    virtual_cluster_id: &$p.virtual_cluster_id,
                    enabled: $p.enabled,
                    condition: &$p.condition,
                    parent_policy_id: &$p.parent_policy_id,
                    enforcement: $p.enforcement,
                })
            };
        }
        match self {
            Spec::ClusterPolicyAcls(p) => fields!(p),
            Spec::ProducePolicyModifyHeaders(p) => fields!(p),
            Spec::ProducePolicySchemaValidation(p) => fields!(p),
            Spec::ProducePolicyEncrypt(p) => fields!(p),
            Spec::ConsumePolicyModifyHeaders(p) => fields!(p),
            Spec::ConsumePolicySchemaValidation(p) => fields!(p),
            Spec::ConsumePolicyDecrypt(p) => fields!(p),
            Spec::ConsumePolicySkipRecord(p) => fields!(p),
            Spec::ClusterPolicyQuota(p) => fields!(p),
            _ => None,
        }
    }

    /// Sets `enabled` (true) and `enforcement` (enforce) to their defaults
    /// on a policy that left them unset.
    pub fn default_policy_enabled(&mut self) {
        macro_rules! default {
            ($p:expr) => {{
                $p.enabled.get_or_insert(true);
                if $p.enforcement == PolicyEnforcement::Unspecified as i32 {
                    $p.enforcement = PolicyEnforcement::Enforce as i32;
                }
            }};
        }
        match self {
            Spec::ClusterPolicyAcls(p) => default!(p),
            Spec::ProducePolicyModifyHeaders(p) => default!(p),
            Spec::ProducePolicySchemaValidation(p) => default!(p),
            Spec::ProducePolicyEncrypt(p) => default!(p),
            Spec::ConsumePolicyModifyHeaders(p) => default!(p),
            Spec::ConsumePolicySchemaValidation(p) => default!(p),
            Spec::ConsumePolicyDecrypt(p) => default!(p),
            Spec::ConsumePolicySkipRecord(p) => default!(p),
            Spec::ClusterPolicyQuota(p) => default!(p),
            _ => {}
        }
    }
}

/// The fields every virtual-cluster policy carries.
#[derive(Debug, Clone, Copy)]
pub struct PolicyFields<'a> {
    /// The virtual cluster the policy belongs to.
    pub virtual_cluster_id: &'a str,
    /// Whether the policy runs (unset means true).
    pub enabled: Option<bool>,
    /// When the policy applies; empty means always.
    pub condition: &'a str,
    /// The policy this one is nested under, or empty.
    pub parent_policy_id: &'a str,
    /// `PolicyEnforcement`: enforce or shadow (unset means enforce).
    pub enforcement: i32,
}

impl Entity {
    /// The entity's kind, from the spec that is set.
    pub fn kind(&self) -> Kind {
        self.spec.as_ref().map_or(Kind::Unspecified, Spec::kind)
    }
}

/// One reference field of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The field path (`destination_id`, `key_sources[0].static_key_id`).
    pub field: String,
    /// The id it holds.
    pub target: String,
    /// The kinds the target may be.
    pub kinds: &'static [Kind],
}

impl Entity {
    /// Every non-empty reference the entity holds, `gateway_id` included, in
    /// field order: the fields declared `(reference)` in the proto.
    pub fn references(&self) -> Vec<Reference> {
        facts::references(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::v1::{
        ClientAuthentication, ConsumePolicyDecrypt, KeySource,
        ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer, PortMapping,
        ProducePolicyEncrypt, VirtualCluster, listener_policy_forward_to_virtual_cluster::Config,
    };

    fn refs(spec: Spec) -> Vec<(String, String, Vec<Kind>)> {
        let entity = Entity {
            id: "self".into(),
            gateway_id: "gw".into(),
            spec: Some(spec),
            ..Default::default()
        };
        entity
            .references()
            .into_iter()
            .map(|r| (r.field, r.target, r.kinds.to_vec()))
            .collect()
    }

    fn expect(items: &[(&str, &str, &[Kind])]) -> Vec<(String, String, Vec<Kind>)> {
        items
            .iter()
            .map(|(f, t, k)| (f.to_string(), t.to_string(), k.to_vec()))
            .collect()
    }

    #[test]
    fn references_are_the_declared_fields_in_order() {
        let policies: Vec<Kind> = ALL_KINDS
            .into_iter()
            .filter(|k| k.is_virtual_cluster_policy())
            .collect();
        let gw: (&str, &str, &[Kind]) = ("gateway_id", "gw", &[Kind::Gateway]);
        assert_eq!(
            refs(Spec::VirtualCluster(VirtualCluster {
                destination_id: "b".into(),
                ..Default::default()
            })),
            expect(&[gw, ("destination_id", "b", &[Kind::BackendCluster])])
        );
        assert_eq!(
            refs(Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
                listener_id: "l".into(),
                client_authentication: Some(ClientAuthentication {
                    trust_bundle_ids: vec!["t0".into(), String::new(), "t2".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })),
            expect(&[
                gw,
                ("listener_id", "l", &[Kind::Listener]),
                (
                    "client_authentication.trust_bundle_ids[0]",
                    "t0",
                    &[Kind::TlsTrustBundle]
                ),
                (
                    "client_authentication.trust_bundle_ids[2]",
                    "t2",
                    &[Kind::TlsTrustBundle]
                ),
            ])
        );
        assert_eq!(
            refs(Spec::ListenerPolicyForwardToVirtualCluster(
                ListenerPolicyForwardToVirtualCluster {
                    listener_id: "l".into(),
                    config: Some(Config::PortMapping(PortMapping {
                        destination_id: "vc".into(),
                        ..Default::default()
                    })),
                }
            )),
            expect(&[
                gw,
                ("listener_id", "l", &[Kind::Listener]),
                ("port_mapping.destination_id", "vc", &[Kind::VirtualCluster]),
            ])
        );
        assert_eq!(
            refs(Spec::ProducePolicyEncrypt(ProducePolicyEncrypt {
                virtual_cluster_id: "vc".into(),
                parent_policy_id: "p".into(),
                static_key_id: "k".into(),
                ..Default::default()
            })),
            expect(&[
                gw,
                ("virtual_cluster_id", "vc", &[Kind::VirtualCluster]),
                ("parent_policy_id", "p", &policies),
                ("static_key_id", "k", &[Kind::StaticKey]),
            ])
        );
        assert_eq!(
            refs(Spec::ConsumePolicyDecrypt(ConsumePolicyDecrypt {
                virtual_cluster_id: "vc".into(),
                key_sources: vec![
                    KeySource {
                        static_key_id: "k0".into()
                    },
                    KeySource {
                        static_key_id: "k1".into()
                    },
                ],
                ..Default::default()
            })),
            expect(&[
                gw,
                ("virtual_cluster_id", "vc", &[Kind::VirtualCluster]),
                ("key_sources[0].static_key_id", "k0", &[Kind::StaticKey]),
                ("key_sources[1].static_key_id", "k1", &[Kind::StaticKey]),
            ])
        );
        // A gateway refers to nothing; unset references are left out.
        assert_eq!(
            Entity {
                spec: Some(Spec::Gateway(Default::default())),
                ..Default::default()
            }
            .references(),
            []
        );
        assert_eq!(
            refs(Spec::VirtualCluster(VirtualCluster::default())),
            expect(&[gw])
        );
    }
}

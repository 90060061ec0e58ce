//! Helpers on the generated entity types that every Sluice crate needs.

use crate::admin::v1::{Entity, Kind, entity::Spec};

/// Every kind, in dependency order (a kind only refers to kinds before it).
pub const ALL_KINDS: [Kind; 18] = [
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
            _ => None,
        }
    }

    /// Sets `enabled` to its default (true) on a policy that left it unset.
    pub fn default_policy_enabled(&mut self) {
        macro_rules! default {
            ($p:expr) => {{
                $p.enabled.get_or_insert(true);
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
}

impl Entity {
    /// The entity's kind, from the spec that is set.
    pub fn kind(&self) -> Kind {
        self.spec.as_ref().map_or(Kind::Unspecified, Spec::kind)
    }
}

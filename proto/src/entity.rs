//! Helpers on the generated entity types that every Sluice crate needs.

use crate::admin::v1::{
    Entity, Kind, entity::Spec, listener_policy_forward_to_virtual_cluster::Config,
};

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

/// Every virtual-cluster policy kind (a `parent_policy_id` may name any).
const POLICY_KINDS: &[Kind] = &[
    Kind::ClusterPolicyAcls,
    Kind::ProducePolicyModifyHeaders,
    Kind::ProducePolicySchemaValidation,
    Kind::ProducePolicyEncrypt,
    Kind::ConsumePolicyModifyHeaders,
    Kind::ConsumePolicySchemaValidation,
    Kind::ConsumePolicyDecrypt,
    Kind::ConsumePolicySkipRecord,
];

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

fn push(out: &mut Vec<Reference>, field: impl Into<String>, target: &str, kinds: &'static [Kind]) {
    if !target.is_empty() {
        out.push(Reference {
            field: field.into(),
            target: target.to_string(),
            kinds,
        });
    }
}

impl Entity {
    /// Every non-empty reference the entity holds, `gateway_id` included.
    pub fn references(&self) -> Vec<Reference> {
        let entity = self;
        let mut out = Vec::new();
        push(&mut out, "gateway_id", &entity.gateway_id, &[Kind::Gateway]);
        let Some(spec) = &entity.spec else {
            return out;
        };
        if let Some(policy) = spec.policy() {
            push(
                &mut out,
                "virtual_cluster_id",
                policy.virtual_cluster_id,
                &[Kind::VirtualCluster],
            );
            push(
                &mut out,
                "parent_policy_id",
                policy.parent_policy_id,
                POLICY_KINDS,
            );
        }
        match spec {
            Spec::VirtualCluster(vc) => push(
                &mut out,
                "destination_id",
                &vc.destination_id,
                &[Kind::BackendCluster],
            ),
            Spec::ListenerPolicyTlsServer(t) => {
                push(&mut out, "listener_id", &t.listener_id, &[Kind::Listener]);
                if let Some(ca) = &t.client_authentication {
                    for (i, id) in ca.trust_bundle_ids.iter().enumerate() {
                        push(
                            &mut out,
                            format!("client_authentication.trust_bundle_ids[{i}]"),
                            id,
                            &[Kind::TlsTrustBundle],
                        );
                    }
                }
            }
            Spec::ListenerPolicyForwardToVirtualCluster(f) => {
                push(&mut out, "listener_id", &f.listener_id, &[Kind::Listener]);
                if let Some(Config::PortMapping(p)) = &f.config {
                    push(
                        &mut out,
                        "port_mapping.destination_id",
                        &p.destination_id,
                        &[Kind::VirtualCluster],
                    );
                }
            }
            Spec::ProducePolicyEncrypt(p) => push(
                &mut out,
                "static_key_id",
                &p.static_key_id,
                &[Kind::StaticKey],
            ),
            Spec::ConsumePolicyDecrypt(p) => {
                for (i, source) in p.key_sources.iter().enumerate() {
                    push(
                        &mut out,
                        format!("key_sources[{i}].static_key_id"),
                        &source.static_key_id,
                        &[Kind::StaticKey],
                    );
                }
            }
            _ => {}
        }
        out
    }
}

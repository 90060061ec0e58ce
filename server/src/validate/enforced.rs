//! What a write accepts that sluice-proxy does not enforce yet. Nodes fail
//! closed on it (they refuse every connection whose path involves it, see
//! `proxy/src/config/enforce.rs`); `Validate` warns about it so that
//! `terraform plan` shows the attribute before anything is applied. The
//! table mirrors the proxy's list: a feature leaves both in the change that
//! enforces it.

use sluice_proto::admin::v1::{Entity, Kind, ValidateWarning, entity::Spec};

/// The sluice-proxy release line these warnings describe.
const PROXY: &str = concat!(
    "sluice-proxy ",
    env!("CARGO_PKG_VERSION_MAJOR"),
    ".",
    env!("CARGO_PKG_VERSION_MINOR")
);

/// One row of the table: for entities of `kind`, the field paths `fields`
/// finds in a spec are not enforced, and nodes then refuse `refused`.
struct Row {
    kind: Kind,
    fields: fn(&Spec) -> Vec<String>,
    refused: &'static str,
}

/// Everything configurable that no node enforces yet: nothing, since
/// record policies (#17) are enforced. A feature that lands before nodes
/// enforce it gets a row here (and in the proxy's list).
const TABLE: &[Row] = &[];

/// The warnings for an entity as it would be stored (defaults applied):
/// one per attribute that is not enforced, in field order.
pub fn warnings(entity: &Entity) -> Vec<ValidateWarning> {
    let Some(spec) = &entity.spec else {
        return Vec::new();
    };
    let kind = spec.kind();
    TABLE
        .iter()
        .filter(|row| row.kind == kind)
        .flat_map(|row| {
            (row.fields)(spec)
                .into_iter()
                .map(move |field| ValidateWarning {
                    message: format!("{field} is not enforced by {PROXY}: {}", row.refused),
                    field,
                    summary: String::new(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{
        AclMode, BackendAuthentication, BackendCluster, BackendSaslPlain, BackendTls,
        ClusterPolicyAcls, ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer,
        ProducePolicyModifyHeaders, Sni, VirtualCluster, VirtualClusterAuthentication,
        backend_authentication, listener_policy_forward_to_virtual_cluster::Config as Forward,
        virtual_cluster_authentication::Method,
    };

    use super::*;

    fn entity(spec: Spec) -> Entity {
        Entity {
            spec: Some(spec),
            ..Default::default()
        }
    }

    #[test]
    fn what_is_enforced_has_no_warning() {
        // Every authentication method, gateway ACLs and namespaces.
        for acl_mode in [AclMode::Passthrough, AclMode::EnforceOnGateway] {
            let vc = entity(Spec::VirtualCluster(VirtualCluster {
                authentication: vec![
                    VirtualClusterAuthentication {
                        method: Some(Method::Anonymous(Default::default())),
                    },
                    VirtualClusterAuthentication {
                        method: Some(Method::SaslPlain(Default::default())),
                    },
                    VirtualClusterAuthentication {
                        method: Some(Method::OauthBearer(Default::default())),
                    },
                ],
                acl_mode: acl_mode as i32,
                namespace: Some(Default::default()),
                ..Default::default()
            }));
            assert!(warnings(&vc).is_empty());
        }
        let acls = ClusterPolicyAcls {
            enabled: Some(true),
            ..Default::default()
        };
        assert!(warnings(&entity(Spec::ClusterPolicyAcls(acls))).is_empty());
        // Record policies.
        let headers = ProducePolicyModifyHeaders {
            enabled: Some(true),
            ..Default::default()
        };
        assert!(warnings(&entity(Spec::ProducePolicyModifyHeaders(headers))).is_empty());
        assert!(warnings(&entity(Spec::BackendCluster(Default::default()))).is_empty());
        assert!(warnings(&entity(Spec::Listener(Default::default()))).is_empty());
        // TLS and SASL to the backend, TLS termination and SNI routing.
        let backend = entity(Spec::BackendCluster(BackendCluster {
            tls: Some(BackendTls {
                enabled: true,
                ..Default::default()
            }),
            authentication: Some(BackendAuthentication {
                method: Some(backend_authentication::Method::SaslPlain(
                    BackendSaslPlain::default(),
                )),
            }),
            ..Default::default()
        }));
        assert!(warnings(&backend).is_empty());
        let tls = entity(Spec::ListenerPolicyTlsServer(
            ListenerPolicyTlsServer::default(),
        ));
        assert!(warnings(&tls).is_empty());
        let sni = entity(Spec::ListenerPolicyForwardToVirtualCluster(
            ListenerPolicyForwardToVirtualCluster {
                config: Some(Forward::Sni(Sni::default())),
                ..Default::default()
            },
        ));
        assert!(warnings(&sni).is_empty());
    }
}

//! The last two hops: client authentication on the virtual cluster, then
//! its policies (namespace, ACLs, quotas, record policies).

use sluice_proto::admin::v1::{
    AclMode, Kind, NamespaceMode, VirtualCluster, entity::Spec,
    virtual_cluster_authentication::Method,
};

use super::{Check, Domain, fix};
use crate::diagnose::{facts::Facts, path::Resolution};

fn spec<'a>(facts: &'a Facts, resolution: &Resolution) -> Option<&'a VirtualCluster> {
    match facts
        .entities
        .get(&resolution.path.virtual_cluster_id)?
        .spec
        .as_ref()?
    {
        Spec::VirtualCluster(v) => Some(v),
        _ => None,
    }
}

/// The virtual cluster's authentication rules, in words.
fn rules(vc: &VirtualCluster) -> Vec<String> {
    vc.authentication
        .iter()
        .filter_map(|r| r.method.as_ref())
        .map(|m| match m {
            Method::Anonymous(_) => "anonymous".to_string(),
            Method::SaslPlain(p) => format!("SASL/PLAIN ({} principal(s))", p.principals.len()),
            Method::SaslScram(_) => "SASL/SCRAM (passthrough)".to_string(),
            Method::OauthBearer(_) => "SASL/OAUTHBEARER".to_string(),
            Method::ClientCertificate(_) => "client certificate".to_string(),
        })
        .collect()
}

/// Checks client authentication.
pub fn auth(facts: &Facts, resolution: &Resolution) -> Check {
    const HOP: &str = "auth";
    let vc_id = resolution.path.virtual_cluster_id.as_str();
    let Some(vc) = spec(facts, resolution) else {
        return Check::unknown(HOP, "no virtual cluster on the path");
    };
    let label = facts.label(vc_id);
    let entity = facts.entities.get(vc_id);
    let offered = rules(vc);
    let offered_text = match offered.is_empty() {
        true => "anonymous".to_string(),
        false => offered.join(", "),
    };
    if let Some(refused) = facts.refusal(vc_id, sluice_proxy::hop::Hop::Auth) {
        return Check::fail(
            HOP,
            Domain::Auth,
            format!("nodes refuse {label}'s connections: {}", refused.message),
            fix(
                "sluice_virtual_cluster",
                "authentication",
                entity,
                "change what the refusal names",
            ),
        );
    }
    let principal = facts.request.principal.trim();
    if !principal.is_empty() {
        let plain: Vec<(usize, &str)> = vc
            .authentication
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.method {
                Some(Method::SaslPlain(p)) if !p.principals.is_empty() => Some((i, p)),
                _ => None,
            })
            .flat_map(|(i, p)| p.principals.iter().map(move |u| (i, u.username.as_str())))
            .collect();
        let only_plain = vc
            .authentication
            .iter()
            .all(|r| matches!(&r.method, Some(Method::SaslPlain(p)) if !p.principals.is_empty()));
        if only_plain && !plain.is_empty() && !plain.iter().any(|(_, u)| *u == principal) {
            let index = plain.first().map_or(0, |(i, _)| *i);
            let users: Vec<&str> = plain.iter().map(|(_, u)| *u).collect();
            return Check::fail(
                HOP,
                Domain::Auth,
                format!(
                    "{principal:?} is not a principal of {label} (its SASL/PLAIN principals: {})",
                    users.join(", ")
                ),
                fix(
                    "sluice_virtual_cluster",
                    &format!("authentication[{index}].sasl_plain.principals"),
                    entity,
                    format!(
                        "add {principal:?} to the principals, or have the client log in as one of them"
                    ),
                ),
            );
        }
    }
    let errors = facts.recent_errors(HOP, &[vc_id]);
    // Given a principal, only its own failures count: another tenant's
    // wrong password is not this client's problem.
    let mine = Facts::about(&errors, principal);
    if let Some((node, e)) = mine {
        let message = e.last_message.to_ascii_lowercase();
        let mechanism = e.detail == "UNSUPPORTED"
            || (message.contains("mechanism") && message.contains("offers"));
        let (attribute, action) = match mechanism {
            true => (
                "authentication".to_string(),
                format!("enable the mechanism the client uses on {}, or configure the client for one it offers ({offered_text})", vc_id),
            ),
            false => (
                "authentication".to_string(),
                "the client's credentials do not match: fix the client's user name and password, or the principal's password".to_string(),
            ),
        };
        return Check::fail(
            HOP,
            Domain::Auth,
            format!(
                "node {} refused a client of {label} at authentication: {}",
                node.id, e.last_message
            ),
            fix("sluice_virtual_cluster", &attribute, entity, action),
        )
        .with("node", facts.describe_error(node, e), vc_id, &node.id)
        .with(
            "config",
            format!("{label} accepts: {offered_text}"),
            vc_id,
            "",
        );
    }
    let anonymous = vc
        .authentication
        .iter()
        .all(|r| matches!(r.method, Some(Method::Anonymous(_)) | None));
    let check = match anonymous {
        true => Check::pass(HOP, format!("{label} accepts anonymous clients")),
        false => Check::unknown(
            HOP,
            format!(
                "not verified: {label} accepts {offered_text}; no node reported an authentication failure{} since it applied its revision",
                if principal.is_empty() {
                    String::new()
                } else {
                    format!(" of {principal:?}")
                }
            ),
        ),
    };
    check.with(
        "config",
        format!("{label} accepts: {offered_text}"),
        vc_id,
        "",
    )
}

/// The Terraform resource and attribute a policy refusal points at.
fn policy_fix(kind: &str, message: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        "quota_exceeded" if !message.contains("max_connections") => (
            "sluice_cluster_policy_quota",
            "produce_bytes_per_second",
            "raise the quota's rates (produce_bytes_per_second, fetch_bytes_per_second, requests_per_second), or send less",
        ),
        "acl_denied" => (
            "sluice_cluster_policy_acls",
            "rules",
            "allow the operation for the principal (or use a principal the rules allow)",
        ),
        "outside_namespace" => (
            "sluice_virtual_cluster",
            "namespace",
            "name topics and groups inside the namespace, or widen namespace.additional",
        ),
        "quota_exceeded" => (
            "sluice_cluster_policy_quota",
            "max_connections",
            "raise the limit, or open fewer connections",
        ),
        "condition_failed" => (
            "sluice_cluster_policy_acls",
            "condition",
            "fix the condition so it can be evaluated",
        ),
        "unpoliced_api" => (
            "sluice_cluster_policy_acls",
            "rules",
            "the API names resources the policies cannot police; avoid it or drop the ACLs",
        ),
        _ => (
            "sluice_virtual_cluster",
            "",
            "change what the refusal names",
        ),
    }
}

/// Checks the virtual cluster's policies.
pub fn policy(facts: &Facts, resolution: &Resolution) -> Check {
    const HOP: &str = "policy";
    let path = &resolution.path;
    let vc_id = path.virtual_cluster_id.as_str();
    let Some(vc) = spec(facts, resolution) else {
        return Check::unknown(HOP, "no virtual cluster on the path");
    };
    let label = facts.label(vc_id);
    let entity = facts.entities.get(vc_id);
    let policies: Vec<&sluice_proto::admin::v1::Entity> = facts
        .entities
        .values()
        .filter(|e| {
            e.spec
                .as_ref()
                .and_then(|s| s.policy())
                .is_some_and(|p| p.virtual_cluster_id == vc_id)
        })
        .collect();
    if let Some(refused) = facts.refusal(vc_id, sluice_proxy::hop::Hop::Policy) {
        return Check::fail(
            HOP,
            Domain::Policy,
            format!("nodes refuse {label}'s connections: {}", refused.message),
            fix(
                "sluice_virtual_cluster",
                "",
                entity,
                "change what the refusal names",
            ),
        );
    }
    let topic = facts.request.topic.trim();
    let namespace = vc.namespace.as_ref();
    // As the node compiles them (disabled parents included); a set that
    // does not compile refuses the virtual cluster instead (above).
    let deciding_acls = facts.config.as_ref().ok().is_none_or(|config| {
        sluice_proxy::filter::acl::AclPolicies::compile(config, vc_id, false)
            .map_or(true, |p| !p.is_empty())
    });
    if vc.acl_mode == AclMode::EnforceOnGateway as i32 && !deciding_acls {
        return Check::fail(
            HOP,
            Domain::Policy,
            format!(
                "{label} has acl_mode = enforce_on_gateway and no enabled, enforced cluster_policy_acls: every operation is denied"
            ),
            fix(
                "sluice_cluster_policy_acls",
                "rules",
                None,
                format!(
                    "create a cluster_policy_acls on {label} allowing what its clients do, or set acl_mode = passthrough"
                ),
            ),
        );
    }
    if let (false, Some(ns)) = (topic.is_empty(), namespace) {
        let mode = match NamespaceMode::try_from(ns.mode) {
            Ok(NamespaceMode::EnforcePrefix) => "enforce_prefix",
            _ => "hide_prefix",
        };
        if path.backend_topic.is_empty() {
            return Check::fail(
                HOP,
                Domain::Policy,
                format!(
                    "topic {topic:?} is outside {label}'s namespace ({mode} {:?}): the client may not use it",
                    ns.prefix
                ),
                fix(
                    "sluice_virtual_cluster",
                    "namespace",
                    entity,
                    format!(
                        "name it with the prefix {:?}, or list it in namespace.additional.topics",
                        ns.prefix
                    ),
                ),
            );
        }
        let backend = path.backend_cluster_id.as_str();
        let step = |name: &str, status: &str| {
            facts
                .probe_steps("backend_cluster", backend)
                .iter()
                .any(|(_, s)| {
                    s.step == "topic"
                        && s.entity_id == backend
                        && s.status == status
                        && s.message.contains(&format!("{name:?}"))
                        && (status == "pass" || s.message.contains("UNKNOWN_TOPIC_OR_PARTITION"))
                })
        };
        if path.backend_topic != topic && step(&path.backend_topic, "fail") && step(topic, "pass") {
            return Check::fail(
                HOP,
                Domain::Policy,
                format!(
                    "{label}'s namespace ({mode} {:?}) maps the client's {topic:?} to {:?}, which does not exist; the backend's {topic:?} is outside the namespace, so the client cannot see it",
                    ns.prefix, path.backend_topic
                ),
                fix("sluice_virtual_cluster", "namespace", entity, format!("list {topic:?} in namespace.additional.topics to share it, or create {:?}", path.backend_topic)),
            )
            .with("probe", format!("backend has {topic:?}, not {:?}", path.backend_topic), backend, "");
        }
    }
    let mut ids: Vec<&str> = policies.iter().map(|p| p.id.as_str()).collect();
    ids.push(vc_id);
    // Shadow denials changed nothing: evidence, not a failure.
    let errors: Vec<_> = facts
        .recent_errors(HOP, &ids)
        .into_iter()
        .filter(|(_, e)| e.detail != "shadow")
        .collect();
    let principal = facts.request.principal.trim();
    let mine = Facts::about(&errors, principal);
    if let Some((node, e)) = mine {
        let (resource, attribute, action) = policy_fix(&e.kind, &e.last_message);
        let target = facts
            .entities
            .get(&e.entity)
            .filter(|p| p.id != vc_id)
            .or_else(|| {
                policies
                    .iter()
                    .find(|p| super::resource_of(p) == resource)
                    .copied()
            });
        let target = match resource {
            "sluice_virtual_cluster" => entity,
            _ => target,
        };
        return Check::fail(
            HOP,
            Domain::Policy,
            format!(
                "node {} refused {label}'s client: {} ({})",
                node.id, e.last_message, e.kind
            ),
            fix(resource, attribute, target, action),
        )
        .with("node", facts.describe_error(node, e), &e.entity, &node.id);
    }
    let count = |kind: Kind| policies.iter().filter(|p| p.kind() == kind).count();
    if !policies.is_empty() || namespace.is_some() {
        return Check::unknown(
            HOP,
            format!(
                "not verified: {} polic(ies) on {label} ({} ACL, {} quota){}; no node reported a refusal since it applied its revision",
                policies.len(),
                count(Kind::ClusterPolicyAcls),
                count(Kind::ClusterPolicyQuota),
                if namespace.is_some() {
                    ", a namespace"
                } else {
                    ""
                }
            ),
        );
    }
    Check::pass(
        HOP,
        format!(
            "no policies and no namespace on {label}: nothing to refuse{}",
            if topic.is_empty() {
                String::new()
            } else {
                format!(
                    "; topic {topic:?} is the backend's {:?}",
                    path.backend_topic
                )
            }
        ),
    )
}

//! The virtual cluster hop (is it the one the client expects, can nodes
//! serve it) and the backend cluster hop (do nodes reach it, and is the
//! client's topic there).

use sluice_proto::admin::v1::Kind;

use super::{Check, Domain, fix};
use crate::diagnose::{facts::Facts, path::Resolution};

/// Checks the virtual cluster the path reaches.
pub fn virtual_cluster(facts: &Facts, resolution: &Resolution) -> Check {
    const HOP: &str = "virtual_cluster";
    let path = &resolution.path;
    let expected = facts.request.virtual_cluster.trim();
    let names = || {
        facts
            .of_kind(Kind::VirtualCluster)
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !expected.is_empty() {
        let Some(wanted) = facts.find(Kind::VirtualCluster, expected) else {
            return Check::fail(
                HOP,
                Domain::MissingObject,
                format!(
                    "gateway {} has no virtual cluster named {expected:?} (it has: {})",
                    path.gateway_name,
                    names()
                ),
                fix(
                    "sluice_virtual_cluster",
                    "name",
                    None,
                    "create it, or use one of the existing names",
                ),
            );
        };
        if !path.virtual_cluster_id.is_empty() && path.virtual_cluster_id != wanted.id {
            let forward = facts.entities.get(&path.forward_policy_id);
            return Check::fail(
                HOP,
                Domain::ListenerMapping,
                format!(
                    "the client reaches virtual cluster {}, not {}: forward policy {} routes it there",
                    facts.label(&path.virtual_cluster_id),
                    facts.label(&wanted.id),
                    facts.label(&path.forward_policy_id)
                ),
                fix(
                    "sluice_listener_policy_forward_to_virtual_cluster",
                    "port_mapping.destination_id",
                    forward,
                    format!(
                        "point the client at a listener that forwards to {}, or change the forward policy's destination",
                        wanted.name
                    ),
                ),
            );
        }
    }
    if path.virtual_cluster_id.is_empty() {
        return Check::unknown(
            HOP,
            "no virtual cluster on the path (give --address, --sni-host or --virtual-cluster)",
        );
    }
    let vc_id = path.virtual_cluster_id.as_str();
    let label = facts.label(vc_id);
    if let Some(refused) = facts.refusal(vc_id, sluice_proxy::hop::Hop::VirtualCluster) {
        return Check::fail(
            HOP,
            Domain::Routing,
            format!(
                "nodes refuse virtual cluster {label}'s connections: {} ({})",
                refused.message,
                refused.kind.as_str()
            ),
            fix(
                "sluice_virtual_cluster",
                "",
                facts.entities.get(vc_id),
                "change what the refusal names",
            ),
        );
    }
    // Requests forwarded unread (`not_evaluated`) are reports, not refusals.
    let refusals = facts.recent_errors(HOP, &[vc_id]);
    if let Some((node, e)) = refusals
        .into_iter()
        .find(|(_, e)| e.detail != "not_evaluated")
    {
        return Check::fail(
            HOP,
            Domain::Routing,
            format!(
                "node {} refuses virtual cluster {label}'s requests: {}",
                node.id, e.last_message
            ),
            fix(
                "sluice_virtual_cluster",
                "",
                facts.entities.get(vc_id),
                "change what the refusal names",
            ),
        )
        .with("node", facts.describe_error(node, e), vc_id, &node.id);
    }
    Check::pass(
        HOP,
        format!(
            "virtual cluster {label} ▸ backend cluster {}",
            facts.label(&path.backend_cluster_id)
        ),
    )
    .with(
        "config",
        format!(
            "{label}'s destination_id is backend cluster {}",
            facts.label(&path.backend_cluster_id)
        ),
        vc_id,
        "",
    )
}

/// The backend attribute a failed step or error points at.
fn backend_attribute(step_or_kind: &str, message: &str) -> (&'static str, &'static str) {
    match step_or_kind {
        "tcp" | "unreachable" => (
            "bootstrap_servers",
            "check the backend's address and that the node can reach it",
        ),
        "tls" | "tls_handshake_failed" if message.contains("name mismatch") => (
            "bootstrap_servers",
            "dial the brokers by a name their certificates carry (or fix the certificates)",
        ),
        "tls" | "tls_handshake_failed" => (
            "tls.ca_bundle",
            "trust the CA that signed the brokers' certificates",
        ),
        "sasl" | "auth_failed" => (
            "authentication",
            "give the gateway credentials the backend accepts",
        ),
        "route" => ("", "change what the refusal names"),
        _ => (
            "bootstrap_servers",
            "check that the address is a Kafka broker",
        ),
    }
}

/// Checks the backend cluster the virtual cluster forwards to.
pub fn backend(facts: &Facts, resolution: &Resolution) -> Check {
    const HOP: &str = "backend_cluster";
    let path = &resolution.path;
    let id = path.backend_cluster_id.as_str();
    if id.is_empty() {
        return Check::unknown(HOP, "no backend cluster on the path");
    }
    let label = facts.label(id);
    let entity = facts.entities.get(id);
    let compiled = facts
        .config
        .as_ref()
        .ok()
        .and_then(|c| c.compiled().backends.get(id).cloned());
    if let Some(refused) = compiled.and_then(|b| b.refused.clone()) {
        return Check::fail(
            HOP,
            Domain::Routing,
            format!(
                "nodes refuse to dial backend cluster {label}: {}",
                refused.message
            ),
            fix(
                "sluice_backend_cluster",
                "",
                entity,
                "change what the refusal names",
            ),
        );
    }
    let steps = facts.probe_steps(HOP, id);
    let reached = steps
        .iter()
        .any(|(_, s)| s.step == "metadata" && s.status == "pass");
    if !reached
        && let Some((node, step)) = steps
            .iter()
            .find(|(_, s)| s.status == "fail" && s.step != "topic")
    {
        let (attribute, action) = backend_attribute(&step.step, &step.message);
        return Check::fail(
            HOP,
            Domain::Routing,
            format!(
                "node {node} cannot reach backend cluster {label}: {} failed: {}",
                step.step, step.message
            ),
            fix("sluice_backend_cluster", attribute, entity, action),
        )
        .with(
            "probe",
            format!("{}: {}", step.step, step.message),
            id,
            node,
        );
    }
    if !reached && let Some((node, e)) = facts.recent_errors(HOP, &[id]).into_iter().next() {
        let (attribute, action) = backend_attribute(&e.kind, &e.last_message);
        let (domain, resource, attribute, action) = match e.kind.as_str() {
            "broker_outside_mapping" => (
                Domain::ListenerMapping,
                "sluice_listener",
                "ports",
                "give the listener a port for every broker id the backend names",
            ),
            _ => (Domain::Routing, "sluice_backend_cluster", attribute, action),
        };
        return Check::fail(
            HOP,
            domain,
            format!(
                "node {} fails reaching backend cluster {label}: {}",
                node.id, e.last_message
            ),
            fix(resource, attribute, entity, action),
        )
        .with("node", facts.describe_error(node, e), id, &node.id);
    }
    // The client's topic: missing here and present on another backend is
    // a virtual cluster routed to the wrong backend.
    if let Some(wrong) = wrong_backend(facts, path) {
        return wrong;
    }
    // Without a probe, no errors is not proof: nothing may have tried.
    let mut check = match reached {
        true => Check::pass(
            HOP,
            format!(
                "nodes reached backend cluster {label} (TCP, TLS, SASL as configured, ApiVersions, Metadata)"
            ),
        ),
        false => Check::unknown(
            HOP,
            format!(
                "not verified: no node reported errors reaching backend cluster {label} since it applied its revision, and no probe reached it (ask with --probe)"
            ),
        ),
    };
    for (node, step) in steps {
        check = check.with(
            "probe",
            format!("{}: {}", step.step, step.message),
            id,
            node,
        );
    }
    check
}

/// The client's topic missing on the path's backend: on another backend
/// of the gateway, the virtual cluster routes to the wrong backend;
/// nowhere, the topic is missing. (Its raw name on the path's own
/// backend is the namespace's business: the policy hop.)
fn wrong_backend(facts: &Facts, path: &sluice_proto::admin::v1::DiagnosedPath) -> Option<Check> {
    let topic = facts.request.topic.trim();
    if topic.is_empty() || path.backend_topic.is_empty() {
        return None;
    }
    let step = |backend: &str, name: &str, status: &str| {
        facts
            .probe_steps("backend_cluster", backend)
            .iter()
            .any(|(_, s)| {
                s.step == "topic"
                    && s.status == status
                    && s.message.contains(&format!("{name:?}"))
                    // Missing, not merely hidden or leaderless.
                    && (status == "pass" || s.message.contains("UNKNOWN_TOPIC_OR_PARTITION"))
            })
    };
    let own = path.backend_cluster_id.as_str();
    if !step(own, &path.backend_topic, "fail") || step(own, topic, "pass") {
        return None;
    }
    let answered = |backend: &str| {
        facts
            .probe_steps("backend_cluster", backend)
            .iter()
            .any(|(_, s)| {
                s.step == "topic"
                    && s.message.contains(&format!("{:?}", path.backend_topic))
                    && (s.status == "pass" || s.message.contains("UNKNOWN_TOPIC_OR_PARTITION"))
            })
    };
    let vc = facts.entities.get(&path.virtual_cluster_id);
    let elsewhere = facts
        .of_kind(Kind::BackendCluster)
        .into_iter()
        .find(|b| b.id != own && step(&b.id, &path.backend_topic, "pass"));
    let others_answered = facts
        .of_kind(Kind::BackendCluster)
        .iter()
        .all(|b| b.id == own || answered(&b.id));
    let Some(other) = elsewhere else {
        if !others_answered {
            return None;
        }
        return Some(
            Check::fail(
                "backend_cluster",
                Domain::MissingObject,
                format!(
                    "topic {:?} does not exist on backend cluster {} (nor on the gateway's other backends)",
                    path.backend_topic,
                    facts.label(own)
                ),
                fix(
                    "sluice_virtual_cluster",
                    "topic_aliases",
                    vc,
                    format!("create topic {:?} on the backend, or alias the client's name to the topic it means", path.backend_topic),
                ),
            )
            .with("probe", format!("topic {:?} missing on {}", path.backend_topic, facts.label(own)), own, ""),
        );
    };
    Some(
        Check::fail(
            "backend_cluster",
            Domain::Routing,
            format!(
                "virtual cluster {} forwards to backend cluster {}, which has no topic {:?}; backend cluster {} has it",
                facts.label(&path.virtual_cluster_id),
                facts.label(own),
                path.backend_topic,
                facts.label(&other.id)
            ),
            fix(
                "sluice_virtual_cluster",
                "destination_id",
                vc,
                format!("set destination_id to backend cluster {} ({}) if that is where this virtual cluster's topics live", other.name, other.id),
            ),
        )
        .with("probe", format!("topic {:?} missing on {}, present on {}", path.backend_topic, facts.label(own), facts.label(&other.id)), own, ""),
    )
}

//! The listener hop: which listener and forward policy the address (or
//! SNI name) reaches, whether the nodes bound it, and whether a client
//! connecting there is answered.

use sluice_proto::admin::v1::Kind;

use super::{Check, Domain, fix, gateway::endpoints};
use crate::diagnose::{
    facts::Facts,
    path::{Listening, Resolution, nearest, served_names},
};

const HOP: &str = "listener";
/// A bind failure this recent means the port is still not bound (nodes
/// retry at least every 30 s).
const BIND_RECENT_MS: i64 = 90_000;

/// Checks the listener hop.
pub fn check(facts: &Facts, resolution: &Resolution) -> Check {
    let request = &facts.request;
    let what = match (request.address.as_str(), request.sni_host.as_str()) {
        ("", "") => String::new(),
        (a, "") => a.to_string(),
        ("", s) => format!("SNI name {s}"),
        (a, s) => format!("{a} with SNI name {s}"),
    };
    let gateway = resolution.path.gateway_name.as_str();
    let listeners = || -> String {
        facts
            .of_kind(Kind::Listener)
            .iter()
            .map(|l| format!("{}: {}", l.name, endpoints(l)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let listener_of = |id: &str| facts.entities.get(id);
    match &resolution.listening {
        Listening::NotAsked => Check::unknown(
            HOP,
            "no --address or --sni-host given: the listener hop is not checked",
        ),
        Listening::Foreign { .. } => Check::unknown(HOP, "the address belongs to another gateway"),
        Listening::NoListener if !request.sni_host.is_empty() => {
            let served = served_names(facts);
            let near = nearest(&request.sni_host, &served);
            Check::fail(
                HOP,
                Domain::ListenerMapping,
                format!(
                    "no listener of gateway {gateway} routes {what}{}",
                    near.map(|n| format!(" (did you mean {n}?)")).unwrap_or_default()
                ),
                fix(
                    "sluice_virtual_cluster",
                    "dns_label",
                    None,
                    format!("use a served name ({}) in the client's bootstrap servers, or change the dns_label / sni_suffix it should match", served.join(", ")),
                ),
            )
            .with("config", format!("SNI names served: {}", served.join(", ")), "", "")
        }
        Listening::NoListener => Check::fail(
            HOP,
            Domain::ListenerMapping,
            format!("no listener of gateway {gateway} serves {what}"),
            fix(
                "sluice_listener",
                "ports",
                None,
                format!(
                    "point the client at a listener ({}) or add the port to one",
                    listeners()
                ),
            ),
        )
        .with("config", format!("listeners: {}", listeners()), "", ""),
        Listening::OtherAddress {
            listener_id,
            addresses,
        } => Check::fail(
            HOP,
            Domain::ListenerMapping,
            format!(
                "listener {} serves that port on {}, not on the address the client uses ({what})",
                facts.label(listener_id),
                addresses.join(", ")
            ),
            fix(
                "sluice_listener",
                "addresses",
                listener_of(listener_id),
                "connect to one of the listener's addresses, or add the client's",
            ),
        ),
        Listening::NoForward { listener_id } => Check::fail(
            HOP,
            Domain::MissingObject,
            format!(
                "listener {} has no forward policy: nodes do not serve its ports, so clients are refused",
                facts.label(listener_id)
            ),
            fix(
                "sluice_listener_policy_forward_to_virtual_cluster",
                "listener_id",
                None,
                format!(
                    "create a forward policy with listener_id = {listener_id} (port_mapping or sni) to the virtual cluster"
                ),
            ),
        ),
        Listening::Refused { listener_id, error } => {
            let kind = error.kind.as_str();
            let (resource, attribute, action) = match kind {
                "unknown_sni_name" => {
                    let served = served_names(facts);
                    let near = nearest(&request.sni_host, &served)
                        .map(|n| format!("did you mean {n}? "))
                        .unwrap_or_default();
                    (
                        "sluice_virtual_cluster",
                        "dns_label",
                        format!("{near}served names: {}", served.join(", ")),
                    )
                }
                "tls_required" => (
                    "sluice_listener_policy_tls_server",
                    "allow_plaintext",
                    "connect with TLS (security.protocol SSL or SASL_SSL)".to_string(),
                ),
                _ => (
                    "sluice_listener",
                    "",
                    format!("see the refusal: {}", error.message),
                ),
            };
            Check::fail(
                HOP,
                Domain::ListenerMapping,
                format!(
                    "listener {} refuses {what}: {} ({kind})",
                    facts.label(listener_id),
                    error.message
                ),
                fix(resource, attribute, listener_of(listener_id), action),
            )
            .with(
                "config",
                format!("{}: {}", kind, error.message),
                listener_id,
                "",
            )
        }
        Listening::Routed { listener_id, .. } => routed(facts, resolution, listener_id, &what),
    }
}

/// The configuration routes the address: do the nodes serve it?
fn routed(facts: &Facts, resolution: &Resolution, listener_id: &str, what: &str) -> Check {
    let path = &resolution.path;
    let label = facts.label(listener_id);
    let listener = facts.entities.get(listener_id);
    let steps = facts.probe_steps("listener", listener_id);
    // A node answers ApiVersions only once it has dialled the backend: a
    // missing answer is the listener's fault only if the backend answers.
    let backend_answers = facts
        .probe_steps("backend_cluster", &path.backend_cluster_id)
        .iter()
        .any(|(_, s)| {
            s.entity_id == path.backend_cluster_id && s.step == "metadata" && s.status == "pass"
        });
    for (node, step) in &steps {
        if step.status == "fail" && (step.step != "api_versions" || backend_answers) {
            let unbound = step.message.contains("not bound");
            return Check::fail(
                HOP,
                Domain::ListenerMapping,
                format!("node {node} probing {what}: {} failed: {}", step.step, step.message),
                match unbound {
                    true => fix("sluice_listener", "ports", listener, "free the port on the node's host (another process holds it) or move the listener to a free port"),
                    false => fix("sluice_listener", "", listener, "see the node's probe step"),
                },
            )
            .with("probe", format!("{}: {}", step.step, step.message), listener_id, node);
        }
    }
    let probed = steps
        .iter()
        .any(|(_, s)| s.step == "api_versions" && s.status == "pass");
    if !probed {
        let binds = facts.recent_errors("listener", &[listener_id]);
        let stuck = binds.iter().find(|(_, e)| {
            e.kind == "bind_failed"
                && facts.now_ms - crate::store::nodes::millis(e.last_at.as_ref()) <= BIND_RECENT_MS
        });
        if let Some((node, e)) = stuck {
            return Check::fail(
                HOP,
                Domain::ListenerMapping,
                format!("node {} cannot bind listener {label}'s port: {}", node.id, e.last_message),
                fix("sluice_listener", "ports", listener, "free the port on the node's host (another process holds it) or move the listener to a free port"),
            )
            .with("node", facts.describe_error(node, e), listener_id, &node.id);
        }
    }
    let mut check = Check::pass(
        HOP,
        format!(
            "{what} reaches listener {label} ▸ forward policy {} ({}, {}){}",
            facts.label(&path.forward_policy_id),
            path.forward_mode,
            path.role,
            if path.tls { ", TLS" } else { "" }
        ),
    )
    .with(
        "config",
        format!(
            "listener {label}: {}",
            listener.map(endpoints).unwrap_or_default()
        ),
        listener_id,
        "",
    );
    for (node, step) in steps {
        check = check.with(
            "probe",
            format!("{}: {}", step.step, step.message),
            listener_id,
            node,
        );
    }
    if !probed {
        // The configuration routes it; whether a node answers there is
        // not known without a probe (or a client seen further on).
        check.status = "unknown";
        check.summary = format!(
            "{} — routed by the configuration, not probed",
            check.summary
        );
        check = check.with("config", "not probed: a configured route is not proof that a node answers there (ask with --probe)", listener_id, "");
    }
    for (node, e) in facts.recent_errors("listener", &[listener_id]) {
        check = check.with("node", facts.describe_error(node, e), listener_id, &node.id);
    }
    check
}

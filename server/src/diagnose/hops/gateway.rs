//! The first hop: is this the gateway (and environment) the client
//! reaches, and do its nodes run its latest configuration?

use sluice_proto::admin::v1::Kind;

use super::{Check, Domain, fix, resource_of};
use crate::diagnose::{
    facts::{APPLY_GRACE_MS, Facts, age},
    path::{Listening, Resolution},
};

const HOP: &str = "gateway";

/// Checks the gateway, its nodes and their revisions.
pub fn check(facts: &Facts, resolution: &Resolution) -> Check {
    let asked = facts.request.gateway.trim();
    let Some(gateway) = &facts.gateway else {
        let known: Vec<String> = facts
            .gateways
            .iter()
            .take(10)
            .map(|g| g.name.clone())
            .collect();
        return Check::fail(
            HOP,
            Domain::Environment,
            format!("no gateway is named {asked:?} or has that id on this control plane"),
            fix(
                "sluice_gateway",
                "name",
                None,
                format!(
                    "diagnose (and point clients at) one of: {}",
                    known.join(", ")
                ),
            ),
        )
        .with(
            "config",
            format!("gateways here: {}", known.join(", ")),
            "",
            "",
        );
    };
    if let Listening::Foreign {
        listener,
        gateway: other,
    } = &resolution.listening
    {
        let own: Vec<String> = facts
            .of_kind(Kind::Listener)
            .iter()
            .map(|l| endpoints(l))
            .collect();
        return Check::fail(
            HOP,
            Domain::Environment,
            format!(
                "{} is listener {} of gateway {other}, not of gateway {}",
                facts.request.address, listener.name, gateway.name
            ),
            fix(
                "sluice_listener",
                "gateway_id",
                Some(listener),
                format!(
                    "point the client at a listener of gateway {} ({}), or diagnose gateway {other}",
                    gateway.name,
                    own.join("; ")
                ),
            ),
        )
        .with("config", format!("listener {} ({}) belongs to gateway {other}", listener.name, endpoints(listener)), &listener.id, "");
    }
    if let Err(reason) = &facts.config {
        let culprit = facts.entities.values().find(|e| reason.contains(&e.id));
        return Check::fail(
            HOP,
            Domain::Environment,
            format!(
                "nodes cannot apply revision {} of gateway {}: {reason}",
                facts.revision, gateway.name
            ),
            fix(
                &culprit.map_or_else(|| "sluice_gateway".to_string(), resource_of),
                "",
                culprit,
                "change what the reason names; nodes stay at their last good revision meanwhile",
            ),
        );
    }
    let connected: Vec<_> = facts.connected().collect();
    if connected.is_empty() {
        let mut check = Check::fail(
            HOP,
            Domain::Environment,
            format!(
                "no data-plane node of gateway {} is connected: nothing serves its listeners",
                gateway.name
            ),
            fix(
                "sluice_data_plane_certificate",
                "gateway_id",
                None,
                format!(
                    "start sluice-proxy with a data_plane_certificate of gateway {}",
                    gateway.name
                ),
            ),
        );
        for n in &facts.nodes {
            check = check.with(
                "node",
                format!(
                    "node {} last seen {}",
                    n.id,
                    age(facts.now_ms, n.last_seen_at)
                ),
                "",
                &n.id,
            );
        }
        return check;
    }
    let mut applying = Vec::new();
    let mut check = Check::pass(
        HOP,
        format!(
            "gateway {} at revision {}; {} node(s) connected, all at its configuration",
            gateway.name,
            facts.revision,
            connected.len()
        ),
    );
    for node in &connected {
        // A probe's revision is fresher than the last status report.
        let probed = facts
            .probes
            .iter()
            .find(|p| p.node_id == node.id && p.status == "done");
        let applied = probed.map_or(node.applied_revision, |p| {
            p.revision.max(node.applied_revision)
        });
        if let Some((revision, reason, at)) = &node.rejected
            && *revision > applied
        {
            let culprit = facts.entities.values().find(|e| reason.contains(&e.id));
            return Check::fail(
                HOP,
                Domain::Environment,
                format!(
                    "node {} rejected revision {revision} ({}) and serves revision {applied}: {reason}",
                    node.id,
                    age(facts.now_ms, *at)
                ),
                fix(
                    &culprit.map_or_else(|| "sluice_gateway".to_string(), resource_of),
                    "",
                    culprit,
                    "change what the node's reason names; until then it serves the older revision",
                ),
            )
            .with("node", format!("node {} applied revision {applied}; configuration at {}", node.id, facts.target_revision), "", &node.id);
        }
        if applied < facts.target_revision && facts.now_ms - facts.changed_at_ms > APPLY_GRACE_MS {
            return Check::fail(
                HOP,
                Domain::Environment,
                format!(
                    "node {} serves revision {applied}, but gateway {}'s configuration is at revision {} (changed {}): the node has not applied the latest configuration",
                    node.id,
                    gateway.name,
                    facts.target_revision,
                    age(facts.now_ms, facts.changed_at_ms)
                ),
                fix(
                    "sluice_data_plane_certificate",
                    "",
                    None,
                    format!(
                        "check node {}'s link to the control plane (its log, hop=control_plane); what it serves is not the configuration you see",
                        node.id
                    ),
                ),
            )
            .with("node", format!("node {} applied revision {applied} {}", node.id, age(facts.now_ms, node.applied_at)), "", &node.id);
        }
        if applied < facts.target_revision {
            // Within the grace period: applying it, most likely; not proof
            // either way.
            applying.push(format!("{} (at {applied})", node.id));
        }
        check = check.with(
            "node",
            format!("node {} connected, at revision {applied}", node.id),
            "",
            &node.id,
        );
    }
    if !applying.is_empty() {
        check.status = "unknown";
        check.summary = format!(
            "gateway {} changed {} (revision {}); node(s) {} have not applied it yet: diagnose again in a few seconds",
            gateway.name,
            age(facts.now_ms, facts.changed_at_ms),
            facts.target_revision,
            applying.join(", ")
        );
    }
    check
}

/// A listener's addresses and ports, in words.
pub fn endpoints(listener: &sluice_proto::admin::v1::Entity) -> String {
    match &listener.spec {
        Some(sluice_proto::admin::v1::entity::Spec::Listener(l)) => {
            format!("{} port(s) {}", l.addresses.join(","), l.ports.join(","))
        }
        _ => String::new(),
    }
}

//! A diagnosis for people (text) and for scripts (JSON with the proto's
//! field names).

use std::fmt::Write;

use serde_json::{Value, json};
use sluice_proto::admin::v1::{DiagnoseResponse, DiagnosisEvidence};

fn evidence_json(e: &DiagnosisEvidence) -> Value {
    json!({"source": e.source, "fact": e.fact, "entity_id": e.entity_id, "node_id": e.node_id})
}

/// The diagnosis as JSON.
pub fn json(d: &DiagnoseResponse) -> Value {
    let path = d.path.clone().unwrap_or_default();
    json!({
        "domain": d.domain,
        "domain_title": d.domain_title,
        "summary": d.summary,
        "failed_hop": d.failed_hop,
        "gateway_revision": d.gateway_revision,
        "path": {
            "gateway_id": path.gateway_id, "gateway_name": path.gateway_name,
            "listener_id": path.listener_id, "listener_name": path.listener_name,
            "forward_policy_id": path.forward_policy_id, "forward_mode": path.forward_mode,
            "role": path.role, "tls": path.tls,
            "virtual_cluster_id": path.virtual_cluster_id, "virtual_cluster_name": path.virtual_cluster_name,
            "backend_cluster_id": path.backend_cluster_id, "backend_cluster_name": path.backend_cluster_name,
            "backend_topic": path.backend_topic,
        },
        "checks": d.checks.iter().map(|c| json!({
            "hop": c.hop, "status": c.status, "summary": c.summary,
            "evidence": c.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "fix": d.fix.as_ref().map(|f| json!({
            "resource": f.resource, "attribute": f.attribute,
            "entity_id": f.entity_id, "entity_name": f.entity_name, "action": f.action,
        })),
        "ruled_out": d.ruled_out,
        "symptom_note": d.symptom_note,
        "probes": d.probes.iter().map(|p| json!({
            "node_id": p.node_id, "status": p.status, "revision": p.revision,
            "steps": p.steps.iter().map(|s| json!({
                "target": s.target, "step": s.step, "status": s.status,
                "message": s.message, "elapsed_ms": s.elapsed_ms, "entity_id": s.entity_id,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The diagnosis as text.
pub fn text(d: &DiagnoseResponse) -> String {
    let mut out = String::new();
    let path = d.path.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "Gateway {} (revision {})",
        or_dash(&path.gateway_name),
        d.gateway_revision
    );
    let mut hops = Vec::new();
    if !path.listener_name.is_empty() {
        hops.push(format!(
            "listener {} ({}, {})",
            path.listener_name, path.forward_mode, path.role
        ));
    }
    if !path.virtual_cluster_name.is_empty() {
        hops.push(format!("virtual cluster {}", path.virtual_cluster_name));
    }
    if !path.backend_cluster_name.is_empty() {
        hops.push(format!("backend cluster {}", path.backend_cluster_name));
    }
    let _ = writeln!(
        out,
        "Path:    {}",
        if hops.is_empty() {
            "-".to_string()
        } else {
            hops.join(" ▸ ")
        }
    );
    let _ = writeln!(out, "\nChecks:");
    for c in &d.checks {
        let mark = match c.status.as_str() {
            "pass" => "pass",
            "fail" => "FAIL",
            _ => " ?  ",
        };
        let _ = writeln!(out, "  [{mark}] {:<16} {}", c.hop, c.summary);
        for e in &c.evidence {
            let node = if e.node_id.is_empty() {
                String::new()
            } else {
                format!(" {}", e.node_id)
            };
            let _ = writeln!(out, "           {}{node}: {}", e.source, e.fact);
        }
    }
    let _ = writeln!(out);
    if d.domain == "none" {
        let _ = writeln!(out, "Verdict: no fault found");
        let _ = writeln!(out, "         {}", d.summary);
    } else {
        let _ = writeln!(
            out,
            "Verdict: {} ({}) at the {} hop",
            d.domain, d.domain_title, d.failed_hop
        );
        let _ = writeln!(out, "Cause:   {}", d.summary);
        if let Some(f) = &d.fix {
            let what = match (f.attribute.is_empty(), f.entity_name.is_empty()) {
                (true, true) => f.resource.clone(),
                (false, true) => format!("{}.{}", f.resource, f.attribute),
                (true, false) => format!("{} {:?}", f.resource, f.entity_name),
                (false, false) => format!(
                    "{} {:?}, attribute {}",
                    f.resource, f.entity_name, f.attribute
                ),
            };
            let _ = writeln!(out, "Fix:     {what}: {}", f.action);
        }
    }
    if !d.ruled_out.is_empty() {
        let _ = writeln!(out, "\nRuled out:");
        for r in &d.ruled_out {
            let _ = writeln!(out, "  - {r}");
        }
    }
    if !d.symptom_note.is_empty() {
        let _ = writeln!(out, "\nNote: {}", d.symptom_note);
    }
    if !d.probes.is_empty() {
        let _ = writeln!(out, "\nProbes:");
        for p in &d.probes {
            let _ = writeln!(
                out,
                "  node {} ({}, revision {})",
                p.node_id, p.status, p.revision
            );
            for s in &p.steps {
                let _ = writeln!(
                    out,
                    "    {:<15} {:<12} {:<7} {} ({} ms)",
                    s.target, s.step, s.status, s.message, s.elapsed_ms
                );
            }
        }
    }
    // Messages come from nodes, brokers and clients: no escape sequences
    // reach the terminal.
    out.chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect()
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

//! From checks to one answer: the first hop that fails, in path order, is
//! the failure domain (what fails upstream hides what is downstream);
//! the hops that passed are what rules out its neighbours.

use sluice_proto::admin::v1::DiagnoseResponse;

use super::{facts::Facts, hops::Check, path::Resolution};

/// Which hop a client's words point at, when they clearly point at one.
fn symptom_hop(symptom: &str) -> Option<&'static str> {
    let s = symptom.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| s.contains(w));
    if has(&[
        "authorization",
        "not authorized",
        "authorizationfailed",
        "acl",
        "quota",
        "throttl",
    ]) {
        Some("policy")
    } else if has(&["authentication", "sasl", "credentials", "login", "password"]) {
        Some("auth")
    } else if has(&[
        "unknown_topic",
        "unknown topic",
        "unknowntopic",
        "does not exist",
    ]) {
        Some("backend_cluster")
    } else if has(&[
        "timed out",
        "timeout",
        "connection refused",
        "disconnected",
        "transport",
        "ssl",
        "handshake",
        "resolve",
    ]) {
        Some("listener")
    } else {
        None
    }
}

/// The answer from the checks.
pub(super) fn judge(
    facts: &Facts,
    resolution: Resolution,
    mut checks: Vec<Check>,
) -> DiagnoseResponse {
    let failed = checks.iter().position(Check::failed);
    // A node that saw the client fail further on saw it come through the
    // listener and the virtual cluster: that is their proof.
    if let Some(i) = failed
        && matches!(checks[i].hop, "backend_cluster" | "auth" | "policy")
        && checks[i].evidence.iter().any(|e| e.source == "node")
    {
        let seen_at = checks[i].hop;
        for c in checks[..i]
            .iter_mut()
            .filter(|c| c.status == "unknown" && matches!(c.hop, "listener" | "virtual_cluster"))
        {
            c.status = "pass";
            c.summary = format!(
                "{} — the client came through: a node saw it at the {seen_at} hop",
                c.summary
            );
        }
    }
    let mut response = DiagnoseResponse {
        path: Some(resolution.path),
        checks: checks.iter().map(Check::to_proto).collect(),
        probes: facts.probes.clone(),
        gateway_revision: facts.revision,
        ..Default::default()
    };
    match failed.and_then(|i| Some((i, checks[i].finding.clone()?))) {
        Some((i, finding)) => {
            let check = &checks[i];
            response.domain = finding.domain.as_str().into();
            response.domain_title = finding.domain.title().into();
            response.summary = check.summary.clone();
            response.failed_hop = check.hop.into();
            response.fix = Some(finding.fix);
            response.ruled_out = checks[..i]
                .iter()
                .filter(|c| c.status == "pass")
                .map(|c| format!("{}: {}", c.hop, c.summary))
                .collect();
            let after: Vec<&str> = checks[i + 1..].iter().map(|c| c.hop).collect();
            if !after.is_empty() {
                response.ruled_out.push(format!(
                    "{}: not judged: a client that fails at the {} hop never gets there",
                    after.join(", "),
                    check.hop
                ));
            }
            if let Some(said) = symptom_hop(&facts.request.symptom)
                && said != check.hop
            {
                response.symptom_note = format!(
                    "the client's words point at the {said} hop, but the path fails earlier or elsewhere, at the {} hop: {}",
                    check.hop,
                    match (said, check.hop) {
                        ("auth", "listener" | "gateway") =>
                            "a listener or host name mismatch can look like an authentication failure from the client",
                        ("policy", _) => "an authorization error is not always an ACL",
                        _ => "clients report the symptom, not the hop",
                    }
                );
            }
        }
        None => {
            response.domain = "none".into();
            response.domain_title = "no fault found".into();
            let unknown: Vec<&str> = checks
                .iter()
                .filter(|c| c.status == "unknown")
                .map(|c| c.hop)
                .collect();
            response.summary = match unknown.is_empty() {
                true => "no fault found: every hop checked out".into(),
                false => format!(
                    "no fault found in what could be checked (not checked: {})",
                    unknown.join(", ")
                ),
            };
            response.ruled_out = checks
                .iter()
                .filter(|c| c.status == "pass")
                .map(|c| format!("{}: {}", c.hop, c.summary))
                .collect();
            // The client says something fails that no check could see.
            if let Some(said) = symptom_hop(&facts.request.symptom) {
                let status = checks
                    .iter()
                    .find(|c| c.hop == said)
                    .map_or("unknown", |c| c.status);
                response.symptom_note = format!(
                    "the client's words point at the {said} hop, which is {status} here: nodes may not have seen the failing client yet (run it again, then diagnose with --probe{})",
                    if facts.request.principal.is_empty() {
                        " and --principal"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    sanitize(&mut response);
    response
}

/// Text from nodes, brokers and clients, made safe to print and store: no
/// control characters and no bidirectional overrides (which can make a
/// terminal or a plan show something other than what is there).
fn clean(text: &mut String) {
    if text.chars().any(unsafe_char) {
        *text = text.chars().filter(|c| !unsafe_char(*c)).collect();
    }
}

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn sanitize(d: &mut DiagnoseResponse) {
    if let Some(p) = &mut d.path {
        for field in [
            &mut p.gateway_name,
            &mut p.listener_name,
            &mut p.virtual_cluster_name,
            &mut p.backend_cluster_name,
            &mut p.backend_topic,
            &mut p.role,
        ] {
            clean(field);
        }
    }
    clean(&mut d.summary);
    clean(&mut d.symptom_note);
    d.ruled_out.iter_mut().for_each(clean);
    for c in &mut d.checks {
        clean(&mut c.summary);
        for e in &mut c.evidence {
            clean(&mut e.fact);
            clean(&mut e.node_id);
        }
    }
    if let Some(f) = &mut d.fix {
        clean(&mut f.action);
        clean(&mut f.entity_name);
    }
    for p in &mut d.probes {
        clean(&mut p.node_id);
        for s in &mut p.steps {
            clean(&mut s.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::symptom_hop;

    #[test]
    fn node_text_loses_control_and_bidi_characters() {
        let mut text = "ok\u{1b}[31m red \u{202e}desrever\n".to_string();
        super::clean(&mut text);
        assert_eq!(text, "ok[31m red desrever");
    }

    #[test]
    fn symptoms_point_at_hops() {
        assert_eq!(
            symptom_hop("SASL authentication error: Authentication failed"),
            Some("auth")
        );
        assert_eq!(
            symptom_hop("Broker: Topic authorization failed"),
            Some("policy")
        );
        assert_eq!(symptom_hop("Connection refused"), Some("listener"));
        assert_eq!(symptom_hop("it is slow"), None);
    }
}

//! The Diagnose RPC: "which hop failed?" answered from one place. A
//! client's path (gateway ▸ listener ▸ virtual cluster ▸ backend cluster
//! ▸ auth ▸ policy) is resolved with the data plane's own router, each
//! hop is checked against the configuration, the nodes' reports and, on
//! request, live probes from the nodes, and the first hop that fails is
//! the one failure domain named, with the facts that rule out its
//! neighbours and the Terraform attribute to change.

pub mod command;
pub mod facts;
pub mod hops;
pub mod path;
pub mod render;
mod verdict;

use std::time::Duration;

use sluice_proto::{
    admin::v1::{DiagnoseRequest, DiagnoseResponse, DiagnosisProbe, DiagnosisProbeStep},
    dataplane::v1::ProbeRequest,
};

use crate::{
    error::{ApiError, Violations},
    store::Store,
    sync::{Registry, probes::Answer},
};
use facts::Facts;

/// The probe deadline of a request that names none.
const DEFAULT_PROBE_WAIT: Duration = Duration::from_secs(8);
/// The longest probe deadline.
const MAX_PROBE_WAIT_MS: u32 = 30_000;
/// Longest accepted input field.
const MAX_FIELD: usize = 512;
/// The most probe steps kept per node (a node sends far fewer).
const MAX_STEPS: usize = 64;
/// The longest probe step message kept.
const MAX_STEP_MESSAGE: usize = 1024;
/// Longest accepted symptom.
const MAX_SYMPTOM: usize = 4096;

/// What a node sent, cut to `max` characters, without control characters
/// (they would reach an operator's terminal).
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Checks the request's fields, naming each one that is wrong.
fn validate(request: &DiagnoseRequest) -> Result<(), ApiError> {
    let mut v = Violations::default();
    if request.gateway.trim().is_empty() {
        v.add("gateway", "must name a gateway (its name or id)");
    }
    for (field, value) in [
        ("address", &request.address),
        ("sni_host", &request.sni_host),
        ("virtual_cluster", &request.virtual_cluster),
        ("principal", &request.principal),
        ("topic", &request.topic),
        ("gateway", &request.gateway),
    ] {
        if value.len() > MAX_FIELD {
            v.add(field, format!("at most {MAX_FIELD} bytes"));
        }
    }
    if request.symptom.len() > MAX_SYMPTOM {
        v.add("symptom", format!("at most {MAX_SYMPTOM} bytes"));
    }
    if !request.address.is_empty() && path::split(&request.address).is_none() {
        v.add("address", "must be host:port (or [v6]:port)");
    }
    if request.probe_timeout_ms > MAX_PROBE_WAIT_MS {
        v.add("probe_timeout_ms", format!("at most {MAX_PROBE_WAIT_MS}"));
    }
    v.into_result("diagnose request")
}

/// Diagnoses one client path.
pub async fn diagnose(
    store: &Store,
    registry: &Registry,
    request: DiagnoseRequest,
) -> Result<DiagnoseResponse, ApiError> {
    validate(&request)?;
    let probe = request.probe;
    let mut facts = Facts::load(store, registry, request).await?;
    let mut resolution = path::resolve(&facts).await;
    if probe && facts.gateway.is_some() {
        facts.probes = probes(registry, &facts, &resolution).await?;
        for probe in &mut facts.probes {
            if probe.status == "done" && probe.revision < facts.target_revision {
                probe.status = "behind".into();
            }
        }
        // Fresh status came with the results.
        facts.nodes = registry.list(facts.gateway_id()).await?;
        resolution = path::resolve(&facts).await;
    }
    let checks = vec![
        hops::gateway::check(&facts, &resolution),
        hops::listener::check(&facts, &resolution),
        hops::clusters::virtual_cluster(&facts, &resolution),
        hops::clusters::backend(&facts, &resolution),
        hops::access::auth(&facts, &resolution),
        hops::access::policy(&facts, &resolution),
    ];
    Ok(verdict::judge(&facts, resolution, checks))
}

/// Asks the connected nodes to probe the path.
async fn probes(
    registry: &Registry,
    facts: &Facts,
    resolution: &path::Resolution,
) -> Result<Vec<DiagnosisProbe>, ApiError> {
    let path = &resolution.path;
    let mut backends = Vec::new();
    if !path.backend_cluster_id.is_empty() {
        backends.push(path.backend_cluster_id.clone());
    }
    let topic = facts.request.topic.trim();
    let mut topics = Vec::new();
    if !topic.is_empty() {
        if !path.backend_topic.is_empty() {
            topics.push(path.backend_topic.clone());
        }
        if path.backend_topic != topic {
            topics.push(topic.to_string());
        }
        // Where else the topic lives tells a wrong destination apart.
        for b in facts.of_kind(sluice_proto::admin::v1::Kind::BackendCluster) {
            if !backends.contains(&b.id) {
                backends.push(b.id.clone());
            }
        }
    }
    let wait = match facts.request.probe_timeout_ms {
        0 => DEFAULT_PROBE_WAIT,
        ms => Duration::from_millis(u64::from(ms)),
    };
    let request = ProbeRequest {
        address: resolution.probe_address.clone(),
        sni_host: facts.request.sni_host.trim().to_string(),
        tls: path.tls,
        backend_cluster_ids: backends,
        topics,
        // The node's own budget ends before the server stops waiting.
        deadline_ms: u32::try_from((wait * 9 / 10).as_millis())
            .unwrap_or(u32::MAX)
            .max(1),
        ..Default::default()
    };
    let nodes: Vec<String> = facts.connected().map(|n| n.id.clone()).collect();
    let answers = registry
        .probes
        .ask(facts.gateway_id(), &nodes, request, wait)
        .await?;
    Ok(answers
        .into_iter()
        .map(|(node_id, answer)| match answer {
            Answer::Done(result) => DiagnosisProbe {
                node_id,
                status: if result.busy { "busy" } else { "done" }.into(),
                revision: result.revision,
                steps: result
                    .steps
                    .into_iter()
                    .take(MAX_STEPS)
                    .map(|s| DiagnosisProbeStep {
                        target: clean(&s.target, 32),
                        step: clean(&s.step, 32),
                        status: clean(&s.status, 16),
                        message: clean(&s.message, MAX_STEP_MESSAGE),
                        elapsed_ms: s.elapsed_ms,
                        entity_id: clean(&s.entity_id, 64),
                    })
                    .collect(),
            },
            Answer::Timeout => DiagnosisProbe {
                node_id,
                status: "timeout".into(),
                ..Default::default()
            },
            Answer::NotConnected => DiagnosisProbe {
                node_id,
                status: "not_connected".into(),
                ..Default::default()
            },
        })
        .collect())
}

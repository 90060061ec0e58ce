//! The `sluice_diagnosis` data source: the admin API's `Diagnose` as data.
//! A failure domain other than `none` is a value to assert on (a `check`
//! block on `healthy`), not an error; only a refused call is one.

use std::collections::BTreeMap;

use sluice_proto::{
    admin::v1::{
        DiagnoseRequest, DiagnoseResponse, DiagnosedPath, DiagnosisEvidence, DiagnosisFix,
        DiagnosisProbe, DiagnosisProbeStep, HopCheck,
    },
    tfplugin6::Diagnostic,
};

use crate::{
    client::Admin,
    data_sources::DataSource,
    diagnostics::{attribute_path, diagnostic, status_diagnostics},
    plugin::value::{Type, Value},
    schema::{Attr, Nesting, Source},
};

/// The data source's type name.
pub const TYPE_NAME: &str = "sluice_diagnosis";

/// What the data source does (its docs page and registry description).
pub const DESCRIPTION: &str = "Diagnoses why a Kafka client cannot get through a gateway: walks the path the client takes (client ▸ listener ▸ virtual cluster ▸ backend cluster ▸ auth ▸ policy) through the configuration and the nodes' reports, and names the one failure domain (`environment`, `missing_object`, `listener_mapping`, `routing`, `auth`, `policy`, or `none` when no hop fails) with its evidence and the Terraform attribute to fix. A failure domain is data, not an error: assert `healthy` in a `check` block (and `verified` where every hop must have been proven, which takes `probe = true`). A hop with no positive evidence is `unknown`, never `pass`. With `probe = true` the gateway's connected nodes also probe the path live (no records are sent); probes are rate-limited to one per gateway at a time and per second (the provider waits its turn, up to 33 s), so leave `probe` false in plans that run often.";

/// The longest probe wait the server accepts, in milliseconds.
pub const MAX_PROBE_TIMEOUT_MS: f64 = 30_000.0;

/// An attribute only the provider sets.
fn out(name: &str, ty: Type, description: &str) -> Attr {
    Attr {
        name: name.into(),
        ty,
        nested: None,
        required: false,
        optional: false,
        computed: true,
        sensitive: false,
        write_only: false,
        replaces: false,
        source: Source::Common,
        description: description.into(),
    }
}

/// An input attribute (optional unless `required`).
fn input(name: &str, ty: Type, required: bool, description: &str) -> Attr {
    Attr {
        required,
        optional: !required,
        computed: false,
        ..out(name, ty, description)
    }
}

/// A computed nested attribute of `fields`, one object or a list of them.
fn nested(name: &str, nesting: Nesting, fields: Vec<Attr>, description: &str) -> Attr {
    let object = object_type(&fields);
    let ty = match nesting {
        Nesting::Single => object,
        Nesting::List => Type::List(Box::new(object)),
    };
    let mut a = out(name, ty, description);
    a.nested = Some((nesting, fields));
    a
}

fn object_type(attrs: &[Attr]) -> Type {
    Type::Object(
        attrs
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect(),
    )
}

fn path_attrs() -> Vec<Attr> {
    let s = |name: &str, description: &str| out(name, Type::String, description);
    vec![
        s("gateway_id", "The gateway's id."),
        s("gateway_name", "The gateway's name."),
        s(
            "listener_id",
            "The id of the listener the address or SNI host reaches.",
        ),
        s("listener_name", "The name of that listener."),
        s(
            "forward_policy_id",
            "The forward policy (`sluice_listener_policy_forward_to_virtual_cluster`) that routes the connection.",
        ),
        s("forward_mode", "How it routes: `port_mapping` or `sni`."),
        s(
            "role",
            "What the address or host name reaches: `bootstrap` or `broker <id>`.",
        ),
        s(
            "virtual_cluster_id",
            "The id of the virtual cluster reached.",
        ),
        s("virtual_cluster_name", "The name of that virtual cluster."),
        s(
            "backend_cluster_id",
            "The id of the backend cluster behind it.",
        ),
        s("backend_cluster_name", "The name of that backend cluster."),
        out(
            "tls",
            Type::Bool,
            "Whether the listener terminates TLS (it has a tls_server policy).",
        ),
        s(
            "backend_topic",
            "`topic` as the backend names it (after aliases and the namespace); empty when the virtual cluster does not see it.",
        ),
    ]
}

fn check_attrs() -> Vec<Attr> {
    let s = |name: &str, description: &str| out(name, Type::String, description);
    let evidence = vec![
        s(
            "source",
            "Where the fact comes from: `config`, `node` or `probe`.",
        ),
        s("fact", "The fact, in a sentence."),
        s(
            "entity_id",
            "The entity the fact is about; empty when none.",
        ),
        s(
            "node_id",
            "The node that reported it (node and probe facts); empty otherwise.",
        ),
    ];
    vec![
        s(
            "hop",
            "The hop checked: `gateway`, `listener`, `virtual_cluster`, `backend_cluster`, `auth` or `policy`.",
        ),
        s("status", "`pass`, `fail` or `unknown`."),
        s("summary", "The check's outcome in one line."),
        nested(
            "evidence",
            Nesting::List,
            evidence,
            "The facts behind the check.",
        ),
    ]
}

fn fix_attrs() -> Vec<Attr> {
    let s = |name: &str, description: &str| out(name, Type::String, description);
    vec![
        s(
            "resource",
            "The resource type to change (`sluice_virtual_cluster`).",
        ),
        s(
            "attribute",
            "The attribute to change (`destination_id`, `authentication`).",
        ),
        s(
            "entity_id",
            "The id of the entity to change; empty when it does not exist yet.",
        ),
        s(
            "entity_name",
            "The name of the entity to change; empty when it does not exist yet.",
        ),
        s("action", "What to do, in a sentence."),
    ]
}

fn probe_attrs() -> Vec<Attr> {
    let s = |name: &str, description: &str| out(name, Type::String, description);
    let steps = vec![
        s(
            "target",
            "What was probed: `listener` (as a client connects) or `backend_cluster` (from the node to the backend).",
        ),
        s(
            "step",
            "`route`, `tcp`, `tls`, `sasl`, `api_versions`, `metadata` or `topic`.",
        ),
        s("status", "`pass`, `fail` or `skipped`."),
        s("message", "What the step saw."),
        out(
            "elapsed_ms",
            Type::Number,
            "How long the step took, in milliseconds.",
        ),
        s(
            "entity_id",
            "The entity probed (the listener or backend cluster).",
        ),
    ];
    vec![
        s("node_id", "The node that probed."),
        s(
            "status",
            "`done`, `timeout`, `not_connected` or `busy` (the node was running another probe: no steps).",
        ),
        out(
            "revision",
            Type::Number,
            "The gateway revision the node probed with.",
        ),
        nested(
            "steps",
            Nesting::List,
            steps,
            "The probe's steps, in order.",
        ),
    ]
}

/// The `sluice_diagnosis` data source's schema.
pub fn data_source() -> DataSource {
    let text = |name: &str, description: &str| input(name, Type::String, false, description);
    let attrs = vec![
        input(
            "gateway",
            Type::String,
            true,
            "The gateway the client is meant to reach: its name or id.",
        ),
        text(
            "address",
            "The `host:port` the client bootstraps from (or any broker address).",
        ),
        text(
            "sni_host",
            "The TLS SNI host name the client asks for (SNI listeners).",
        ),
        text(
            "virtual_cluster",
            "The virtual cluster the client expects to reach: its name or id.",
        ),
        text(
            "principal",
            "The principal the client authenticates as (SASL user name, token subject, certificate name).",
        ),
        text(
            "symptom",
            "What the client saw, in its words (an error message): compared with the hop that failed (see `symptom_note`).",
        ),
        text("topic", "A topic the client uses, as the client names it."),
        input(
            "probe",
            Type::Bool,
            false,
            "Also have the gateway's connected nodes probe the path live (TCP, TLS, SASL, ApiVersions, Metadata; no records are sent). One probe per gateway per second at most: leave it false in plans that run often. Default false.",
        ),
        input(
            "probe_timeout_ms",
            Type::Number,
            false,
            "How long to wait for probe results, in milliseconds: unset or 0 means 8000, at most 30000. Keep it below the provider's `request_timeout`.",
        ),
        out(
            "domain",
            Type::String,
            "The one failure domain: `environment`, `missing_object`, `listener_mapping`, `routing`, `auth`, `policy`, or `none` when every hop passes.",
        ),
        out(
            "domain_title",
            Type::String,
            "The failure domain in words (\"listener or host name mapping\").",
        ),
        out(
            "summary",
            Type::String,
            "The primary cause in a sentence, or what was verified.",
        ),
        out(
            "failed_hop",
            Type::String,
            "The hop of the failing check; empty for `none`.",
        ),
        out(
            "symptom_note",
            Type::String,
            "Why the `symptom` points at another hop than the one that failed (an auth error from a listener mismatch, say); empty otherwise.",
        ),
        out(
            "gateway_revision",
            Type::Number,
            "The gateway's latest revision when diagnosed.",
        ),
        out(
            "healthy",
            Type::Bool,
            "Whether `domain` is `none`: no hop fails (hops that could not be verified are `unknown` in `checks`). What a `check` block asserts.",
        ),
        out(
            "verified",
            Type::Bool,
            "Whether every hop passed on positive evidence (no `unknown`): stricter than `healthy`.",
        ),
        out(
            "ruled_out",
            Type::List(Box::new(Type::String)),
            "Why the neighbouring hops are not the cause, a sentence each.",
        ),
        nested(
            "path",
            Nesting::Single,
            path_attrs(),
            "The path the client takes, as resolved from the inputs and the configuration (empty strings where it could not be followed).",
        ),
        nested(
            "checks",
            Nesting::List,
            check_attrs(),
            "One check per hop, in path order.",
        ),
        nested(
            "fix",
            Nesting::Single,
            fix_attrs(),
            "What to change, as Terraform names it; null when there is nothing to fix.",
        ),
        nested(
            "probes",
            Nesting::List,
            probe_attrs(),
            "One live probe per connected node (with `probe = true`); empty otherwise.",
        ),
    ];
    DataSource {
        type_name: TYPE_NAME.into(),
        ty: object_type(&attrs),
        attrs,
        entity: None,
    }
}

/// What the configuration must hold beyond the schema: `probe_timeout_ms`
/// a whole number from 0 to 30000. Values not known yet pass.
pub fn validate(config: &Value) -> Vec<Diagnostic> {
    match config.get("probe_timeout_ms") {
        Value::Number(n) if n.fract() != 0.0 || !(0.0..=MAX_PROBE_TIMEOUT_MS).contains(n) => {
            vec![diagnostic(
                "invalid probe_timeout_ms",
                &format!(
                    "{n} is not a whole number of milliseconds from 0 to {MAX_PROBE_TIMEOUT_MS}"
                ),
                Some(attribute_path("probe_timeout_ms")),
            )]
        }
        _ => Vec::new(),
    }
}

/// The `Diagnose` request a configuration asks for.
pub fn request(config: &Value) -> DiagnoseRequest {
    let text = |n: &str| config.get(n).as_str().unwrap_or_default().to_string();
    DiagnoseRequest {
        gateway: text("gateway"),
        address: text("address"),
        sni_host: text("sni_host"),
        virtual_cluster: text("virtual_cluster"),
        principal: text("principal"),
        symptom: text("symptom"),
        topic: text("topic"),
        probe: matches!(config.get("probe"), Value::Bool(true)),
        probe_timeout_ms: match config.get("probe_timeout_ms") {
            // Validated to be whole and in range; `as` saturates anyway.
            Value::Number(n) => *n as u32,
            _ => 0,
        },
    }
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn path_value(p: &DiagnosedPath) -> Value {
    object([
        ("gateway_id", s(&p.gateway_id)),
        ("gateway_name", s(&p.gateway_name)),
        ("listener_id", s(&p.listener_id)),
        ("listener_name", s(&p.listener_name)),
        ("forward_policy_id", s(&p.forward_policy_id)),
        ("forward_mode", s(&p.forward_mode)),
        ("role", s(&p.role)),
        ("virtual_cluster_id", s(&p.virtual_cluster_id)),
        ("virtual_cluster_name", s(&p.virtual_cluster_name)),
        ("backend_cluster_id", s(&p.backend_cluster_id)),
        ("backend_cluster_name", s(&p.backend_cluster_name)),
        ("tls", Value::Bool(p.tls)),
        ("backend_topic", s(&p.backend_topic)),
    ])
}

fn evidence_value(e: &DiagnosisEvidence) -> Value {
    object([
        ("source", s(&e.source)),
        ("fact", s(&e.fact)),
        ("entity_id", s(&e.entity_id)),
        ("node_id", s(&e.node_id)),
    ])
}

fn check_value(c: &HopCheck) -> Value {
    object([
        ("hop", s(&c.hop)),
        ("status", s(&c.status)),
        ("summary", s(&c.summary)),
        (
            "evidence",
            Value::List(c.evidence.iter().map(evidence_value).collect()),
        ),
    ])
}

fn fix_value(f: &DiagnosisFix) -> Value {
    object([
        ("resource", s(&f.resource)),
        ("attribute", s(&f.attribute)),
        ("entity_id", s(&f.entity_id)),
        ("entity_name", s(&f.entity_name)),
        ("action", s(&f.action)),
    ])
}

fn step_value(st: &DiagnosisProbeStep) -> Value {
    object([
        ("target", s(&st.target)),
        ("step", s(&st.step)),
        ("status", s(&st.status)),
        ("message", s(&st.message)),
        ("elapsed_ms", Value::Number(f64::from(st.elapsed_ms))),
        ("entity_id", s(&st.entity_id)),
    ])
}

fn probe_value(p: &DiagnosisProbe) -> Value {
    object([
        ("node_id", s(&p.node_id)),
        ("status", s(&p.status)),
        ("revision", Value::Number(p.revision as f64)),
        (
            "steps",
            Value::List(p.steps.iter().map(step_value).collect()),
        ),
    ])
}

/// The data source's value: the configuration's inputs as given, and
/// what `response` says (`fix` null when unset, `path` empty when unset).
pub fn to_value(config: &Value, response: &DiagnoseResponse) -> Value {
    let mut value: BTreeMap<String, Value> = data_source()
        .attrs
        .iter()
        .filter(|a| !a.is_output())
        .map(|a| (a.name.clone(), config.get(&a.name).clone()))
        .collect();
    let r = response;
    value.extend([
        ("domain".to_string(), s(&r.domain)),
        ("domain_title".into(), s(&r.domain_title)),
        ("summary".into(), s(&r.summary)),
        ("failed_hop".into(), s(&r.failed_hop)),
        ("symptom_note".into(), s(&r.symptom_note)),
        (
            "gateway_revision".into(),
            Value::Number(r.gateway_revision as f64),
        ),
        ("healthy".into(), Value::Bool(r.domain == "none")),
        (
            "verified".into(),
            Value::Bool(
                r.domain == "none"
                    && !r.checks.is_empty()
                    && r.checks.iter().all(|c| c.status == "pass"),
            ),
        ),
        (
            "ruled_out".into(),
            Value::List(r.ruled_out.iter().map(|t| s(t)).collect()),
        ),
        (
            "path".into(),
            path_value(&r.path.clone().unwrap_or_default()),
        ),
        (
            "checks".into(),
            Value::List(r.checks.iter().map(check_value).collect()),
        ),
        ("fix".into(), r.fix.as_ref().map_or(Value::Null, fix_value)),
        (
            "probes".into(),
            Value::List(r.probes.iter().map(probe_value).collect()),
        ),
    ]);
    Value::Map(value)
}

/// Reads `sluice_diagnosis`: one `Diagnose` call. A refused call (an
/// invalid input, an unknown token, probes asked too often) is an error
/// at the attribute the server names; a diagnosis is always a value.
pub async fn read(admin: &mut Admin, config: &Value) -> Result<Value, Vec<Diagnostic>> {
    // Probes of one gateway run one at a time, once a second: several
    // diagnoses in one plan wait their turn (bounded) instead of failing.
    let mut attempts = 0;
    let response = loop {
        match admin.diagnose(request(config)).await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted && attempts < PROBE_TURNS => {
                attempts += 1;
                tokio::time::sleep(PROBE_TURN).await;
            }
            Err(s) => return Err(status_diagnostics(&format!("running {TYPE_NAME}"), &s)),
            Ok(r) => break r.into_inner(),
        }
    };
    Ok(to_value(config, &response))
}

/// How many times a diagnosis waits for another's probe to finish.
const PROBE_TURNS: u32 = if cfg!(test) { 2 } else { 30 };
/// How long it waits each time (probes are at most once a second).
const PROBE_TURN: std::time::Duration =
    std::time::Duration::from_millis(if cfg!(test) { 10 } else { 1100 });

#[cfg(test)]
mod tests;

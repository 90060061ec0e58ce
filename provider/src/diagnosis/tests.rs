use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use prost::Message;
use prost_reflect::{Kind as FieldKind, MessageDescriptor};
use sluice_proto::tfplugin6::attribute_path::step::Selector;
use tonic::{Code, Status, body::Body};

use super::*;
use crate::{
    client::{self, Settings, Stop},
    data_sources,
    plugin::value::{from_msgpack, to_msgpack},
};

fn message(name: &str) -> MessageDescriptor {
    sluice_proto::descriptor_pool()
        .get_message_by_name(&format!("sluice.admin.v1.{name}"))
        .unwrap_or_else(|| panic!("no message {name}"))
}

/// The attribute `name` of `attrs`.
fn find<'a>(attrs: &'a [Attr], name: &str) -> &'a Attr {
    attrs
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no attribute {name}"))
}

fn inner<'a>(attrs: &'a [Attr], name: &str) -> &'a [Attr] {
    &find(attrs, name).nested.as_ref().expect("nested").1
}

/// `attrs` are exactly the fields of `message`, same names, same order,
/// of the matching Terraform types.
fn mirrors(attrs: &[&Attr], message: &MessageDescriptor) {
    let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
    let fields: Vec<String> = message.fields().map(|f| f.name().to_string()).collect();
    assert_eq!(names, fields, "{}", message.full_name());
    for (attr, field) in attrs.iter().zip(message.fields()) {
        let scalar = match field.kind() {
            FieldKind::Bool => Type::Bool,
            FieldKind::String => Type::String,
            FieldKind::Message(_) => continue,
            _ => Type::Number,
        };
        let ty = if field.is_list() {
            Type::List(Box::new(scalar))
        } else {
            scalar
        };
        assert_eq!(attr.ty, ty, "{}.{}", message.full_name(), attr.name);
    }
}

#[test]
fn the_schema_mirrors_the_diagnose_messages() {
    let source = data_source();
    let attrs = &source.attrs;
    let inputs: Vec<&Attr> = attrs.iter().filter(|a| !a.is_output()).collect();
    mirrors(&inputs, &message("DiagnoseRequest"));
    // The response's fields in proto order, plus `healthy` and `verified`.
    let response = message("DiagnoseResponse");
    let mut outputs: Vec<&Attr> = attrs
        .iter()
        .filter(|a| a.is_output() && a.name != "healthy" && a.name != "verified")
        .collect();
    outputs.sort_by_key(|a| response.get_field_by_name(&a.name).map(|f| f.number()));
    mirrors(&outputs, &response);
    for (name, nested, nesting) in [
        ("path", "DiagnosedPath", Nesting::Single),
        ("checks", "HopCheck", Nesting::List),
        ("fix", "DiagnosisFix", Nesting::Single),
        ("probes", "DiagnosisProbe", Nesting::List),
    ] {
        let (n, fields) = find(attrs, name).nested.as_ref().unwrap();
        assert_eq!(*n, nesting, "{name}");
        mirrors(&fields.iter().collect::<Vec<_>>(), &message(nested));
    }
    let evidence = inner(inner(attrs, "checks"), "evidence");
    mirrors(
        &evidence.iter().collect::<Vec<_>>(),
        &message("DiagnosisEvidence"),
    );
    let steps = inner(inner(attrs, "probes"), "steps");
    mirrors(
        &steps.iter().collect::<Vec<_>>(),
        &message("DiagnosisProbeStep"),
    );
    assert_eq!(find(attrs, "healthy").ty, Type::Bool);
    assert_eq!(find(attrs, "verified").ty, Type::Bool);
}

#[test]
fn only_gateway_is_required_and_every_attribute_is_described() {
    let source = data_source();
    assert_eq!(source.type_name, TYPE_NAME);
    assert!(source.entity.is_none());
    fn check(attrs: &[Attr], top: bool) {
        for a in attrs {
            assert!(!a.description.trim().is_empty(), "{}", a.name);
            assert!(!a.sensitive && !a.write_only && !a.replaces, "{}", a.name);
            assert_eq!(
                [a.required, a.optional, a.computed]
                    .iter()
                    .filter(|b| **b)
                    .count(),
                1,
                "{}: exactly one of required, optional, computed",
                a.name
            );
            if !top {
                assert!(a.is_output(), "nested {} is computed", a.name);
            }
            if let Some((_, inner)) = &a.nested {
                check(inner, false);
            }
        }
    }
    check(&source.attrs, true);
    let required: Vec<&str> = source
        .attrs
        .iter()
        .filter(|a| a.required)
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(required, ["gateway"]);
    assert!(data_sources::all().contains_key(TYPE_NAME));
    // The description names the walk, every domain and the probe's cost.
    for part in [
        "client ▸ listener ▸ virtual cluster ▸ backend cluster ▸ auth ▸ policy",
        "`environment`, `missing_object`, `listener_mapping`, `routing`, `auth`, `policy`, or `none`",
        "probe = true",
        "no records",
        "one per gateway at a time and per second",
    ] {
        assert!(DESCRIPTION.contains(part), "{part}");
    }
    assert!(!DESCRIPTION.contains('\n'), "one line, for the frontmatter");
}

fn config(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

fn at(d: &Diagnostic) -> Vec<String> {
    d.attribute
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.selector {
            Some(Selector::AttributeName(n)) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_gateway_is_required_and_probe_timeout_ms_bounded() {
    let source = data_source();
    let gateway = ("gateway", text("prod"));
    let missing = data_sources::validate(&source, &config(&[("gateway", text(""))]));
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(at(&missing[0]), ["gateway"]);
    for bad in [-1.0, 1.5, 30_001.0] {
        let d = data_sources::validate(
            &source,
            &config(&[gateway.clone(), ("probe_timeout_ms", Value::Number(bad))]),
        );
        assert_eq!(d.len(), 1, "{bad}: {d:?}");
        assert_eq!(at(&d[0]), ["probe_timeout_ms"]);
    }
    for ok in [
        Value::Number(0.0),
        Value::Number(30_000.0),
        Value::Null,
        Value::Unknown,
    ] {
        let c = config(&[gateway.clone(), ("probe_timeout_ms", ok.clone())]);
        assert!(data_sources::validate(&source, &c).is_empty(), "{ok:?}");
    }
    assert!(data_sources::validate(&source, &config(&[("gateway", Value::Unknown)])).is_empty());
}

#[test]
fn the_request_carries_every_input() {
    let full = config(&[
        ("gateway", text("prod")),
        ("address", text("127.0.0.1:19092")),
        ("sni_host", text("broker-1.team-a.localhost")),
        ("virtual_cluster", text("team-a")),
        ("principal", text("alice")),
        ("symptom", text("SASL authentication failed")),
        ("topic", text("orders")),
        ("probe", Value::Bool(true)),
        ("probe_timeout_ms", Value::Number(2500.0)),
    ]);
    assert_eq!(
        request(&full),
        DiagnoseRequest {
            gateway: "prod".into(),
            address: "127.0.0.1:19092".into(),
            sni_host: "broker-1.team-a.localhost".into(),
            virtual_cluster: "team-a".into(),
            principal: "alice".into(),
            symptom: "SASL authentication failed".into(),
            topic: "orders".into(),
            probe: true,
            probe_timeout_ms: 2500,
        }
    );
    // Unset inputs are the proto's defaults: no probe, the server's wait.
    assert_eq!(
        request(&config(&[("gateway", text("gw-1"))])),
        DiagnoseRequest {
            gateway: "gw-1".into(),
            ..Default::default()
        }
    );
}

/// A diagnosis of a listener mapping failure, probed by one node.
fn failing() -> DiagnoseResponse {
    DiagnoseResponse {
        path: Some(DiagnosedPath {
            gateway_id: "gw-1".into(),
            gateway_name: "prod".into(),
            listener_id: "ls-1".into(),
            listener_name: "plain".into(),
            forward_mode: "port_mapping".into(),
            role: "bootstrap".into(),
            tls: true,
            ..Default::default()
        }),
        checks: vec![
            HopCheck {
                hop: "gateway".into(),
                status: "pass".into(),
                summary: "gateway prod exists".into(),
                evidence: Vec::new(),
            },
            HopCheck {
                hop: "listener".into(),
                status: "fail".into(),
                summary: "no forward policy maps port 19092".into(),
                evidence: vec![DiagnosisEvidence {
                    source: "node".into(),
                    fact: "node n-1 listens on 19092".into(),
                    entity_id: "ls-1".into(),
                    node_id: "n-1".into(),
                }],
            },
        ],
        domain: "listener_mapping".into(),
        domain_title: "listener or host name mapping".into(),
        summary: "port 19092 reaches no virtual cluster".into(),
        failed_hop: "listener".into(),
        ruled_out: vec!["the gateway exists".into()],
        fix: Some(DiagnosisFix {
            resource: "sluice_listener_policy_forward_to_virtual_cluster".into(),
            attribute: "port_mappings".into(),
            entity_id: String::new(),
            entity_name: String::new(),
            action: "map port 19092 to team-a".into(),
        }),
        probes: vec![DiagnosisProbe {
            node_id: "n-1".into(),
            status: "done".into(),
            revision: 42,
            steps: vec![DiagnosisProbeStep {
                target: "listener".into(),
                step: "tcp".into(),
                status: "pass".into(),
                message: "connected".into(),
                elapsed_ms: 3,
                entity_id: "ls-1".into(),
            }],
        }],
        symptom_note: "the auth error comes from the listener".into(),
        gateway_revision: 42,
    }
}

#[test]
fn a_failure_domain_is_data_with_every_field() {
    let source = data_source();
    let cfg = config(&[
        ("gateway", text("prod")),
        ("address", text("127.0.0.1:19092")),
    ]);
    let v = to_value(&cfg, &failing());
    // Inputs as configured (unset ones stay null: Terraform compares).
    assert_eq!(v.get("gateway"), &text("prod"));
    assert_eq!(v.get("address"), &text("127.0.0.1:19092"));
    assert_eq!(v.get("probe"), &Value::Null);
    assert_eq!(v.get("probe_timeout_ms"), &Value::Null);
    assert_eq!(v.get("healthy"), &Value::Bool(false));
    assert_eq!(v.get("domain"), &text("listener_mapping"));
    assert_eq!(v.get("failed_hop"), &text("listener"));
    assert_eq!(v.get("gateway_revision"), &Value::Number(42.0));
    assert_eq!(
        v.get("ruled_out"),
        &Value::List(vec![text("the gateway exists")])
    );
    assert_eq!(v.get("path").get("tls"), &Value::Bool(true));
    assert_eq!(v.get("path").get("role"), &text("bootstrap"));
    assert_eq!(v.get("path").get("backend_topic"), &text(""));
    assert_eq!(
        v.get("fix").get("action"),
        &text("map port 19092 to team-a")
    );
    let Value::List(checks) = v.get("checks") else {
        panic!("checks: {v:?}")
    };
    assert_eq!(checks.len(), 2);
    let Value::List(evidence) = checks[1].get("evidence") else {
        panic!("evidence")
    };
    assert_eq!(evidence[0].get("node_id"), &text("n-1"));
    let Value::List(probes) = v.get("probes") else {
        panic!("probes")
    };
    assert_eq!(probes[0].get("revision"), &Value::Number(42.0));
    let Value::List(steps) = probes[0].get("steps") else {
        panic!("steps")
    };
    assert_eq!(steps[0].get("elapsed_ms"), &Value::Number(3.0));
    // Every attribute of the type is set, and the value encodes as the
    // schema's type (what Terraform receives) and back.
    let Value::Map(top) = &v else { panic!() };
    let Type::Object(fields) = &source.ty else {
        panic!()
    };
    assert_eq!(
        top.keys().collect::<Vec<_>>(),
        fields.keys().collect::<Vec<_>>()
    );
    let bytes = to_msgpack(&v, &source.ty).unwrap();
    assert_eq!(from_msgpack(&bytes, &source.ty).unwrap(), v);
}

#[test]
fn none_is_healthy_with_fix_null() {
    let source = data_source();
    let cfg = config(&[("gateway", text("prod")), ("probe", Value::Bool(false))]);
    let response = DiagnoseResponse {
        domain: "none".into(),
        summary: "every hop passes".into(),
        ..Default::default()
    };
    let v = to_value(&cfg, &response);
    assert_eq!(v.get("healthy"), &Value::Bool(true));
    // No checks at all: nothing was verified.
    assert_eq!(v.get("verified"), &Value::Bool(false));
    assert_eq!(v.get("probe"), &Value::Bool(false));
    assert_eq!(v.get("fix"), &Value::Null);
    assert_eq!(v.get("checks"), &Value::List(Vec::new()));
    assert_eq!(v.get("probes"), &Value::List(Vec::new()));
    // An unset path is an object of empty strings, never null.
    assert_eq!(v.get("path").get("listener_name"), &text(""));
    assert_eq!(v.get("path").get("tls"), &Value::Bool(false));
    let bytes = to_msgpack(&v, &source.ty).unwrap();
    assert_eq!(from_msgpack(&bytes, &source.ty).unwrap(), v);
    // Only `none` is healthy.
    for domain in [
        "environment",
        "missing_object",
        "listener_mapping",
        "routing",
        "auth",
        "policy",
        "",
    ] {
        let r = DiagnoseResponse {
            domain: domain.into(),
            ..Default::default()
        };
        assert_eq!(to_value(&cfg, &r).get("healthy"), &Value::Bool(false));
    }
}

type Seen = Arc<Mutex<Vec<(String, DiagnoseRequest)>>>;

/// A refusal: the status code, its message and a field violation (field,
/// why) if any.
type Refusal = (Code, &'static str, Option<(&'static str, &'static str)>);

/// A stand-in admin API: answers every call on its service with `reply`
/// and records the path and request.
#[derive(Clone)]
struct FakeAdmin {
    reply: Result<DiagnoseResponse, Refusal>,
    seen: Seen,
}

impl tonic::server::NamedService for FakeAdmin {
    const NAME: &'static str = "sluice.admin.v1.AdminService";
}

impl tower::Service<http::Request<Body>> for FakeAdmin {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        use http_body_util::BodyExt;
        use tonic_types::{ErrorDetails, StatusExt};
        let this = self.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let decoded = DiagnoseRequest::decode(&body[5..]).unwrap();
            this.seen.lock().unwrap().push((path, decoded));
            let response = match this.reply {
                Ok(answer) => {
                    use http_body::Frame;
                    let bytes = answer.encode_to_vec();
                    let mut data = vec![0u8];
                    data.extend((bytes.len() as u32).to_be_bytes());
                    data.extend(bytes);
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let frames: Vec<Result<Frame<tonic::codegen::Bytes>, Status>> =
                        vec![Ok(Frame::data(data.into())), Ok(Frame::trailers(trailers))];
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(Body::new(http_body_util::StreamBody::new(
                            tokio_stream::iter(frames),
                        )))
                        .unwrap()
                }
                Err((code, message, None)) => Status::new(code, message).into_http(),
                Err((code, message, Some((field, why)))) => Status::with_error_details(
                    code,
                    message,
                    ErrorDetails::with_bad_request_violation(field, why),
                )
                .into_http(),
            };
            Ok(response)
        })
    }
}

/// An admin client of a stand-in server on loopback.
async fn admin(fake: FakeAdmin) -> Admin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(fake)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let settings = Settings {
        endpoint,
        token: "t".into(),
        ca_pem: None,
        request_timeout: Duration::from_secs(5),
    };
    client::connect(&settings, &Stop::default()).unwrap().admin
}

#[tokio::test]
async fn read_calls_diagnose_and_a_refusal_is_a_diagnostic_at_its_attribute() {
    let source = data_source();
    let cfg = config(&[
        ("gateway", text("prod")),
        ("address", text("127.0.0.1:19092")),
        ("probe", Value::Bool(true)),
    ]);
    let seen = Seen::default();
    let mut ok = admin(FakeAdmin {
        reply: Ok(failing()),
        seen: seen.clone(),
    })
    .await;
    let v = data_sources::read(&mut ok, &source, &cfg).await.unwrap();
    assert_eq!(v, to_value(&cfg, &failing()));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "/sluice.admin.v1.AdminService/Diagnose");
        assert_eq!(seen[0].1, request(&cfg));
    }

    let mut invalid = admin(FakeAdmin {
        reply: Err((
            Code::InvalidArgument,
            "diagnose request",
            Some(("address", "must be host:port (or [v6]:port)")),
        )),
        seen: Seen::default(),
    })
    .await;
    let d = data_sources::read(&mut invalid, &source, &cfg)
        .await
        .unwrap_err();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(at(&d[0]), ["address"]);
    assert!(d[0].detail.contains("host:port"), "{d:?}");

    // Another diagnosis's probe: the read waits its turns, then gives up.
    let waited = Seen::default();
    let mut busy = admin(FakeAdmin {
        reply: Err((
            Code::ResourceExhausted,
            "gateway gw-1 was probed less than 1s ago; try again",
            None,
        )),
        seen: waited.clone(),
    })
    .await;
    let d = data_sources::read(&mut busy, &source, &cfg)
        .await
        .unwrap_err();
    assert_eq!(waited.lock().unwrap().len(), 3, "one call and two turns");
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].summary.contains(TYPE_NAME), "{d:?}");
    assert!(d[0].detail.contains("probed less than 1s ago"), "{d:?}");
}

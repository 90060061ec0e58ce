//! Gateway ACLs through the namespace filter, on decoded messages: what
//! each principal may do, per resource, with Kafka's own errors; shadow
//! policies; conditions (`answers.rs`: what listings and the gateway's
//! own answers show).

mod answers;

use std::sync::Arc;

use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsResponse, CreateAclsRequest, DescribeAclsRequest,
        DescribeClusterRequest, FetchRequest, FetchResponse, GroupId, InitProducerIdRequest,
        ListGroupsResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
        RequestHeader, RequestKind, ResponseKind, TopicName,
        create_acls_request::AclCreation,
        fetch_response::{FetchableTopicResponse, PartitionData},
        list_groups_response::ListedGroup,
        metadata_response::MetadataResponseTopic,
        produce_request::{PartitionProduceData, TopicProduceData},
        produce_response::TopicProduceResponse,
    },
    protocol::StrBytes,
};
use prost_types::Timestamp;
use sluice_proto::admin::v1::{
    AclAction, AclOperation as O, AclResourceType as T, AclRule, ClusterPolicyAcls, Entity,
    PolicyEnforcement, entity::Spec,
};

use super::AclPolicies;
use crate::{
    auth::Principal,
    config::{Config, compiled::test_route},
    filter::{
        Chain, Context, Filter, Findings, InFlight, Notes, Verdict,
        namespace::{Names, Namespace},
    },
    hop::Kind,
    listener::routes::{Mapping, PortMap},
};

pub(super) fn rule(t: T, allow: bool, ops: &[O], names: &[&str]) -> AclRule {
    AclRule {
        resource_type: t as i32,
        action: if allow {
            AclAction::Allow
        } else {
            AclAction::Deny
        } as i32,
        operations: ops.iter().map(|o| *o as i32).collect(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
    }
}

pub(super) fn policy(
    id: &str,
    at: i64,
    condition: &str,
    shadow: bool,
    rules: Vec<AclRule>,
) -> Entity {
    Entity {
        id: id.into(),
        created_at: Some(Timestamp {
            seconds: at,
            nanos: 0,
        }),
        spec: Some(Spec::ClusterPolicyAcls(ClusterPolicyAcls {
            virtual_cluster_id: "vc".into(),
            enabled: Some(true),
            condition: condition.into(),
            enforcement: if shadow {
                PolicyEnforcement::Shadow
            } else {
                PolicyEnforcement::Enforce
            } as i32,
            rules,
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(super) fn filter(policies: Vec<Entity>) -> Namespace {
    let config = Config::with_entities(policies);
    let acls = AclPolicies::compile(&config, "vc", false).expect("compiles");
    Namespace::new(Names::compile(None, &[]), "acl-tests", Some(Arc::new(acls)))
}

/// One request as `user` through `ns`, then (unless answered) `response`
/// back; the verdict, the request as forwarded, the answer and what the
/// filter reported.
pub(super) fn exchange(
    ns: &Namespace,
    user: &str,
    request: RequestKind,
    response: Option<ResponseKind>,
) -> (Verdict, RequestKind, Option<ResponseKind>, Findings) {
    exchange_at(ns, user, 9, request, response)
}

/// [`exchange`] at API version `version`.
pub(super) fn exchange_at(
    ns: &Namespace,
    user: &str,
    version: i16,
    mut request: RequestKind,
    response: Option<ResponseKind>,
) -> (Verdict, RequestKind, Option<ResponseKind>, Findings) {
    let key = request_key(&request);
    let mapping = PortMap {
        advertised_host: "127.0.0.1".into(),
        brokers: Default::default(),
        min_broker_id: 0,
        max_broker_id: 0,
    };
    let route = test_route(Chain::new(Vec::new()), Mapping::Ports(mapping));
    let principal = Principal::user(user);
    let (mut notes, mut findings) = (Notes::default(), Findings::default());
    let mut header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version);
    let verdict = {
        let mut cx = Context {
            route: &route,
            principal: Some(&principal),
            notes: &mut notes,
            findings: &mut findings,
        };
        ns.on_request(&mut cx, &mut header, &mut request)
    };
    let answered = match (&verdict, response) {
        (Verdict::Forward, Some(mut r)) => {
            let mut cx = Context {
                route: &route,
                principal: None,
                notes: &mut notes,
                findings: &mut findings,
            };
            let in_flight = InFlight {
                api_key: key as i16,
                version,
                correlation_id: 1,
            };
            ns.on_response(&mut cx, &mut r, &in_flight);
            Some(r)
        }
        (Verdict::Respond(r), _) => Some(r.clone()),
        _ => None,
    };
    (verdict, request, answered, findings)
}

pub(super) fn request_key(r: &RequestKind) -> ApiKey {
    match r {
        RequestKind::Produce(_) => ApiKey::Produce,
        RequestKind::Metadata(_) => ApiKey::Metadata,
        RequestKind::InitProducerId(_) => ApiKey::InitProducerId,
        RequestKind::DescribeAcls(_) => ApiKey::DescribeAcls,
        RequestKind::CreateAcls(_) => ApiKey::CreateAcls,
        RequestKind::ListGroups(_) => ApiKey::ListGroups,
        RequestKind::ApiVersions(_) => ApiKey::ApiVersions,
        RequestKind::Fetch(_) => ApiKey::Fetch,
        RequestKind::DescribeCluster(_) => ApiKey::DescribeCluster,
        _ => panic!("not used here"),
    }
}

pub(super) fn name(n: &str) -> TopicName {
    TopicName(StrBytes::from_string(n.into()))
}

pub(super) fn produce(topics: &[&str]) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default().with_acks(-1).with_topic_data(
            topics
                .iter()
                .map(|t| {
                    TopicProduceData::default()
                        .with_name(name(t))
                        .with_partition_data(vec![PartitionProduceData::default().with_index(0)])
                })
                .collect(),
        ),
    )
}

pub(super) fn produce_answer(topics: &[&str]) -> ResponseKind {
    ResponseKind::Produce(
        ProduceResponse::default().with_responses(
            topics
                .iter()
                .map(|t| TopicProduceResponse::default().with_name(name(t)))
                .collect(),
        ),
    )
}

/// Topic → error code of a Produce answer.
pub(super) fn produce_codes(answer: &ResponseKind) -> Vec<(String, i16)> {
    let ResponseKind::Produce(r) = answer else {
        panic!("not a produce answer")
    };
    let mut out: Vec<_> = r
        .responses
        .iter()
        .map(|t| {
            let code = t.partition_responses.first().map_or(0, |p| p.error_code);
            (t.name.0.to_string(), code)
        })
        .collect();
    out.sort();
    out
}

pub(super) fn denials(findings: &Findings) -> Vec<(String, &'static str)> {
    findings
        .warnings
        .iter()
        .filter(|w| w.kind == Kind::AclDenied)
        .map(|w| (w.entity.clone(), w.detail))
        .collect()
}

#[test]
fn one_produce_writes_where_allowed_and_is_refused_per_topic_elsewhere() {
    let ns = filter(vec![policy(
        "acl-writers",
        1,
        "",
        false,
        vec![
            rule(T::Topic, true, &[O::Read], &["audit"]),
            rule(T::Topic, true, &[O::Write], &["orders*"]),
        ],
    )]);
    let (verdict, forwarded, answer, findings) = exchange(
        &ns,
        "alice",
        produce(&["orders", "audit"]),
        Some(produce_answer(&["orders"])),
    );
    assert!(matches!(verdict, Verdict::Forward));
    let RequestKind::Produce(forwarded) = forwarded else {
        panic!()
    };
    let sent: Vec<_> = forwarded
        .topic_data
        .iter()
        .map(|t| t.name.0.as_str())
        .collect();
    assert_eq!(
        sent,
        ["orders"],
        "only the writable topic reaches the broker"
    );
    assert_eq!(
        produce_codes(&answer.unwrap()),
        [("audit".into(), 29), ("orders".into(), 0)],
        "read allowed is not write: TOPIC_AUTHORIZATION_FAILED for audit only"
    );
    assert_eq!(denials(&findings), [("vc".to_string(), "enforce")]);
    let event = &findings.events[0];
    assert_eq!(event.event, "acl_denied");
    assert!(!event.shadow);
    assert!(event.message.contains("User:alice"), "{}", event.message);
    assert!(
        event.message.contains("write on topic \"audit\""),
        "{}",
        event.message
    );
}

#[test]
fn conditions_give_rules_to_principals_and_a_deny_names_its_policy() {
    let ns = filter(vec![
        policy(
            "acl-bob-denied",
            1,
            "principal == 'User:bob'",
            false,
            vec![rule(T::Topic, false, &[O::Write], &["orders"])],
        ),
        policy(
            "acl-everyone",
            2,
            "",
            false,
            vec![rule(T::Topic, true, &[O::Write], &["*"])],
        ),
    ]);
    let run = |user| {
        exchange(
            &ns,
            user,
            produce(&["orders"]),
            Some(produce_answer(&["orders"])),
        )
    };
    let (_, _, answer, findings) = run("alice");
    assert_eq!(produce_codes(&answer.unwrap()), [("orders".into(), 0)]);
    assert!(findings.warnings.is_empty());
    let (_, _, answer, findings) = run("bob");
    assert_eq!(produce_codes(&answer.unwrap()), [("orders".into(), 29)]);
    assert_eq!(
        denials(&findings),
        [("acl-bob-denied".to_string(), "enforce")]
    );
}

#[test]
fn shadow_policies_report_and_change_nothing() {
    // Every policy in shadow: still deny by default (a trial never opens
    // the cluster), and what the trial rules would deny is reported too.
    let ns = filter(vec![policy(
        "acl-trial",
        1,
        "",
        true,
        vec![rule(T::Topic, true, &[O::Write], &["orders"])],
    )]);
    let (_, _, answer, findings) = exchange(
        &ns,
        "alice",
        produce(&["orders"]),
        Some(produce_answer(&[])),
    );
    assert_eq!(produce_codes(&answer.unwrap()), [("orders".into(), 29)]);
    assert_eq!(denials(&findings), [("vc".to_string(), "enforce")]);

    // A shadow deny beside an enforced allow: allowed, reported.
    let ns = filter(vec![
        policy(
            "acl-new-deny",
            1,
            "",
            true,
            vec![rule(T::Topic, false, &[O::Write], &["orders"])],
        ),
        policy(
            "acl-live",
            2,
            "",
            false,
            vec![rule(T::Topic, true, &[O::Write], &["*"])],
        ),
    ]);
    let (_, _, answer, findings) = exchange(
        &ns,
        "alice",
        produce(&["orders"]),
        Some(produce_answer(&["orders"])),
    );
    assert_eq!(produce_codes(&answer.unwrap()), [("orders".into(), 0)]);
    assert_eq!(denials(&findings), [("acl-new-deny".to_string(), "shadow")]);
    assert!(findings.events[0].shadow);
}

#[test]
fn where_the_backend_decides_policies_are_only_reported() {
    let config = Config::with_entities(vec![policy(
        "acl-next",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Write], &["orders"])],
    )]);
    let acls = AclPolicies::compile(&config, "vc", true).expect("compiles");
    let ns = Namespace::new(Names::compile(None, &[]), "acl-tests", Some(Arc::new(acls)));
    let (_, forwarded, answer, findings) = exchange(
        &ns,
        "alice",
        produce(&["orders", "audit"]),
        Some(produce_answer(&["orders", "audit"])),
    );
    let RequestKind::Produce(forwarded) = forwarded else {
        panic!()
    };
    assert_eq!(forwarded.topic_data.len(), 2, "both go to the broker");
    assert_eq!(
        produce_codes(&answer.unwrap()),
        [("audit".into(), 0), ("orders".into(), 0)]
    );
    assert_eq!(denials(&findings), [("vc".to_string(), "shadow")]);
    // Nothing else changes: ACL admin requests go to the backend, and
    // ApiVersions is the broker's.
    let (verdict, ..) = exchange(
        &ns,
        "alice",
        RequestKind::CreateAcls(Default::default()),
        None,
    );
    assert!(matches!(verdict, Verdict::Forward));
    let broker = ApiVersionsResponse::default().with_api_keys(vec![
        kafka_protocol::messages::api_versions_response::ApiVersion::default()
            .with_api_key(ApiKey::DescribeLogDirs as i16),
    ]);
    let (_, _, answer, _) = exchange(
        &ns,
        "alice",
        RequestKind::ApiVersions(Default::default()),
        Some(ResponseKind::ApiVersions(broker.clone())),
    );
    assert_eq!(answer, Some(ResponseKind::ApiVersions(broker)));
}

#[test]
fn a_condition_that_cannot_be_evaluated_fails_closed() {
    let ns = filter(vec![
        policy(
            "acl-broken",
            1,
            "int(client_id) > 3",
            false,
            vec![
                rule(T::Topic, false, &[O::Write], &["audit"]),
                rule(T::Topic, true, &[O::Write], &["orders"]),
            ],
        ),
        policy(
            "acl-rest",
            2,
            "",
            false,
            vec![rule(T::Topic, true, &[O::Write], &["audit"])],
        ),
    ]);
    let (_, _, answer, findings) = exchange(
        &ns,
        "alice",
        produce(&["orders", "audit"]),
        Some(produce_answer(&[])),
    );
    assert_eq!(
        produce_codes(&answer.unwrap()),
        [("audit".into(), 29), ("orders".into(), 29)],
        "its deny applies, its allow does not"
    );
    assert!(
        findings
            .warnings
            .iter()
            .any(|w| w.kind == Kind::ConditionFailed && w.entity == "acl-broken")
    );
}

#[test]
fn a_child_policy_runs_only_where_its_parent_holds() {
    let mut child = policy(
        "acl-child",
        2,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Write], &["orders"])],
    );
    if let Some(Spec::ClusterPolicyAcls(p)) = &mut child.spec {
        p.parent_policy_id = "acl-parent".into();
    }
    let parent = policy(
        "acl-parent",
        1,
        "principal == 'User:alice'",
        false,
        vec![rule(T::Group, true, &[O::Read], &["g"])],
    );
    let ns = filter(vec![parent, child]);
    let run = |user| {
        exchange(
            &ns,
            user,
            produce(&["orders"]),
            Some(produce_answer(&["orders"])),
        )
    };
    assert_eq!(
        produce_codes(&run("alice").2.unwrap()),
        [("orders".into(), 0)]
    );
    assert_eq!(
        produce_codes(&run("bob").2.unwrap()),
        [("orders".into(), 29)]
    );
}

#[test]
fn an_idempotent_producer_starts_only_with_some_write() {
    let writer = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Write], &["orders"])],
    )]);
    let reader = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Read], &["orders"])],
    )]);
    let init = || {
        RequestKind::InitProducerId(InitProducerIdRequest::default().with_transactional_id(None))
    };
    assert!(matches!(
        exchange(&writer, "a", init(), None).0,
        Verdict::Forward
    ));
    let (verdict, ..) = exchange(&reader, "a", init(), None);
    let Verdict::Respond(ResponseKind::InitProducerId(r)) = verdict else {
        panic!("refused by the gateway")
    };
    assert_eq!(r.error_code, 31);
    // An empty transactional id is a name like any other, not a pass.
    let empty = RequestKind::InitProducerId(InitProducerIdRequest::default());
    let (verdict, ..) = exchange(&writer, "a", empty, None);
    let Verdict::Respond(ResponseKind::InitProducerId(r)) = verdict else {
        panic!("refused by the gateway")
    };
    assert_eq!(r.error_code, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED");
}

#[test]
fn policies_this_node_cannot_enforce_are_refused() {
    let mut bad = policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Read], &["*"])],
    );
    if let Some(Spec::ClusterPolicyAcls(p)) = &mut bad.spec {
        p.enforcement = 7;
    }
    let err = AclPolicies::compile(&Config::with_entities(vec![bad]), "vc", false).unwrap_err();
    assert!(err.contains("enforcement"), "{err}");
    let orphan = {
        let mut p = policy(
            "acl",
            1,
            "",
            false,
            vec![rule(T::Topic, true, &[O::Read], &["*"])],
        );
        if let Some(Spec::ClusterPolicyAcls(s)) = &mut p.spec {
            s.parent_policy_id = "gone".into();
        }
        p
    };
    let err = AclPolicies::compile(&Config::with_entities(vec![orphan]), "vc", false).unwrap_err();
    assert!(err.contains("parent_policy_id"), "{err}");
    let syntax = policy("acl", 1, "principal ==", false, vec![]);
    let err = AclPolicies::compile(&Config::with_entities(vec![syntax]), "vc", false).unwrap_err();
    assert!(err.contains("acl.condition: line 1"), "{err}");
}

#[test]
fn a_request_only_observed_goes_on_as_it_came_even_unreadable() {
    let config = Config::with_entities(vec![policy(
        "acl-next",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Read], &["*"])],
    )]);
    let compile = |report_only| {
        let acls = AclPolicies::compile(&config, "vc", report_only).expect("compiles");
        let ns = Namespace::new(Names::compile(None, &[]), "acl-tests", Some(Arc::new(acls)));
        Chain::new(vec![Arc::new(ns)])
    };
    let mapping = PortMap {
        advertised_host: "127.0.0.1".into(),
        brokers: Default::default(),
        min_broker_id: 0,
        max_broker_id: 0,
    };
    let route = test_route(Chain::new(Vec::new()), Mapping::Ports(mapping));
    let (mut notes, mut findings) = (Notes::default(), Findings::default());
    let mut cx = Context {
        route: &route,
        principal: None,
        notes: &mut notes,
        findings: &mut findings,
    };
    // A Produce frame cut short: unreadable.
    let garbage = bytes::Bytes::from_static(&[0, 0, 0, 9, 0, 0]);
    let reported = compile(true).on_request(&mut cx, 0, 9, garbage.clone());
    assert!(
        matches!(reported, Ok(crate::filter::RequestOutcome::Unchanged)),
        "{reported:?}"
    );
    assert!(
        cx.findings
            .warnings
            .iter()
            .any(|w| w.detail == "not_evaluated"),
        "what was not evaluated is said"
    );
    let decided = compile(false).on_request(&mut cx, 0, 9, garbage);
    assert!(decided.is_err(), "where the gateway decides, it is refused");
}

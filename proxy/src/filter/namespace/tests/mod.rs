//! The namespace filter on decoded messages: every API key the Kafka
//! library knows is renamed or refused, names go in prefixed and come
//! back stripped, and what is outside the namespace is invisible or
//! refused with the API's own error.

mod every_api;

use kafka_protocol::{
    messages::{
        ApiKey, ConsumerGroupHeartbeatRequest, FetchRequest, FetchResponse, GroupId,
        JoinGroupRequest, ListGroupsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
        ProduceResponse, RequestHeader, RequestKind, ResponseKind, TopicName,
        fetch_request::FetchTopic,
        fetch_response::FetchableTopicResponse,
        list_groups_response::ListedGroup,
        metadata_request::MetadataRequestTopic,
        metadata_response::MetadataResponseTopic,
        produce_request::{PartitionProduceData, TopicProduceData},
        produce_response::TopicProduceResponse,
    },
    protocol::StrBytes,
};
use sluice_proto::admin::v1::{
    ExactList, NameSelector, Namespace as NamespaceSpec, NamespaceAdditional, NamespaceMode,
    TopicAlias, name_selector::Selector,
};
use uuid::Uuid;

use super::*;
use crate::{
    config::compiled::test_route,
    filter::{Chain, Findings, Notes},
    hop::{Hop, Kind},
    listener::routes::{Mapping, PortMap},
};

pub(super) fn namespace(mode: NamespaceMode, backend: &str) -> Namespace {
    let names = Names::compile(
        Some(&NamespaceSpec {
            mode: mode as i32,
            prefix: "team-a.".into(),
            additional: Some(NamespaceAdditional {
                topics: Some(NameSelector {
                    selector: Some(Selector::ExactList(ExactList {
                        names: vec!["shared".into()],
                    })),
                }),
                consumer_groups: None,
            }),
        }),
        &[TopicAlias {
            alias: "orders-v2".into(),
            topic: "orders".into(),
        }],
    );
    Namespace::new(names, backend, None)
}

/// One request through `ns`, then (unless answered) `response` back
/// through it; the verdict and the response as the client gets it.
pub(super) fn exchange(
    ns: &Namespace,
    key: ApiKey,
    version: i16,
    mut request: RequestKind,
    response: Option<ResponseKind>,
) -> (Verdict, RequestKind, Option<ResponseKind>) {
    let route = route();
    let (mut notes, mut findings) = (Notes::default(), Findings::default());
    let mut cx = Context {
        route: &route,
        principal: None,
        notes: &mut notes,
        findings: &mut findings,
    };
    let mut header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version);
    let verdict = ns.on_request(&mut cx, &mut header, &mut request);
    let answered = match (&verdict, response) {
        (Verdict::Forward, Some(mut r)) => {
            let in_flight = InFlight {
                api_key: key as i16,
                version,
                correlation_id: 1,
            };
            assert!(matches!(
                ns.on_response(&mut cx, &mut r, &in_flight),
                Verdict::Forward
            ));
            Some(r)
        }
        _ => None,
    };
    (verdict, request, answered)
}

/// A route to a virtual cluster with an empty chain (the filter under
/// test is called directly).
pub(super) fn route() -> crate::listener::routes::Route {
    let mapping = PortMap {
        advertised_host: "127.0.0.1".into(),
        brokers: Default::default(),
        min_broker_id: 0,
        max_broker_id: 0,
    };
    test_route(Chain::new(Vec::new()), Mapping::Ports(mapping))
}

pub(super) fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.into()))
}

/// A default request of every API key the library knows: a new key in a
/// new version of the library does not compile here until it is listed,
/// and then it is checked like every other.
#[test]
fn produce_goes_in_prefixed_and_comes_back_as_asked() {
    let ns = namespace(NamespaceMode::HidePrefix, "produce");
    let records = bytes::Bytes::from_static(b"record-set");
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic("orders-v2"))
                .with_partition_data(vec![
                    PartitionProduceData::default().with_records(Some(records.clone())),
                ]),
            TopicProduceData::default().with_name(topic("shared")),
        ]);
    let response = ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default().with_name(topic("team-a.orders")),
        TopicProduceResponse::default().with_name(topic("shared")),
    ]);
    let (verdict, sent, answer) = exchange(
        &ns,
        ApiKey::Produce,
        9,
        RequestKind::Produce(request),
        Some(ResponseKind::Produce(response)),
    );
    assert!(matches!(verdict, Verdict::Forward));
    let RequestKind::Produce(sent) = sent else {
        panic!()
    };
    let names: Vec<&str> = sent.topic_data.iter().map(|t| t.name.0.as_str()).collect();
    assert_eq!(
        names,
        ["team-a.orders", "shared"],
        "the alias resolved, then prefixed"
    );
    let sent_records = sent.topic_data[0].partition_data[0]
        .records
        .as_ref()
        .unwrap();
    assert_eq!(
        sent_records.as_ptr(),
        records.as_ptr(),
        "records are not copied"
    );
    let Some(ResponseKind::Produce(answer)) = answer else {
        panic!()
    };
    let names: Vec<&str> = answer.responses.iter().map(|t| t.name.0.as_str()).collect();
    assert_eq!(
        names,
        ["orders-v2", "shared"],
        "answered under the names asked"
    );
}

#[test]
fn metadata_lists_only_the_namespace() {
    let ns = namespace(NamespaceMode::HidePrefix, "metadata");
    let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let listed = MetadataResponse::default().with_topics(vec![
        MetadataResponseTopic::default()
            .with_name(Some(topic("team-a.orders")))
            .with_topic_id(a),
        MetadataResponseTopic::default()
            .with_name(Some(topic("team-b.orders")))
            .with_topic_id(b),
        MetadataResponseTopic::default()
            .with_name(Some(topic("shared")))
            .with_topic_id(c),
        MetadataResponseTopic::default().with_name(Some(topic("__consumer_offsets"))),
    ]);
    let (_, _, answer) = exchange(
        &ns,
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default()),
        Some(ResponseKind::Metadata(listed)),
    );
    let Some(ResponseKind::Metadata(answer)) = answer else {
        panic!()
    };
    let names: Vec<&str> = answer
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.as_str())
        .collect();
    assert_eq!(names, ["orders", "shared"]);

    // Ids: the visible one is carried, another tenant's is unknown.
    let by_id = |id| {
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_topic_id(id),
        ])))
    };
    let (verdict, _, _) = exchange(&ns, ApiKey::Metadata, 12, by_id(a), None);
    assert!(matches!(verdict, Verdict::Forward));
    // Another tenant's: not asked of the broker (which still answers,
    // with its brokers), and answered as unknown.
    let (verdict, sent, answer) = exchange(
        &ns,
        ApiKey::Metadata,
        12,
        by_id(b),
        Some(ResponseKind::Metadata(MetadataResponse::default())),
    );
    assert!(matches!(verdict, Verdict::Forward));
    let RequestKind::Metadata(sent) = sent else {
        panic!()
    };
    assert_eq!(sent.topics.map(|t| t.len()), Some(0));
    let Some(ResponseKind::Metadata(refused)) = answer else {
        panic!()
    };
    assert_eq!(refused.topics[0].error_code, UNKNOWN_TOPIC_ID);
    assert_eq!(refused.topics[0].topic_id, b);
}

#[test]
fn no_request_can_plant_a_topic_id() {
    use kafka_protocol::messages::{DeleteTopicsRequest, delete_topics_request::DeleteTopicState};
    let ns = namespace(NamespaceMode::HidePrefix, "plant");
    let foreign = Uuid::from_u128(99);
    ns.ids().learn(foreign, "team-b.secret");
    // A name with someone else's id: refused before the broker sees it.
    let both = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default()
            .with_name(Some(topic("mine")))
            .with_topic_id(foreign),
    ]);
    let (verdict, _, _) = exchange(
        &ns,
        ApiKey::DeleteTopics,
        6,
        RequestKind::DeleteTopics(both),
        None,
    );
    let Verdict::Respond(ResponseKind::DeleteTopics(r)) = verdict else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, UNKNOWN_TOPIC_ID);
    // An answer other than a listing (here a produce answer echoing a
    // name with an id) teaches nothing.
    let planted = Uuid::from_u128(100);
    let echo = ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default()
            .with_name(topic("team-a.orders"))
            .with_topic_id(planted),
    ]);
    exchange(
        &ns,
        ApiKey::Produce,
        9,
        RequestKind::Produce(
            ProduceRequest::default()
                .with_topic_data(vec![TopicProduceData::default().with_name(topic("orders"))]),
        ),
        Some(ResponseKind::Produce(echo)),
    );
    assert_eq!(ns.ids().name(planted), None);
}

#[test]
fn a_shared_topic_can_be_used_not_changed() {
    use kafka_protocol::messages::{
        DeleteTopicsRequest, DeleteTopicsResponse, delete_topics_request::DeleteTopicState,
    };
    let ns = namespace(NamespaceMode::HidePrefix, "shared");
    let delete = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(topic("shared"))),
        DeleteTopicState::default().with_name(Some(topic("orders"))),
    ]);
    let (_, sent, answer) = exchange(
        &ns,
        ApiKey::DeleteTopics,
        6,
        RequestKind::DeleteTopics(delete),
        Some(ResponseKind::DeleteTopics(DeleteTopicsResponse::default())),
    );
    let RequestKind::DeleteTopics(sent) = sent else {
        panic!()
    };
    let names: Vec<&str> = sent
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.as_str())
        .collect();
    assert_eq!(
        names,
        ["team-a.orders"],
        "only the tenant's own topic is deleted"
    );
    let Some(ResponseKind::DeleteTopics(answer)) = answer else {
        panic!()
    };
    assert_eq!(answer.responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);
}

#[test]
fn fetch_by_id_of_another_tenant_is_unknown_and_the_rest_goes_on() {
    let ns = namespace(NamespaceMode::HidePrefix, "fetch");
    let (mine, theirs) = (Uuid::from_u128(10), Uuid::from_u128(11));
    ns.ids().learn(mine, "team-a.orders");
    ns.ids().learn(theirs, "team-b.orders");
    let request = FetchRequest::default().with_topics(vec![
        FetchTopic::default().with_topic_id(mine),
        FetchTopic::default()
            .with_topic_id(theirs)
            .with_partitions(vec![Default::default()]),
    ]);
    let response = FetchResponse::default()
        .with_responses(vec![FetchableTopicResponse::default().with_topic_id(mine)]);
    let (verdict, sent, answer) = exchange(
        &ns,
        ApiKey::Fetch,
        13,
        RequestKind::Fetch(request),
        Some(ResponseKind::Fetch(response)),
    );
    assert!(matches!(verdict, Verdict::Forward));
    let RequestKind::Fetch(sent) = sent else {
        panic!()
    };
    assert_eq!(
        sent.topics.len(),
        1,
        "another tenant's id never reaches the broker"
    );
    let Some(ResponseKind::Fetch(answer)) = answer else {
        panic!()
    };
    assert_eq!(answer.responses.len(), 2);
    assert_eq!(answer.responses[1].topic_id, theirs);
    assert_eq!(
        answer.responses[1].partitions[0].error_code,
        UNKNOWN_TOPIC_ID
    );
}

#[test]
fn enforce_prefix_refuses_outside_names_per_topic() {
    let ns = namespace(NamespaceMode::EnforcePrefix, "enforce");
    let request = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        TopicProduceData::default().with_name(topic("team-a.orders")),
        TopicProduceData::default()
            .with_name(topic("team-b.orders"))
            .with_partition_data(vec![PartitionProduceData::default().with_index(3)]),
    ]);
    let response = ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default().with_name(topic("team-a.orders")),
    ]);
    let (_, sent, answer) = exchange(
        &ns,
        ApiKey::Produce,
        9,
        RequestKind::Produce(request),
        Some(ResponseKind::Produce(response)),
    );
    let RequestKind::Produce(sent) = sent else {
        panic!()
    };
    assert_eq!(sent.topic_data.len(), 1);
    let Some(ResponseKind::Produce(answer)) = answer else {
        panic!()
    };
    let refused = &answer.responses[1];
    assert_eq!(refused.name.0.as_str(), "team-b.orders");
    assert_eq!(refused.partition_responses[0].index, 3);
    assert_eq!(
        refused.partition_responses[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );

    // Everything refused: answered without the broker.
    let only_theirs = ProduceRequest::default()
        .with_topic_data(vec![TopicProduceData::default().with_name(topic("orders"))]);
    let (verdict, _, _) = exchange(
        &ns,
        ApiKey::Produce,
        9,
        RequestKind::Produce(only_theirs),
        None,
    );
    assert!(matches!(
        verdict,
        Verdict::Respond(ResponseKind::Produce(_))
    ));

    let join = JoinGroupRequest::default().with_group_id(GroupId(StrBytes::from_static_str("app")));
    let (verdict, _, _) = exchange(
        &ns,
        ApiKey::JoinGroup,
        9,
        RequestKind::JoinGroup(join),
        None,
    );
    let Verdict::Respond(ResponseKind::JoinGroup(r)) = verdict else {
        panic!()
    };
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);
}

#[test]
fn groups_are_prefixed_and_listed_within_the_namespace() {
    let ns = namespace(NamespaceMode::HidePrefix, "groups");
    let join = JoinGroupRequest::default().with_group_id(GroupId(StrBytes::from_static_str("app")));
    let (_, sent, _) = exchange(
        &ns,
        ApiKey::JoinGroup,
        9,
        RequestKind::JoinGroup(join),
        None,
    );
    let RequestKind::JoinGroup(sent) = sent else {
        panic!()
    };
    assert_eq!(sent.group_id.0.as_str(), "team-a.app");
    let listed = ListGroupsResponse::default().with_groups(
        ["team-a.app", "team-b.app", "app"]
            .iter()
            .map(|g| ListedGroup::default().with_group_id(GroupId(StrBytes::from_static_str(g))))
            .collect(),
    );
    let (_, _, answer) = exchange(
        &ns,
        ApiKey::ListGroups,
        5,
        RequestKind::ListGroups(Default::default()),
        Some(ResponseKind::ListGroups(listed)),
    );
    let Some(ResponseKind::ListGroups(answer)) = answer else {
        panic!()
    };
    let groups: Vec<&str> = answer
        .groups
        .iter()
        .map(|g| g.group_id.0.as_str())
        .collect();
    assert_eq!(groups, ["app"]);
}

#[test]
fn a_regex_subscription_is_refused() {
    let ns = namespace(NamespaceMode::HidePrefix, "regex");
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("app")))
        .with_subscribed_topic_regex(Some(StrBytes::from_static_str(".*")));
    let (verdict, _, _) = exchange(
        &ns,
        ApiKey::ConsumerGroupHeartbeat,
        1,
        RequestKind::ConsumerGroupHeartbeat(heartbeat),
        None,
    );
    let Verdict::Respond(ResponseKind::ConsumerGroupHeartbeat(r)) = verdict else {
        panic!()
    };
    assert_eq!(r.error_code, INVALID_REQUEST);
}

#[test]
fn a_sync_group_without_a_protocol_type_must_be_the_consumer_protocols() {
    use kafka_protocol::messages::{
        SyncGroupRequest, sync_group_request::SyncGroupRequestAssignment,
    };
    let ns = namespace(NamespaceMode::HidePrefix, "sync");
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("app")))
        .with_assignments(vec![SyncGroupRequestAssignment::default().with_assignment(
            bytes::Bytes::from_static(b"\x00\x04not-a-v4-assignment"),
        )]);
    let (verdict, _, _) = exchange(
        &ns,
        ApiKey::SyncGroup,
        4,
        RequestKind::SyncGroup(sync),
        None,
    );
    let Verdict::Respond(ResponseKind::SyncGroup(r)) = verdict else {
        panic!("an undecodable assignment went to the broker")
    };
    assert_eq!(r.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
}

/// A Metadata v1 request frame through a chain holding only a namespace.
fn metadata_v1_through_chain(
    frame: bytes::Bytes,
) -> Result<crate::filter::RequestOutcome, crate::hop::HopError> {
    let chain = Chain::new(vec![std::sync::Arc::new(namespace(
        NamespaceMode::HidePrefix,
        "chain",
    ))]);
    let route = route();
    let (mut notes, mut findings) = (Notes::default(), Findings::default());
    let mut cx = Context {
        route: &route,
        principal: None,
        notes: &mut notes,
        findings: &mut findings,
    };
    chain.on_request(&mut cx, ApiKey::Metadata as i16, 1, frame)
}

#[test]
fn refusals_are_reported_at_the_policy_hop_with_their_names() {
    let ns = namespace(NamespaceMode::EnforcePrefix, "reported");
    let route = route();
    let (mut notes, mut findings) = (Notes::default(), Findings::default());
    let mut cx = Context {
        route: &route,
        principal: None,
        notes: &mut notes,
        findings: &mut findings,
    };
    let mut header = RequestHeader::default().with_request_api_key(ApiKey::Produce as i16);
    let mut request = RequestKind::Produce(ProduceRequest::default().with_topic_data(vec![
        TopicProduceData::default().with_name(topic("team-a.orders")),
        TopicProduceData::default().with_name(topic("team-b.orders")),
    ]));
    ns.on_request(&mut cx, &mut header, &mut request);
    let [warning] = findings.warnings.as_slice() else {
        panic!("{:?}", findings.warnings)
    };
    assert_eq!(
        (warning.hop, warning.kind),
        (Hop::Policy, Kind::OutsideNamespace)
    );
    assert_eq!(warning.entity, "vc");
    assert!(
        warning
            .message
            .starts_with("Produce: refused topic \"team-b.orders\""),
        "{}",
        warning.message
    );
    // Nothing refused, nothing reported.
    let mut findings = Findings::default();
    let mut cx = Context {
        route: &route,
        principal: None,
        notes: &mut notes,
        findings: &mut findings,
    };
    let mut mine = RequestKind::Produce(ProduceRequest::default().with_topic_data(vec![
        TopicProduceData::default().with_name(topic("team-a.x")),
    ]));
    ns.on_request(&mut cx, &mut header, &mut mine);
    assert!(findings.warnings.is_empty());
}

#[test]
fn a_topic_and_its_alias_in_one_request_refuse_the_second() {
    let ns = namespace(NamespaceMode::HidePrefix, "alias-twice");
    let request = ProduceRequest::default().with_topic_data(vec![
        TopicProduceData::default().with_name(topic("orders")),
        TopicProduceData::default()
            .with_name(topic("orders-v2"))
            .with_partition_data(vec![PartitionProduceData::default().with_index(1)]),
    ]);
    let response = ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default().with_name(topic("team-a.orders")),
    ]);
    let (_, sent, answer) = exchange(
        &ns,
        ApiKey::Produce,
        9,
        RequestKind::Produce(request),
        Some(ResponseKind::Produce(response)),
    );
    let RequestKind::Produce(sent) = sent else {
        panic!()
    };
    assert_eq!(sent.topic_data.len(), 1, "one entry per backend topic");
    let Some(ResponseKind::Produce(answer)) = answer else {
        panic!()
    };
    let names: Vec<(&str, i16)> = answer
        .responses
        .iter()
        .map(|t| {
            (
                t.name.0.as_str(),
                t.partition_responses.first().map_or(0, |p| p.error_code),
            )
        })
        .collect();
    assert_eq!(names, [("orders", 0), ("orders-v2", INVALID_REQUEST)]);
}

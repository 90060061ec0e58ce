//! What listings and the gateway's own answers show under gateway ACLs:
//! Metadata, ListGroups, fetch sessions, DescribeCluster, the ACL admin
//! APIs.

use super::*;

#[test]
fn metadata_omits_what_the_principal_may_not_describe() {
    let ns = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Read], &["orders"])],
    )]);
    let answer = ResponseKind::Metadata(
        MetadataResponse::default().with_topics(
            ["orders", "payroll"]
                .iter()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(Some(name(t)))
                        .with_topic_authorized_operations(i32::MAX) // the broker's view
                })
                .collect(),
        ),
    );
    let all = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    let (_, _, answer, findings) = exchange(&ns, "alice", all, Some(answer));
    let Some(ResponseKind::Metadata(m)) = answer else {
        panic!()
    };
    let shown: Vec<_> = m
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.as_str())
        .collect();
    assert_eq!(
        shown,
        ["orders"],
        "read implies describe; payroll is left out"
    );
    assert_eq!(
        m.topics[0].topic_authorized_operations,
        (1 << 3) | (1 << 8),
        "read and describe, as the gateway decides"
    );
    assert!(findings.warnings.is_empty(), "omitting is not a denial");
}

#[test]
fn metadata_before_v4_never_lets_the_broker_create_what_may_not_be_created() {
    // Before v4 a broker may create any topic a Metadata request names.
    let ns = filter(vec![
        policy(
            "acl-alice",
            1,
            "principal == 'User:alice'",
            false,
            vec![rule(T::Topic, true, &[O::Read], &["orders", "missing"])],
        ),
        policy(
            "acl-bob",
            2,
            "principal == 'User:bob'",
            false,
            vec![rule(T::Topic, true, &[O::Read, O::Create], &["orders"])],
        ),
    ]);
    let ask =
        || {
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(
            ["orders", "missing"]
                .iter()
                .map(|t| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(name(t)))
                })
                .collect(),
        )))
        };
    let broker = || {
        ResponseKind::Metadata(
            MetadataResponse::default().with_topics(
                ["orders", "payroll"]
                    .iter()
                    .map(|t| MetadataResponseTopic::default().with_name(Some(name(t))))
                    .collect(),
            ),
        )
    };
    // alice may read but not create: the broker is asked for every topic,
    // and she is answered the ones she named ("missing" as unknown).
    let (_, forwarded, answer, _) = exchange_at(&ns, "alice", 1, ask(), Some(broker()));
    let RequestKind::Metadata(m) = forwarded else {
        panic!()
    };
    assert_eq!(m.topics, None, "no topic named to the broker");
    let Some(ResponseKind::Metadata(a)) = answer else {
        panic!()
    };
    let mut got: Vec<_> = a
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.error_code))
        .collect();
    got.sort();
    assert_eq!(got, [("missing".into(), 3), ("orders".into(), 0)]);
    // bob may create orders and may not see "missing" (refused, so it
    // is not asked for): orders is named.
    let (_, forwarded, ..) = exchange_at(&ns, "bob", 1, ask(), None);
    let RequestKind::Metadata(m) = forwarded else {
        panic!()
    };
    assert_eq!(m.topics.map(|t| t.len()), Some(1));
    // From v4 the flag is cleared instead.
    let (_, forwarded, ..) = exchange_at(&ns, "alice", 9, ask(), None);
    let RequestKind::Metadata(m) = forwarded else {
        panic!()
    };
    assert!(!m.allow_auto_topic_creation);
    assert_eq!(m.topics.unwrap().len(), 2);
}

#[test]
fn a_fetch_session_never_serves_a_topic_the_principal_may_not_read() {
    let ns = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Read], &["orders"])],
    )]);
    // An incremental fetch names nothing; the broker's session still
    // holds "payroll" (read when the rules allowed it).
    let answer = ResponseKind::Fetch(
        FetchResponse::default().with_responses(
            ["orders", "payroll"]
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(name(t))
                        .with_partitions(vec![
                            PartitionData::default()
                                .with_records(Some(bytes::Bytes::from_static(b"records"))),
                        ])
                })
                .collect(),
        ),
    );
    let (_, _, answer, _) = exchange(
        &ns,
        "alice",
        RequestKind::Fetch(FetchRequest::default()),
        Some(answer),
    );
    let Some(ResponseKind::Fetch(r)) = answer else {
        panic!()
    };
    let got: Vec<_> = r
        .responses
        .iter()
        .map(|t| {
            let p = &t.partitions[0];
            (t.topic.0.as_str(), p.error_code, p.records.is_some())
        })
        .collect();
    assert_eq!(got, [("orders", 0, true), ("payroll", 29, false)]);
}

#[test]
fn describe_cluster_is_anyones_without_the_brokers_view_of_rights() {
    let ns = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Read], &["orders"])],
    )]);
    let asked = RequestKind::DescribeCluster(
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    let (verdict, forwarded, ..) = exchange(&ns, "alice", asked, None);
    assert!(matches!(verdict, Verdict::Forward));
    let RequestKind::DescribeCluster(r) = forwarded else {
        panic!()
    };
    assert!(!r.include_cluster_authorized_operations);
}

#[test]
fn acl_admin_requests_are_answered_by_the_gateway() {
    let ns = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![
            rule(T::Cluster, true, &[O::Describe], &["kafka-cluster"]),
            rule(T::Topic, true, &[O::Read, O::Write], &["orders*"]),
        ],
    )]);
    let describe = RequestKind::DescribeAcls(
        DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_operation(1)
            .with_permission_type(1)
            .with_pattern_type_filter(1)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None),
    );
    let (verdict, ..) = exchange(&ns, "alice", describe, None);
    let Verdict::Respond(ResponseKind::DescribeAcls(r)) = verdict else {
        panic!("answered by the gateway")
    };
    assert_eq!(r.error_code, 0);
    let orders = r
        .resources
        .iter()
        .find(|r| r.resource_type == 2)
        .expect("the topic rule");
    assert_eq!(orders.resource_name.as_str(), "orders");
    assert_eq!(orders.pattern_type, 4, "PREFIXED");
    assert_eq!(orders.acls.len(), 2);
    assert_eq!(orders.acls[0].principal.as_str(), "User:alice");

    let create = RequestKind::CreateAcls(
        CreateAclsRequest::default().with_creations(vec![AclCreation::default()]),
    );
    let (verdict, ..) = exchange(&ns, "alice", create, None);
    let Verdict::Respond(ResponseKind::CreateAcls(r)) = verdict else {
        panic!("answered by the gateway")
    };
    assert_eq!(r.results[0].error_code, 54);
    let message = r.results[0].error_message.as_ref().unwrap();
    assert!(message.contains("sluice_cluster_policy_acls"), "{message}");

    // Without describe on the cluster, DescribeAcls is refused.
    let ns = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::All], &["*"])],
    )]);
    let (verdict, ..) = exchange(
        &ns,
        "alice",
        RequestKind::DescribeAcls(DescribeAclsRequest::default()),
        None,
    );
    let Verdict::Respond(ResponseKind::DescribeAcls(r)) = verdict else {
        panic!()
    };
    assert_eq!(r.error_code, 31);

    // And ApiVersions advertises the three ACL APIs.
    let (_, _, answer, _) = exchange(
        &ns,
        "alice",
        RequestKind::ApiVersions(Default::default()),
        Some(ResponseKind::ApiVersions(ApiVersionsResponse::default())),
    );
    let Some(ResponseKind::ApiVersions(r)) = answer else {
        panic!()
    };
    let keys: Vec<i16> = r.api_keys.iter().map(|k| k.api_key).collect();
    assert_eq!(keys, [29, 30, 31]);
}

#[test]
fn list_groups_shows_the_groups_the_principal_may_describe() {
    let ns = filter(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Group, true, &[O::Read], &["team-*"])],
    )]);
    let answer = ResponseKind::ListGroups(
        ListGroupsResponse::default().with_groups(
            ["team-a", "payroll"]
                .iter()
                .map(|g| {
                    ListedGroup::default().with_group_id(GroupId(StrBytes::from_static_str(g)))
                })
                .collect(),
        ),
    );
    let (_, _, answer, _) = exchange(
        &ns,
        "alice",
        RequestKind::ListGroups(Default::default()),
        Some(answer),
    );
    let Some(ResponseKind::ListGroups(r)) = answer else {
        panic!()
    };
    let shown: Vec<_> = r.groups.iter().map(|g| g.group_id.0.as_str()).collect();
    assert_eq!(shown, ["team-a"]);
}

#[test]
fn a_listing_decides_on_the_topic_not_on_an_alias_of_that_name() {
    // "orders" is an alias of "orders-v2"; the broker still has a topic
    // called "orders" too. Describe on orders-v2 shows orders-v2 only.
    let config = Config::with_entities(vec![policy(
        "acl",
        1,
        "",
        false,
        vec![rule(T::Topic, true, &[O::Read], &["orders-v2"])],
    )]);
    let acls = AclPolicies::compile(&config, "vc", false).expect("compiles");
    let names = Names::compile(
        None,
        &[sluice_proto::admin::v1::TopicAlias {
            alias: "orders".into(),
            topic: "orders-v2".into(),
        }],
    );
    let ns = Namespace::new(names, "acl-alias-tests", Some(Arc::new(acls)));
    let answer = ResponseKind::Metadata(
        MetadataResponse::default().with_topics(
            ["orders", "orders-v2"]
                .iter()
                .map(|t| MetadataResponseTopic::default().with_name(Some(name(t))))
                .collect(),
        ),
    );
    let all = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    let (_, _, answer, _) = exchange(&ns, "alice", all, Some(answer));
    let Some(ResponseKind::Metadata(m)) = answer else {
        panic!()
    };
    let shown: Vec<_> = m
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.as_str())
        .collect();
    assert_eq!(
        shown,
        ["orders-v2"],
        "the broker's own orders is not orders-v2"
    );
}

//! Consumer groups and their offsets: FindCoordinator, the classic group
//! protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), KIP-848's
//! ConsumerGroupHeartbeat and ConsumerGroupDescribe, OffsetCommit,
//! OffsetFetch, OffsetDelete, DescribeGroups, ListGroups, DeleteGroups.
//! A classic group's member metadata and assignments are opaque bytes the
//! group's own members write and read, all through this virtual cluster,
//! so they hold client names and are left as they are.

use kafka_protocol::{
    messages::{
        ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatResponse, DeleteGroupsRequest, DeleteGroupsResponse,
        DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
        FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
        JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsResponse,
        OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
        OffsetFetchRequest, OffsetFetchResponse, ResponseKind, SyncGroupRequest, SyncGroupResponse,
        TopicName,
        delete_groups_response::DeletableGroupResult,
        describe_groups_response::DescribedGroup,
        find_coordinator_response::Coordinator,
        offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
        offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
        offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
            OffsetFetchResponseTopic, OffsetFetchResponseTopics,
        },
    },
    protocol::StrBytes,
};

use super::{
    Asked, DeniedTopic, GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST, Namespace, Resource,
    TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, consumer_protocol,
    data::answer_if_empty, indexes,
};
use crate::filter::Verdict;

/// `INCONSISTENT_GROUP_PROTOCOL`: consumer-protocol bytes that are not.
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;

/// FindCoordinator's key types.
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// What a coordinator key of `key_type` is, and the error a refused one gets.
fn key_kind(key_type: i8) -> Option<(Resource, i16)> {
    match key_type {
        GROUP_KEY => Some((Resource::Group, GROUP_AUTHORIZATION_FAILED)),
        TRANSACTION_KEY => Some((
            Resource::TransactionalId,
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        )),
        _ => None,
    }
}

/// FindCoordinator: one key before v4, a batch from v4. Share-group and
/// other key types are refused (their keys are not renamed).
pub(super) fn find_coordinator(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut FindCoordinatorRequest,
    version: i16,
) -> Verdict {
    let Some((resource, code)) = key_kind(r.key_type) else {
        return Verdict::Respond(ResponseKind::FindCoordinator(
            FindCoordinatorResponse::default()
                .with_error_code(INVALID_REQUEST)
                .with_node_id((-1).into())
                .with_port(-1),
        ));
    };
    // Before v4 the one key is renamed even when empty (JoinGroup renames
    // an empty group id too, and both must reach the same coordinator).
    if version < 4 && !ns.rename_in(asked, resource, &mut r.key) {
        return Verdict::Respond(ResponseKind::FindCoordinator(
            FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_node_id((-1).into())
                .with_port(-1),
        ));
    }
    r.coordinator_keys
        .retain_mut(|k| ns.rename_in(asked, resource, k));
    let all_refused = r.coordinator_keys.is_empty()
        && !(asked.denied_groups.is_empty() && asked.denied_transactions.is_empty());
    if all_refused {
        let mut answer = FindCoordinatorResponse::default();
        find_coordinator_out(ns, asked, &mut answer, 4);
        return Verdict::Respond(ResponseKind::FindCoordinator(answer));
    }
    Verdict::Forward
}

/// FindCoordinator's answer (from v4: the batch's keys renamed back).
pub(super) fn find_coordinator_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut FindCoordinatorResponse,
    version: i16,
) {
    if version < 4 {
        return;
    }
    // Which kind the keys are is the request's; a key either kind would
    // hide is dropped.
    r.coordinators.retain_mut(|c| {
        ns.rename_out(Resource::Group, &mut c.key)
            || ns.rename_out(Resource::TransactionalId, &mut c.key)
    });
    let refused = asked
        .denied_groups
        .iter()
        .map(|k| (k, GROUP_AUTHORIZATION_FAILED))
        .chain(
            asked
                .denied_transactions
                .iter()
                .map(|k| (k, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)),
        );
    for (key, code) in refused {
        r.coordinators.push(
            Coordinator::default()
                .with_key(key.clone())
                .with_node_id((-1).into())
                .with_port(-1)
                .with_error_code(code),
        );
    }
}

/// JoinGroup: the group, and for the consumer protocol the topic names
/// in each member's subscription.
pub(super) fn join_group(ns: &Namespace, asked: &mut Asked, r: &mut JoinGroupRequest) -> Verdict {
    let refused = |code: i16| {
        Verdict::Respond(ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1),
        ))
    };
    if !ns.group_in(asked, &mut r.group_id) {
        return refused(GROUP_AUTHORIZATION_FAILED);
    }
    if consumer_protocol::is_consumer(&r.protocol_type) {
        asked.consumer_protocol = Some(true);
        for protocol in &mut r.protocols {
            match consumer_protocol::subscription_in(ns, &protocol.metadata) {
                Some(renamed) => protocol.metadata = renamed,
                None => return refused(INCONSISTENT_GROUP_PROTOCOL),
            }
        }
    }
    Verdict::Forward
}

/// JoinGroup's answer: the leader's view of every member's subscription.
pub(super) fn join_group_out(ns: &Namespace, asked: &Asked, r: &mut JoinGroupResponse) {
    if asked.consumer_protocol == Some(true) {
        for member in &mut r.members {
            member.metadata = consumer_protocol::subscription_out(ns, &member.metadata);
        }
    }
}

/// SyncGroup: the group, and for the consumer protocol the topic names
/// in the leader's assignments (before v5 the protocol type is not sent:
/// the assignments must then be the consumer protocol's).
pub(super) fn sync_group(ns: &Namespace, asked: &mut Asked, r: &mut SyncGroupRequest) -> Verdict {
    let refused = |code: i16| {
        Verdict::Respond(ResponseKind::SyncGroup(
            SyncGroupResponse::default().with_error_code(code),
        ))
    };
    if !ns.group_in(asked, &mut r.group_id) {
        return refused(GROUP_AUTHORIZATION_FAILED);
    }
    let consumer = match &r.protocol_type {
        Some(t) => consumer_protocol::is_consumer(t),
        // Fail closed: without a protocol type (before v5, or left null)
        // every assignment must read as the consumer protocol's, so none
        // reaches the broker unrenamed. Other protocols (Connect, say)
        // name their type: SyncGroup v5, Kafka clients 2.5 and later.
        None => r.assignments.iter().any(|a| !a.assignment.is_empty()),
    };
    asked.consumer_protocol = r.protocol_type.as_ref().map(|_| consumer);
    if consumer {
        for a in &mut r.assignments {
            match consumer_protocol::assignment_in(ns, &a.assignment) {
                Some(renamed) => a.assignment = renamed,
                None => return refused(INCONSISTENT_GROUP_PROTOCOL),
            }
        }
    }
    Verdict::Forward
}

/// SyncGroup's answer: the member's own assignment.
pub(super) fn sync_group_out(ns: &Namespace, asked: &Asked, r: &mut SyncGroupResponse) {
    // Before v5 a follower's request does not say; a group that reached
    // its answer had every assignment checked on the way in.
    let consumer = asked.consumer_protocol.unwrap_or(true);
    if consumer && !r.assignment.is_empty() {
        r.assignment = consumer_protocol::assignment_out(ns, &r.assignment);
    }
}

/// Heartbeat.
pub(super) fn heartbeat(ns: &Namespace, asked: &mut Asked, r: &mut HeartbeatRequest) -> Verdict {
    group_or(ns, asked, &mut r.group_id, || {
        ResponseKind::Heartbeat(
            HeartbeatResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        )
    })
}

/// LeaveGroup.
pub(super) fn leave_group(ns: &Namespace, asked: &mut Asked, r: &mut LeaveGroupRequest) -> Verdict {
    group_or(ns, asked, &mut r.group_id, || {
        ResponseKind::LeaveGroup(
            LeaveGroupResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        )
    })
}

/// Renames a request's one group id, or answers with `refused`.
fn group_or(
    ns: &Namespace,
    asked: &mut Asked,
    group: &mut GroupId,
    refused: impl FnOnce() -> ResponseKind,
) -> Verdict {
    if ns.group_in(asked, group) {
        Verdict::Forward
    } else {
        Verdict::Respond(refused())
    }
}

/// OffsetCommit: the group (refused: every partition gets
/// GROUP_AUTHORIZATION_FAILED) and its topics.
pub(super) fn offset_commit(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut OffsetCommitRequest,
) -> Verdict {
    if !ns.group_in(asked, &mut r.group_id) {
        for t in r.topics.drain(..) {
            asked.denied_topics.push(DeniedTopic {
                name: t.name.0,
                id: t.topic_id,
                partitions: indexes(&t.partitions, |p| p.partition_index),
                code: GROUP_AUTHORIZATION_FAILED,
            });
        }
    }
    r.topics.retain_mut(|t| {
        let partitions = indexes(&t.partitions, |p| p.partition_index);
        ns.topic_in(asked, &mut t.name, t.topic_id, partitions)
    });
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = OffsetCommitResponse::default();
        offset_commit_out(ns, asked, &mut answer);
        ResponseKind::OffsetCommit(answer)
    })
}

/// OffsetCommit's answer.
pub(super) fn offset_commit_out(ns: &Namespace, asked: &Asked, r: &mut OffsetCommitResponse) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, t.topic_id));
    for d in &asked.denied_topics {
        r.topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(TopicName(d.name.clone()))
                .with_topic_id(d.id)
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
}

/// OffsetFetch: one group before v8 (refused: the answer's error code),
/// a batch of groups from v8 (each refused on its own).
pub(super) fn offset_fetch(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut OffsetFetchRequest,
) -> Verdict {
    if !r.group_id.0.is_empty() || r.groups.is_empty() {
        if !ns.group_in(asked, &mut r.group_id) {
            return Verdict::Respond(ResponseKind::OffsetFetch(
                OffsetFetchResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
            ));
        }
        if let Some(topics) = &mut r.topics {
            topics.retain_mut(|t| {
                let partitions = t.partition_indexes.clone();
                ns.topic_in(asked, &mut t.name, Default::default(), partitions)
            });
        }
        return Verdict::Forward;
    }
    r.groups.retain_mut(|g| {
        if !ns.group_in(asked, &mut g.group_id) {
            return false;
        }
        if let Some(topics) = &mut g.topics {
            topics.retain_mut(|t| {
                let partitions = t.partition_indexes.clone();
                ns.topic_in(asked, &mut t.name, t.topic_id, partitions)
            });
        }
        true
    });
    answer_if_empty(r.groups.is_empty(), asked, || {
        let mut answer = OffsetFetchResponse::default();
        offset_fetch_out(ns, asked, &mut answer);
        ResponseKind::OffsetFetch(answer)
    })
}

/// OffsetFetch's answer. Topics the request refused are answered in the
/// single group's topics (before v8) or the first group's (a batch).
pub(super) fn offset_fetch_out(ns: &Namespace, asked: &Asked, r: &mut OffsetFetchResponse) {
    // Every topic of a group's offsets is listed only when described.
    let shown = |t: &mut TopicName, id| {
        let canonical = ns.canonical(t);
        ns.topic_out(asked, t, id)
            && canonical
                .as_deref()
                .is_none_or(|n| ns.describable(asked, Resource::Topic, n))
    };
    r.topics
        .retain_mut(|t| shown(&mut t.name, Default::default()));
    for d in asked.denied_topics.iter().filter(|_| r.groups.is_empty()) {
        r.topics.push(
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(-1)
                                .with_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
    r.groups.retain_mut(|g| {
        g.topics.retain_mut(|t| shown(&mut t.name, t.topic_id));
        ns.group_out(&mut g.group_id)
    });
    if let Some(first) = r.groups.first_mut() {
        for d in &asked.denied_topics {
            first.topics.push(
                OffsetFetchResponseTopics::default()
                    .with_name(TopicName(d.name.clone()))
                    .with_topic_id(d.id)
                    .with_partitions(
                        d.partitions
                            .iter()
                            .map(|&p| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_error_code(d.code)
                            })
                            .collect(),
                    ),
            );
        }
    }
    for g in &asked.denied_groups {
        r.groups.push(
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(g.clone()))
                .with_error_code(GROUP_AUTHORIZATION_FAILED),
        );
    }
}

/// OffsetDelete.
pub(super) fn offset_delete(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut OffsetDeleteRequest,
) -> Verdict {
    if !ns.owned_group_in(asked, &mut r.group_id) {
        return Verdict::Respond(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        ));
    }
    r.topics.retain_mut(|t| {
        let partitions = indexes(&t.partitions, |p| p.partition_index);
        ns.topic_in(asked, &mut t.name, Default::default(), partitions)
    });
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = OffsetDeleteResponse::default();
        offset_delete_out(ns, asked, &mut answer);
        ResponseKind::OffsetDelete(answer)
    })
}

/// OffsetDelete's answer.
pub(super) fn offset_delete_out(ns: &Namespace, asked: &Asked, r: &mut OffsetDeleteResponse) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for d in &asked.denied_topics {
        r.topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
}

/// DescribeGroups.
pub(super) fn describe_groups(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DescribeGroupsRequest,
) -> Verdict {
    r.groups.retain_mut(|g| ns.group_in(asked, g));
    answer_if_empty(r.groups.is_empty(), asked, || {
        let mut answer = DescribeGroupsResponse::default();
        describe_groups_out(ns, asked, &mut answer);
        ResponseKind::DescribeGroups(answer)
    })
}

/// DescribeGroups' answer: consumer-protocol members' subscriptions and
/// assignments renamed back too.
pub(super) fn describe_groups_out(ns: &Namespace, asked: &Asked, r: &mut DescribeGroupsResponse) {
    r.groups.retain_mut(|g| {
        if consumer_protocol::is_consumer(&g.protocol_type) {
            for m in &mut g.members {
                m.member_metadata = consumer_protocol::subscription_out(ns, &m.member_metadata);
                m.member_assignment = consumer_protocol::assignment_out(ns, &m.member_assignment);
            }
        }
        let shown = ns.group_out(&mut g.group_id);
        let name = g.group_id.0.clone();
        ns.authorized_operations(asked, Resource::Group, &name, &mut g.authorized_operations);
        shown
    });
    for g in &asked.denied_groups {
        r.groups.push(
            DescribedGroup::default()
                .with_group_id(GroupId(g.clone()))
                .with_error_code(GROUP_AUTHORIZATION_FAILED),
        );
    }
}

/// ListGroups' answer: only the groups the client may see.
pub(super) fn list_groups_out(ns: &Namespace, asked: &Asked, r: &mut ListGroupsResponse) {
    // Under gateway ACLs: every group with describe on the cluster, else
    // those the principal may describe (as Kafka lists them).
    let all = asked.access.as_ref().is_none_or(|a| {
        a.may(
            crate::filter::acl::ResourceType::Cluster,
            crate::filter::acl::CLUSTER,
            crate::filter::acl::Operation::Describe,
        )
    });
    r.groups.retain_mut(|g| {
        ns.group_out(&mut g.group_id)
            && (all || ns.describable(asked, Resource::Group, &g.group_id.0))
    });
}

/// DeleteGroups.
pub(super) fn delete_groups(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DeleteGroupsRequest,
) -> Verdict {
    r.groups_names.retain_mut(|g| ns.owned_group_in(asked, g));
    answer_if_empty(r.groups_names.is_empty(), asked, || {
        let mut answer = DeleteGroupsResponse::default();
        delete_groups_out(ns, asked, &mut answer);
        ResponseKind::DeleteGroups(answer)
    })
}

/// DeleteGroups' answer.
pub(super) fn delete_groups_out(ns: &Namespace, asked: &Asked, r: &mut DeleteGroupsResponse) {
    r.results.retain_mut(|g| ns.group_out(&mut g.group_id));
    for g in &asked.denied_groups {
        r.results.push(
            DeletableGroupResult::default()
                .with_group_id(GroupId(g.clone()))
                .with_error_code(GROUP_AUTHORIZATION_FAILED),
        );
    }
}

/// ConsumerGroupHeartbeat (KIP-848): the group, the subscribed topic
/// names and the owned partitions (by id). A regex subscription is
/// refused: the broker would match it against every tenant's topics.
pub(super) fn consumer_group_heartbeat(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut ConsumerGroupHeartbeatRequest,
) -> Verdict {
    let refuse = |code: i16, message: &'static str| {
        Verdict::Respond(ResponseKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_static_str(message))),
        ))
    };
    if !ns.group_in(asked, &mut r.group_id) {
        return refuse(
            GROUP_AUTHORIZATION_FAILED,
            "the group is outside this virtual cluster's namespace",
        );
    }
    // A regex is resolved by the broker against every topic, around the
    // namespace and the gateway's describe checks.
    if r.subscribed_topic_regex
        .as_ref()
        .is_some_and(|re| !re.is_empty())
        && ns.polices()
    {
        return refuse(
            INVALID_REQUEST,
            "regex subscriptions are not supported where the gateway polices topic names \
             (a namespace, aliases or gateway ACLs): subscribe to topic names",
        );
    }
    if let Some(names) = &mut r.subscribed_topic_names {
        for name in names.iter_mut() {
            if !ns.topic_in(asked, name, Default::default(), Vec::new()) {
                return refuse(
                    TOPIC_AUTHORIZATION_FAILED,
                    "a subscribed topic is outside this virtual cluster's namespace",
                );
            }
        }
    }
    if let Some(owned) = &mut r.topic_partitions {
        owned.retain(|t| !hidden_id(ns, t.topic_id));
    }
    Verdict::Forward
}

/// ConsumerGroupHeartbeat's answer: only assignments the client may see.
pub(super) fn consumer_group_heartbeat_out(ns: &Namespace, r: &mut ConsumerGroupHeartbeatResponse) {
    if let Some(assignment) = &mut r.assignment {
        assignment
            .topic_partitions
            .retain(|t| !hidden_id(ns, t.topic_id));
    }
}

/// ConsumerGroupDescribe.
pub(super) fn consumer_group_describe(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut ConsumerGroupDescribeRequest,
) -> Verdict {
    r.group_ids.retain_mut(|g| ns.group_in(asked, g));
    answer_if_empty(r.group_ids.is_empty(), asked, || {
        let mut answer = ConsumerGroupDescribeResponse::default();
        consumer_group_describe_out(ns, asked, &mut answer);
        ResponseKind::ConsumerGroupDescribe(answer)
    })
}

/// ConsumerGroupDescribe's answer: group ids, subscriptions and
/// assignments renamed back, what the client may not see dropped.
pub(super) fn consumer_group_describe_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut ConsumerGroupDescribeResponse,
) {
    r.groups.retain_mut(|g| {
        let mut hidden_topic = false;
        for m in &mut g.members {
            m.subscribed_topic_names
                .retain_mut(|t| ns.topic_out(asked, t, Default::default()));
            for a in [&mut m.assignment, &mut m.target_assignment] {
                a.topic_partitions
                    .retain_mut(|t| ns.topic_out(asked, &mut t.topic_name, t.topic_id));
            }
            // Under gateway ACLs, describing a group must not name topics
            // the principal may not describe (Kafka 4 fails the group).
            hidden_topic |= m
                .subscribed_topic_names
                .iter()
                .chain(
                    [&m.assignment, &m.target_assignment]
                        .into_iter()
                        .flat_map(|a| a.topic_partitions.iter().map(|t| &t.topic_name)),
                )
                .any(|t| !t.0.is_empty() && !ns.describable(asked, Resource::Topic, &t.0));
        }
        if hidden_topic {
            g.members.clear();
            g.error_code = super::TOPIC_AUTHORIZATION_FAILED;
            g.error_message = Some(StrBytes::from_static_str(
                "a member's topic may not be described by this principal",
            ));
        }
        let shown = ns.group_out(&mut g.group_id);
        let name = g.group_id.0.clone();
        ns.authorized_operations(asked, Resource::Group, &name, &mut g.authorized_operations);
        shown
    });
    for g in &asked.denied_groups {
        r.groups.push(
            kafka_protocol::messages::consumer_group_describe_response::DescribedGroup::default()
                .with_group_id(GroupId(g.clone()))
                .with_error_code(GROUP_AUTHORIZATION_FAILED),
        );
    }
}

/// Whether topic `id` is known to be one the client may not see. An id
/// not learned yet is kept: the broker assigns only subscribed topics
/// (renamed into the namespace), and dropping an assignment silently
/// would leave its partitions unconsumed.
fn hidden_id(ns: &Namespace, id: uuid::Uuid) -> bool {
    ns.ids()
        .name(id)
        .is_some_and(|name| ns.names().outward(Resource::Topic, &name).is_none())
}

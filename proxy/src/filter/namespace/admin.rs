//! Topics and their settings: CreateTopics, DeleteTopics,
//! CreatePartitions, the three config APIs, ElectLeaders and partition
//! reassignments (the listings are `listing.rs`'s).

use kafka_protocol::{
    messages::{
        AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
        AlterPartitionReassignmentsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
        CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
        DescribeConfigsRequest, DescribeConfigsResponse, ElectLeadersRequest, ElectLeadersResponse,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ResponseKind,
        TopicName,
        alter_partition_reassignments_response::{
            ReassignablePartitionResponse, ReassignableTopicResponse,
        },
        create_partitions_response::CreatePartitionsTopicResult,
        create_topics_response::CreatableTopicResult,
        delete_topics_response::DeletableTopicResult,
        describe_configs_response::DescribeConfigsResult,
        elect_leaders_response::{PartitionResult, ReplicaElectionResult},
    },
    protocol::StrBytes,
};

use super::{
    Asked, CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, Namespace, Resource,
    TOPIC_AUTHORIZATION_FAILED, data::answer_if_empty,
};
use crate::filter::Verdict;

/// Config resource types (Kafka's `ConfigResource.Type`).
const TOPIC_RESOURCE: i8 = 2;
const GROUP_RESOURCE: i8 = 32;

/// CreateTopics.
pub(super) fn create_topics(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut CreateTopicsRequest,
) -> Verdict {
    r.topics
        .retain_mut(|t| ns.owned_topic_in(asked, &mut t.name, Default::default(), Vec::new()));
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = CreateTopicsResponse::default();
        create_topics_out(ns, asked, &mut answer);
        ResponseKind::CreateTopics(answer)
    })
}

/// CreateTopics' answer.
pub(super) fn create_topics_out(ns: &Namespace, asked: &Asked, r: &mut CreateTopicsResponse) {
    r.topics.retain_mut(|t| {
        if t.error_code == 0 {
            ns.learn_id(&t.name, t.topic_id);
        }
        ns.topic_out(asked, &mut t.name, t.topic_id)
    });
    for d in &asked.denied_topics {
        r.topics.push(
            CreatableTopicResult::default()
                .with_name(TopicName(d.name.clone()))
                .with_error_code(d.code)
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        );
    }
}

/// DeleteTopics: by name (before v6) or by name or id (from v6).
pub(super) fn delete_topics(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DeleteTopicsRequest,
) -> Verdict {
    r.topic_names
        .retain_mut(|t| ns.owned_topic_in(asked, t, Default::default(), Vec::new()));
    r.topics.retain_mut(|t| {
        let mut name = t.name.take().unwrap_or_default();
        let keep = ns.owned_topic_in(asked, &mut name, t.topic_id, Vec::new());
        t.name = (!name.0.is_empty()).then_some(name);
        keep
    });
    answer_if_empty(
        r.topic_names.is_empty() && r.topics.is_empty(),
        asked,
        || {
            let mut answer = DeleteTopicsResponse::default();
            delete_topics_out(ns, asked, &mut answer);
            ResponseKind::DeleteTopics(answer)
        },
    )
}

/// DeleteTopics' answer.
pub(super) fn delete_topics_out(ns: &Namespace, asked: &Asked, r: &mut DeleteTopicsResponse) {
    r.responses
        .retain_mut(|t| ns.optional_topic_out(asked, &mut t.name, t.topic_id));
    for d in &asked.denied_topics {
        r.responses.push(
            DeletableTopicResult::default()
                .with_name((!d.name.is_empty()).then(|| TopicName(d.name.clone())))
                .with_topic_id(d.id)
                .with_error_code(d.code),
        );
    }
}

/// CreatePartitions.
pub(super) fn create_partitions(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut CreatePartitionsRequest,
) -> Verdict {
    r.topics
        .retain_mut(|t| ns.owned_topic_in(asked, &mut t.name, Default::default(), Vec::new()));
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = CreatePartitionsResponse::default();
        create_partitions_out(ns, asked, &mut answer);
        ResponseKind::CreatePartitions(answer)
    })
}

/// CreatePartitions' answer.
pub(super) fn create_partitions_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut CreatePartitionsResponse,
) {
    r.results
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for d in &asked.denied_topics {
        r.results.push(
            CreatePartitionsTopicResult::default()
                .with_name(TopicName(d.name.clone()))
                .with_error_code(d.code),
        );
    }
}

/// Renames one config resource; false (recorded in `asked`) when it is
/// refused: a topic or group outside the namespace (or, when `altering`,
/// one shared through `additional`), or anything that is not a topic or
/// group: broker, broker-logger and client-metrics settings are the
/// platform's, not a tenant's (a broker's would show its real listeners,
/// around the gateway).
fn resource_in(
    ns: &Namespace,
    asked: &mut Asked,
    resource_type: i8,
    name: &mut StrBytes,
    altering: bool,
) -> bool {
    let (kind, code) = match resource_type {
        TOPIC_RESOURCE => (Resource::Topic, TOPIC_AUTHORIZATION_FAILED),
        GROUP_RESOURCE => (Resource::Group, GROUP_AUTHORIZATION_FAILED),
        _ => {
            // Broker, broker-logger and client-metrics settings: the
            // platform's in a namespace; without one, the ACLs decide
            // (describe_configs / alter_configs on the cluster).
            let operation = asked.needs.topic;
            let on_cluster = !ns.names().namespaced()
                && asked.access.as_mut().is_some_and(|a| {
                    a.permit(
                        crate::filter::acl::ResourceType::Cluster,
                        crate::filter::acl::CLUSTER,
                        operation,
                    )
                });
            if on_cluster {
                return true;
            }
            let refused = (resource_type, name.clone(), CLUSTER_AUTHORIZATION_FAILED);
            asked.denied_resources.push(refused);
            return false;
        }
    };
    if kind == Resource::Topic {
        let mut topic = TopicName(name.clone());
        let mut scratch = scratch(asked);
        let keep = if altering {
            ns.owned_topic_in(&mut scratch, &mut topic, Default::default(), Vec::new())
        } else {
            ns.topic_in(&mut scratch, &mut topic, Default::default(), Vec::new())
        };
        unscratch(asked, scratch);
        if keep {
            *name = topic.0;
            return true;
        }
    } else if !(altering && ns.names().is_extra(kind, name)) {
        let mut scratch = scratch(asked);
        let keep = ns.rename_in(&mut scratch, kind, name);
        unscratch(asked, scratch);
        if keep {
            return true;
        }
    }
    asked
        .denied_resources
        .push((resource_type, name.clone(), code));
    false
}

/// A fresh record for renaming one config resource, carrying the
/// request's ACL decisions (its refusals are the resource's, not a topic's
/// or group's).
fn scratch(asked: &mut Asked) -> Asked {
    Asked {
        access: asked.access.take(),
        needs: asked.needs,
        ..Default::default()
    }
}

/// Takes back what [`scratch`] lent, and the names it renamed.
fn unscratch(asked: &mut Asked, scratch: Asked) {
    asked.access = scratch.access;
    asked.topics.extend(scratch.topics);
    asked.acl_refused.extend(scratch.acl_refused);
}

/// Renames a config resource back; false when the client may not see it.
fn resource_out(ns: &Namespace, asked: &Asked, resource_type: i8, name: &mut StrBytes) -> bool {
    match resource_type {
        TOPIC_RESOURCE => {
            let mut topic = TopicName(name.clone());
            let keep = ns.topic_out(asked, &mut topic, Default::default());
            *name = topic.0;
            keep
        }
        GROUP_RESOURCE => ns.rename_out(Resource::Group, name),
        _ => true,
    }
}

/// DescribeConfigs.
pub(super) fn describe_configs(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DescribeConfigsRequest,
) -> Verdict {
    r.resources
        .retain_mut(|c| resource_in(ns, asked, c.resource_type, &mut c.resource_name, false));
    answer_if_empty(r.resources.is_empty(), asked, || {
        let mut answer = DescribeConfigsResponse::default();
        describe_configs_out(ns, asked, &mut answer);
        ResponseKind::DescribeConfigs(answer)
    })
}

/// DescribeConfigs' answer.
pub(super) fn describe_configs_out(ns: &Namespace, asked: &Asked, r: &mut DescribeConfigsResponse) {
    r.results
        .retain_mut(|c| resource_out(ns, asked, c.resource_type, &mut c.resource_name));
    for (resource_type, name, code) in &asked.denied_resources {
        r.results.push(
            DescribeConfigsResult::default()
                .with_resource_type(*resource_type)
                .with_resource_name(name.clone())
                .with_error_code(*code),
        );
    }
}

/// AlterConfigs.
pub(super) fn alter_configs(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut AlterConfigsRequest,
) -> Verdict {
    r.resources
        .retain_mut(|c| resource_in(ns, asked, c.resource_type, &mut c.resource_name, true));
    answer_if_empty(r.resources.is_empty(), asked, || {
        let mut answer = AlterConfigsResponse::default();
        alter_configs_out(ns, asked, &mut answer);
        ResponseKind::AlterConfigs(answer)
    })
}

/// AlterConfigs' answer.
pub(super) fn alter_configs_out(ns: &Namespace, asked: &Asked, r: &mut AlterConfigsResponse) {
    r.responses
        .retain_mut(|c| resource_out(ns, asked, c.resource_type, &mut c.resource_name));
    for (resource_type, name, code) in &asked.denied_resources {
        r.responses.push(
            kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(*resource_type)
                .with_resource_name(name.clone())
                .with_error_code(*code),
        );
    }
}

/// IncrementalAlterConfigs.
pub(super) fn incremental_alter_configs(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut IncrementalAlterConfigsRequest,
) -> Verdict {
    r.resources
        .retain_mut(|c| resource_in(ns, asked, c.resource_type, &mut c.resource_name, true));
    answer_if_empty(r.resources.is_empty(), asked, || {
        let mut answer = IncrementalAlterConfigsResponse::default();
        incremental_alter_configs_out(ns, asked, &mut answer);
        ResponseKind::IncrementalAlterConfigs(answer)
    })
}

/// IncrementalAlterConfigs' answer.
pub(super) fn incremental_alter_configs_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut IncrementalAlterConfigsResponse,
) {
    r.responses
        .retain_mut(|c| resource_out(ns, asked, c.resource_type, &mut c.resource_name));
    for (resource_type, name, code) in &asked.denied_resources {
        r.responses.push(
            kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(*resource_type)
                .with_resource_name(name.clone())
                .with_error_code(*code),
        );
    }
}

/// ElectLeaders: a cluster operation (it moves leadership on brokers
/// every tenant shares), not a tenant's: refused with
/// CLUSTER_AUTHORIZATION_FAILED.
pub(super) fn elect_leaders(
    ns: &Namespace,
    _asked: &mut Asked,
    _r: &mut ElectLeadersRequest,
) -> Verdict {
    // Without a namespace, the gateway ACLs decided (alter on the cluster).
    if !ns.names().namespaced() {
        return Verdict::Forward;
    }
    Verdict::Respond(ResponseKind::ElectLeaders(
        ElectLeadersResponse::default().with_error_code(CLUSTER_AUTHORIZATION_FAILED),
    ))
}

/// ElectLeaders' answer.
pub(super) fn elect_leaders_out(ns: &Namespace, asked: &Asked, r: &mut ElectLeadersResponse) {
    r.replica_election_results
        .retain_mut(|t| ns.topic_out(asked, &mut t.topic, Default::default()));
    for d in &asked.denied_topics {
        r.replica_election_results.push(
            ReplicaElectionResult::default()
                .with_topic(TopicName(d.name.clone()))
                .with_partition_result(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
}

/// AlterPartitionReassignments: a cluster operation (it moves replicas
/// between brokers every tenant shares): refused with
/// CLUSTER_AUTHORIZATION_FAILED.
pub(super) fn alter_partition_reassignments(
    ns: &Namespace,
    _asked: &mut Asked,
    _r: &mut AlterPartitionReassignmentsRequest,
) -> Verdict {
    // Without a namespace, the gateway ACLs decided (alter on the cluster).
    if !ns.names().namespaced() {
        return Verdict::Forward;
    }
    Verdict::Respond(ResponseKind::AlterPartitionReassignments(
        AlterPartitionReassignmentsResponse::default()
            .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
            .with_error_message(Some(StrBytes::from_static_str(
                "partition reassignments are the platform's, not a tenant's",
            ))),
    ))
}

/// AlterPartitionReassignments' answer.
pub(super) fn alter_partition_reassignments_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut AlterPartitionReassignmentsResponse,
) {
    r.responses
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for d in &asked.denied_topics {
        r.responses.push(
            ReassignableTopicResponse::default()
                .with_name(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
}

/// ListPartitionReassignments: named topics renamed; refused ones are
/// left out of the answer (as topics without a reassignment are).
pub(super) fn list_partition_reassignments(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut ListPartitionReassignmentsRequest,
) -> Verdict {
    if let Some(topics) = &mut r.topics {
        topics.retain_mut(|t| ns.topic_in(asked, &mut t.name, Default::default(), Vec::new()));
        if topics.is_empty() && !asked.denied_topics.is_empty() {
            return Verdict::Respond(ResponseKind::ListPartitionReassignments(
                ListPartitionReassignmentsResponse::default(),
            ));
        }
    }
    Verdict::Forward
}

/// ListPartitionReassignments' answer.
pub(super) fn list_partition_reassignments_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut ListPartitionReassignmentsResponse,
) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
}

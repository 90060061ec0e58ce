//! The topic listings: Metadata and DescribeTopicPartitions. They list
//! only the topics the client may see (and, under gateway ACLs, may
//! describe), teach the topic-id map, and never let a broker create a
//! topic the client may not create.

use kafka_protocol::{
    messages::{
        DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, MetadataRequest,
        MetadataResponse, ResponseKind, TopicName,
        describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic,
        metadata_response::MetadataResponseTopic,
    },
    protocol::StrBytes,
};

use super::{Asked, Namespace, Resource, data::answer_if_empty};
use crate::filter::{
    Verdict,
    acl::{CLUSTER, Operation, ResourceType},
};

/// `UNKNOWN_TOPIC_OR_PARTITION`.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Metadata: named topics renamed (or checked, by id); an empty or null
/// list (every topic) is answered with the visible ones only.
pub(super) fn metadata(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut MetadataRequest,
    version: i16,
) -> Verdict {
    let Some(topics) = &mut r.topics else {
        return Verdict::Forward;
    };
    let named = !topics.is_empty();
    // A shared topic may be used, not created: asking for one that does
    // not exist must not make the broker create it.
    // (The flag exists from v4; before, the broker's own setting decides.)
    if version >= 4
        && topics.iter().any(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| ns.names().is_extra(Resource::Topic, &n.0))
        })
    {
        r.allow_auto_topic_creation = false;
    }
    // Before v4 there is no such flag: a broker may create any topic a
    // request names. Where one named (and not refused) may not be created
    // by this client (a shared topic, or no create under gateway ACLs)
    // and is not known to exist, the broker is asked for every topic
    // instead, and the answer holds the ones named.
    let creatable = |name: &str| {
        !ns.names().is_extra(Resource::Topic, name)
            && asked.access.as_ref().is_none_or(|a| {
                !a.decides()
                    || a.may(ResourceType::Cluster, CLUSTER, Operation::Create)
                    || a.may(
                        ResourceType::Topic,
                        ns.names().unalias(name),
                        Operation::Create,
                    )
            })
    };
    let uncreatable: Vec<bool> = topics
        .iter()
        .map(|t| version < 4 && t.name.as_ref().is_some_and(|n| !creatable(&n.0)))
        .collect();
    let mut named_names: Vec<StrBytes> = Vec::new();
    let mut list_instead = false;
    let mut at = 0;
    topics.retain_mut(|t| {
        let uncreatable = uncreatable.get(at).copied().unwrap_or(true);
        at += 1;
        let mut name = t.name.take().unwrap_or_default();
        let client = name.0.clone();
        let keep = ns.topic_in(asked, &mut name, t.topic_id, Vec::new());
        if keep && !client.is_empty() {
            list_instead |= uncreatable && !ns.ids().knows_name(&name.0);
            let unaliased = ns.names().unalias(&client).to_string();
            if !named_names
                .iter()
                .any(|n| ns.names().unalias(n.as_str()) == unaliased)
            {
                named_names.push(client);
            }
        }
        t.name = (!name.0.is_empty()).then_some(name);
        keep
    });
    if list_instead && !topics.is_empty() {
        asked.listed_instead = Some(named_names);
        // v0: an empty list is every topic; from v1, null is.
        r.topics = if version == 0 { Some(Vec::new()) } else { None };
        return Verdict::Forward;
    }
    let Some(topics) = &r.topics else {
        return Verdict::Forward;
    };
    // From v1 an empty list asks for no topics: the broker still answers
    // (with its brokers, which clients need) and the refusals are merged
    // in. In v0 an empty list means every topic, so it is answered here.
    answer_if_empty(named && topics.is_empty() && version == 0, asked, || {
        let mut answer = MetadataResponse::default();
        metadata_out(ns, asked, &mut answer);
        ResponseKind::Metadata(answer)
    })
}

/// Metadata's answer.
pub(super) fn metadata_out(ns: &Namespace, asked: &Asked, r: &mut MetadataResponse) {
    let mut unknown = Vec::new();
    if let Some(named) = &asked.listed_instead {
        // Asked for every topic in place of the named ones: only those
        // are answered, the ones the broker does not have as unknown.
        let client_name = |t: &MetadataResponseTopic| {
            t.name
                .as_ref()
                .and_then(|n| ns.names().outward(Resource::Topic, &n.0))
        };
        r.topics.retain(|t| {
            client_name(t).is_some_and(|client| {
                named
                    .iter()
                    .any(|asked_for| ns.names().unalias(asked_for.as_str()) == client)
            })
        });
        for asked_for in named {
            let wanted = ns.names().unalias(asked_for.as_str());
            if !r
                .topics
                .iter()
                .any(|t| client_name(t).as_deref() == Some(wanted))
            {
                unknown.push(
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(asked_for.clone())))
                        .with_error_code(UNKNOWN_TOPIC_OR_PARTITION)
                        .with_topic_authorized_operations(i32::MIN),
                );
            }
        }
    }
    r.topics.retain_mut(|t| {
        listed(
            ns,
            asked,
            &mut t.name,
            t.topic_id,
            t.error_code,
            &mut t.topic_authorized_operations,
        )
    });
    if asked.access.as_ref().is_some_and(|a| a.decides())
        && r.cluster_authorized_operations != i32::MIN
    {
        // The broker's view of its own ACLs says nothing about the gateway's.
        r.cluster_authorized_operations = asked.access.as_ref().map_or(0, |a| {
            a.authorized_operations(
                crate::filter::acl::ResourceType::Cluster,
                crate::filter::acl::CLUSTER,
            )
        });
    }
    // Our own entries, in the client's names.
    r.topics.extend(unknown);
    for d in &asked.denied_topics {
        r.topics.push(
            MetadataResponseTopic::default()
                .with_error_code(d.code)
                .with_name((!d.name.is_empty()).then(|| TopicName(d.name.clone())))
                .with_topic_id(d.id)
                .with_topic_authorized_operations(i32::MIN),
        );
    }
}

/// DescribeTopicPartitions: the named topics and the paging cursor.
pub(super) fn describe_topic_partitions(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DescribeTopicPartitionsRequest,
) -> Verdict {
    let named = !r.topics.is_empty();
    r.topics
        .retain_mut(|t| ns.topic_in(asked, &mut t.name, Default::default(), Vec::new()));
    if let Some(cursor) = &mut r.cursor
        && !ns.topic_in(
            asked,
            &mut cursor.topic_name,
            Default::default(),
            Vec::new(),
        )
    {
        r.cursor = None;
    }
    answer_if_empty(named && r.topics.is_empty(), asked, || {
        let mut answer = DescribeTopicPartitionsResponse::default();
        describe_topic_partitions_out(ns, asked, &mut answer);
        ResponseKind::DescribeTopicPartitions(answer)
    })
}

/// DescribeTopicPartitions' answer.
pub(super) fn describe_topic_partitions_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut DescribeTopicPartitionsResponse,
) {
    r.topics.retain_mut(|t| {
        listed(
            ns,
            asked,
            &mut t.name,
            t.topic_id,
            t.error_code,
            &mut t.topic_authorized_operations,
        )
    });
    if let Some(cursor) = &mut r.next_cursor
        && !ns.topic_out(asked, &mut cursor.topic_name, Default::default())
    {
        r.next_cursor = None;
    }
    for d in &asked.denied_topics {
        r.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(d.code)
                .with_name(Some(TopicName(d.name.clone())))
                .with_topic_authorized_operations(i32::MIN),
        );
    }
}

/// One topic entry of a listing answer: its id learned (from the broker's
/// own answer), its name renamed back, and whether it is shown — only
/// what the client may see and, under gateway ACLs, describe (as Kafka
/// leaves it out), with the gateway's `authorized_operations`.
fn listed(
    ns: &Namespace,
    asked: &Asked,
    name: &mut Option<TopicName>,
    id: uuid::Uuid,
    error_code: i16,
    authorized_operations: &mut i32,
) -> bool {
    if let Some(n) = name.as_ref()
        && error_code == 0
    {
        ns.learn_id(n, id);
    }
    let canonical = name.as_ref().and_then(|n| ns.canonical(n));
    let shown = ns.optional_topic_out(asked, name, id)
        && canonical
            .as_deref()
            .is_none_or(|n| ns.describable(asked, Resource::Topic, n));
    if shown && let Some(canonical) = canonical {
        ns.authorized_operations(asked, Resource::Topic, &canonical, authorized_operations);
    }
    shown
}

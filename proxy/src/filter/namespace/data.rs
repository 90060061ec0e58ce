//! Records and offsets by topic-partition: Produce, Fetch, ListOffsets,
//! OffsetForLeaderEpoch, DeleteRecords, DescribeProducers. Only the topic
//! arrays are touched: record sets stay the shared `Bytes` they were
//! decoded as, never copied to rename a topic.

use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeProducersRequest,
    DescribeProducersResponse, FetchRequest, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest,
    ProduceResponse, ResponseKind, TopicName,
    delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult},
    describe_producers_response::{PartitionResponse, TopicResponse},
    fetch_response::{FetchableTopicResponse, PartitionData},
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult},
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
};

use super::{Asked, Namespace, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, indexes};
use crate::filter::Verdict;

/// Produce: topics, and the transactional id of a transactional producer
/// (refused: every partition gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
pub(super) fn produce(ns: &Namespace, asked: &mut Asked, r: &mut ProduceRequest) -> Verdict {
    if let Some(id) = &mut r.transactional_id
        && !ns.transaction_in(asked, id)
    {
        for t in r.topic_data.drain(..) {
            asked.denied_topics.push(super::DeniedTopic {
                name: t.name.0,
                id: t.topic_id,
                partitions: indexes(&t.partition_data, |p| p.index),
                code: TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            });
        }
    }
    r.topic_data.retain_mut(|t| {
        let partitions = indexes(&t.partition_data, |p| p.index);
        ns.topic_in(asked, &mut t.name, t.topic_id, partitions)
    });
    answer_if_empty(r.topic_data.is_empty(), asked, || {
        let mut answer = ProduceResponse::default();
        produce_out(ns, asked, &mut answer);
        ResponseKind::Produce(answer)
    })
}

/// Produce's answer.
pub(super) fn produce_out(ns: &Namespace, asked: &Asked, r: &mut ProduceResponse) {
    r.responses
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, t.topic_id));
    for d in &asked.denied_topics {
        r.responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(d.name.clone()))
                .with_topic_id(d.id)
                .with_partition_responses(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            PartitionProduceResponse::default()
                                .with_index(p)
                                .with_error_code(d.code)
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect(),
                ),
        );
    }
}

/// Fetch: topics (by name before v13, by id from v13) and the topics a
/// fetch session forgets.
pub(super) fn fetch(ns: &Namespace, asked: &mut Asked, r: &mut FetchRequest) -> Verdict {
    // A client is a consumer, never a follower broker (which reads past
    // the high watermark and moves it).
    r.replica_id = (-1).into();
    r.replica_state.replica_id = (-1).into();
    r.topics.retain_mut(|t| {
        let partitions = indexes(&t.partitions, |p| p.partition);
        ns.topic_in(asked, &mut t.topic, t.topic_id, partitions)
    });
    // Forgetting is harmless, but a name outside the namespace must not
    // reach the broker even so: such entries are dropped unanswered.
    let mut forgotten = Asked::default();
    r.forgotten_topics_data
        .retain_mut(|t| ns.topic_in(&mut forgotten, &mut t.topic, t.topic_id, Vec::new()));
    asked.topics.extend(forgotten.topics);
    // Always asked of the broker, even with nothing left: a fetch session's
    // epoch must advance with every request the client sends.
    Verdict::Forward
}

/// Fetch's answer.
pub(super) fn fetch_out(ns: &Namespace, asked: &Asked, r: &mut FetchResponse) {
    r.responses
        .retain_mut(|t| ns.topic_out(asked, &mut t.topic, t.topic_id));
    // A fetch session (KIP-227) keeps serving partitions the request no
    // longer names: a topic the principal may no longer read (its rules
    // changed) gets TOPIC_AUTHORIZATION_FAILED, never its records.
    for t in &mut r.responses {
        if !ns.may_read(asked, &t.topic, t.topic_id) {
            for p in &mut t.partitions {
                p.error_code = super::TOPIC_AUTHORIZATION_FAILED;
                p.records = None;
                p.high_watermark = -1;
                p.last_stable_offset = -1;
                p.log_start_offset = -1;
                p.aborted_transactions = None;
            }
        }
    }
    for d in &asked.denied_topics {
        r.responses.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(d.name.clone()))
                .with_topic_id(d.id)
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            PartitionData::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect(),
                ),
        );
    }
}

/// ListOffsets.
pub(super) fn list_offsets(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut ListOffsetsRequest,
) -> Verdict {
    // -1: a consumer's question, never a follower's.
    r.replica_id = (-1).into();
    r.topics.retain_mut(|t| {
        let partitions = indexes(&t.partitions, |p| p.partition_index);
        ns.topic_in(asked, &mut t.name, Default::default(), partitions)
    });
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = ListOffsetsResponse::default();
        list_offsets_out(ns, asked, &mut answer);
        ResponseKind::ListOffsets(answer)
    })
}

/// ListOffsets' answer.
pub(super) fn list_offsets_out(ns: &Namespace, asked: &Asked, r: &mut ListOffsetsResponse) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for d in &asked.denied_topics {
        r.topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            ListOffsetsPartitionResponse::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                                .with_timestamp(-1)
                                .with_offset(-1)
                                .with_leader_epoch(-1)
                        })
                        .collect(),
                ),
        );
    }
}

/// OffsetForLeaderEpoch.
pub(super) fn offset_for_leader_epoch(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut OffsetForLeaderEpochRequest,
) -> Verdict {
    // -1: a consumer's question, never a follower's.
    r.replica_id = (-1).into();
    r.topics.retain_mut(|t| {
        let partitions = indexes(&t.partitions, |p| p.partition);
        ns.topic_in(asked, &mut t.topic, Default::default(), partitions)
    });
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = OffsetForLeaderEpochResponse::default();
        offset_for_leader_epoch_out(ns, asked, &mut answer);
        ResponseKind::OffsetForLeaderEpoch(answer)
    })
}

/// OffsetForLeaderEpoch's answer.
pub(super) fn offset_for_leader_epoch_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut OffsetForLeaderEpochResponse,
) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.topic, Default::default()));
    for d in &asked.denied_topics {
        r.topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            EpochEndOffset::default()
                                .with_partition(p)
                                .with_error_code(d.code)
                                .with_leader_epoch(-1)
                                .with_end_offset(-1)
                        })
                        .collect(),
                ),
        );
    }
}

/// DeleteRecords.
pub(super) fn delete_records(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DeleteRecordsRequest,
) -> Verdict {
    r.topics.retain_mut(|t| {
        let partitions = indexes(&t.partitions, |p| p.partition_index);
        ns.owned_topic_in(asked, &mut t.name, Default::default(), partitions)
    });
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = DeleteRecordsResponse::default();
        delete_records_out(ns, asked, &mut answer);
        ResponseKind::DeleteRecords(answer)
    })
}

/// DeleteRecords' answer.
pub(super) fn delete_records_out(ns: &Namespace, asked: &Asked, r: &mut DeleteRecordsResponse) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for d in &asked.denied_topics {
        r.topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            DeleteRecordsPartitionResult::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                                .with_low_watermark(-1)
                        })
                        .collect(),
                ),
        );
    }
}

/// DescribeProducers.
pub(super) fn describe_producers(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DescribeProducersRequest,
) -> Verdict {
    r.topics.retain_mut(|t| {
        let partitions = t.partition_indexes.clone();
        ns.topic_in(asked, &mut t.name, Default::default(), partitions)
    });
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = DescribeProducersResponse::default();
        describe_producers_out(ns, asked, &mut answer);
        ResponseKind::DescribeProducers(answer)
    })
}

/// DescribeProducers' answer.
pub(super) fn describe_producers_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut DescribeProducersResponse,
) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for d in &asked.denied_topics {
        r.topics.push(
            TopicResponse::default()
                .with_name(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            PartitionResponse::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
}

/// Answers a request itself when renaming refused everything in it (the
/// broker is not asked about nothing); forwards it otherwise.
pub(super) fn answer_if_empty(
    empty: bool,
    asked: &Asked,
    answer: impl FnOnce() -> ResponseKind,
) -> Verdict {
    let refused = !asked.denied_topics.is_empty()
        || !asked.denied_groups.is_empty()
        || !asked.denied_transactions.is_empty()
        || !asked.denied_resources.is_empty();
    if empty && refused {
        Verdict::Respond(answer())
    } else {
        Verdict::Forward
    }
}

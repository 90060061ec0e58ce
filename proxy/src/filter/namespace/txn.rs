//! Transactions: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, DescribeTransactions, ListTransactions. A
//! transactional id gets the prefix like a topic; one outside the
//! namespace is TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ResponseKind, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    },
    describe_transactions_response::TransactionState,
    txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic},
};

use super::{
    Asked, CLUSTER_AUTHORIZATION_FAILED, DeniedTopic, GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST,
    Namespace, Resource, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, data::answer_if_empty, indexes,
};
use crate::filter::Verdict;

/// InitProducerId: the transactional id, when there is one.
pub(super) fn init_producer_id(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut InitProducerIdRequest,
) -> Verdict {
    let refused = r
        .transactional_id
        .as_mut()
        .is_some_and(|id| !ns.transaction_in(asked, id));
    if refused {
        return Verdict::Respond(ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ));
    }
    Verdict::Forward
}

/// AddPartitionsToTxn: one transaction with its topics before v4 (what
/// clients send); the batched v4+ form (brokers verifying for each
/// other) is refused.
pub(super) fn add_partitions_to_txn(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut AddPartitionsToTxnRequest,
) -> Verdict {
    if r.transactions.is_empty() {
        if !ns.transaction_in(asked, &mut r.v3_and_below_transactional_id) {
            for t in r.v3_and_below_topics.drain(..) {
                asked.denied_topics.push(DeniedTopic {
                    name: t.name.0,
                    id: Default::default(),
                    partitions: t.partitions,
                    code: TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                });
            }
        }
        r.v3_and_below_topics.retain_mut(|t| {
            let partitions = t.partitions.clone();
            ns.topic_in(asked, &mut t.name, Default::default(), partitions)
        });
        return answer_if_empty(r.v3_and_below_topics.is_empty(), asked, || {
            let mut answer = AddPartitionsToTxnResponse::default();
            add_partitions_to_txn_out(ns, asked, &mut answer);
            ResponseKind::AddPartitionsToTxn(answer)
        });
    }
    // The batched form is brokers verifying for each other, never a
    // client's.
    Verdict::Respond(ResponseKind::AddPartitionsToTxn(
        AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_AUTHORIZATION_FAILED),
    ))
}

/// AddPartitionsToTxn's answer.
pub(super) fn add_partitions_to_txn_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut AddPartitionsToTxnResponse,
) {
    r.results_by_topic_v3_and_below
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for result in &mut r.results_by_transaction {
        result
            .topic_results
            .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
        ns.transaction_out(&mut result.transactional_id);
    }
    for d in &asked.denied_topics {
        r.results_by_topic_v3_and_below.push(
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(d.name.clone()))
                .with_results_by_partition(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
}

/// AddOffsetsToTxn: the transactional id and the group.
pub(super) fn add_offsets_to_txn(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut AddOffsetsToTxnRequest,
) -> Verdict {
    let code = if !ns.transaction_in(asked, &mut r.transactional_id) {
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else if !ns.group_in(asked, &mut r.group_id) {
        GROUP_AUTHORIZATION_FAILED
    } else {
        return Verdict::Forward;
    };
    Verdict::Respond(ResponseKind::AddOffsetsToTxn(
        AddOffsetsToTxnResponse::default().with_error_code(code),
    ))
}

/// TxnOffsetCommit: the transactional id, the group (either refused:
/// every partition gets the error) and the topics.
pub(super) fn txn_offset_commit(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut TxnOffsetCommitRequest,
) -> Verdict {
    let refused = if !ns.transaction_in(asked, &mut r.transactional_id) {
        Some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if !ns.group_in(asked, &mut r.group_id) {
        Some(GROUP_AUTHORIZATION_FAILED)
    } else {
        None
    };
    if let Some(code) = refused {
        for t in r.topics.drain(..) {
            asked.denied_topics.push(DeniedTopic {
                name: t.name.0,
                id: Default::default(),
                partitions: indexes(&t.partitions, |p| p.partition_index),
                code,
            });
        }
    }
    r.topics.retain_mut(|t| {
        let partitions = indexes(&t.partitions, |p| p.partition_index);
        ns.topic_in(asked, &mut t.name, Default::default(), partitions)
    });
    answer_if_empty(r.topics.is_empty(), asked, || {
        let mut answer = TxnOffsetCommitResponse::default();
        txn_offset_commit_out(ns, asked, &mut answer);
        ResponseKind::TxnOffsetCommit(answer)
    })
}

/// TxnOffsetCommit's answer.
pub(super) fn txn_offset_commit_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut TxnOffsetCommitResponse,
) {
    r.topics
        .retain_mut(|t| ns.topic_out(asked, &mut t.name, Default::default()));
    for d in &asked.denied_topics {
        r.topics.push(
            TxnOffsetCommitResponseTopic::default()
                .with_name(TopicName(d.name.clone()))
                .with_partitions(
                    d.partitions
                        .iter()
                        .map(|&p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(d.code)
                        })
                        .collect(),
                ),
        );
    }
}

/// EndTxn.
pub(super) fn end_txn(ns: &Namespace, asked: &mut Asked, r: &mut EndTxnRequest) -> Verdict {
    if ns.transaction_in(asked, &mut r.transactional_id) {
        Verdict::Forward
    } else {
        Verdict::Respond(ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ))
    }
}

/// DescribeTransactions.
pub(super) fn describe_transactions(
    ns: &Namespace,
    asked: &mut Asked,
    r: &mut DescribeTransactionsRequest,
) -> Verdict {
    r.transactional_ids
        .retain_mut(|id| ns.transaction_in(asked, id));
    answer_if_empty(r.transactional_ids.is_empty(), asked, || {
        let mut answer = DescribeTransactionsResponse::default();
        describe_transactions_out(ns, asked, &mut answer);
        ResponseKind::DescribeTransactions(answer)
    })
}

/// DescribeTransactions' answer: ids and their topics renamed back.
pub(super) fn describe_transactions_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut DescribeTransactionsResponse,
) {
    r.transaction_states.retain_mut(|s| {
        s.topics
            .retain_mut(|t| ns.topic_out(asked, &mut t.topic, Default::default()));
        ns.transaction_out(&mut s.transactional_id)
    });
    for id in &asked.denied_transactions {
        r.transaction_states.push(
            TransactionState::default()
                .with_transactional_id(TransactionalId(id.clone()))
                .with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        );
    }
}

/// ListTransactions: a transactional-id pattern (a regex the broker
/// would match against every tenant's ids) is refused.
pub(super) fn list_transactions(ns: &Namespace, r: &mut ListTransactionsRequest) -> Verdict {
    // Without a namespace the answer is filtered by the ACLs alone.
    if r.transactional_id_pattern
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && ns.names().namespaced()
    {
        return Verdict::Respond(ResponseKind::ListTransactions(
            ListTransactionsResponse::default().with_error_code(INVALID_REQUEST),
        ));
    }
    Verdict::Forward
}

/// ListTransactions' answer: only the client's transactions.
pub(super) fn list_transactions_out(
    ns: &Namespace,
    asked: &Asked,
    r: &mut ListTransactionsResponse,
) {
    r.transaction_states.retain_mut(|s| {
        ns.transaction_out(&mut s.transactional_id)
            && ns.describable(asked, Resource::TransactionalId, &s.transactional_id.0)
    });
}

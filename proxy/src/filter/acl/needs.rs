//! What each Kafka API needs of the ACLs, as Kafka's own authorizer asks
//! it: the operation on each topic, group and transactional id a request
//! names. Cluster-level checks (DescribeCluster, ElectLeaders, an
//! idempotent InitProducerId) are made where the namespace filter
//! dispatches the request.

use kafka_protocol::messages::ApiKey;

use super::rules::Operation;

/// The operations one API needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// On each topic it names.
    pub topic: Operation,
    /// On each group it names.
    pub group: Operation,
    /// On each transactional id it names.
    pub transactional_id: Operation,
    /// `create` on the cluster also allows it (CreateTopics, and a
    /// Metadata request that may create topics).
    pub create_on_cluster: bool,
}

impl Default for Needs {
    fn default() -> Self {
        Needs {
            topic: Operation::Describe,
            group: Operation::Describe,
            transactional_id: Operation::Describe,
            create_on_cluster: false,
        }
    }
}

/// What `key` needs.
pub fn needs(key: ApiKey) -> Needs {
    use Operation::*;
    let on = |topic, group, transactional_id| Needs {
        topic,
        group,
        transactional_id,
        create_on_cluster: false,
    };
    match key {
        ApiKey::Produce => on(Write, Describe, Write),
        ApiKey::Fetch | ApiKey::DescribeProducers => on(Read, Describe, Describe),
        ApiKey::DeleteRecords | ApiKey::DeleteTopics => on(Delete, Describe, Describe),
        ApiKey::CreateTopics => Needs {
            create_on_cluster: true,
            ..on(Create, Describe, Describe)
        },
        ApiKey::CreatePartitions => on(Alter, Describe, Describe),
        ApiKey::DescribeConfigs => on(DescribeConfigs, DescribeConfigs, Describe),
        ApiKey::AlterConfigs | ApiKey::IncrementalAlterConfigs => {
            on(AlterConfigs, AlterConfigs, Describe)
        }
        ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::OffsetCommit => on(Read, Read, Describe),
        ApiKey::ConsumerGroupHeartbeat => on(Describe, Read, Describe),
        ApiKey::OffsetDelete => on(Read, Delete, Describe),
        ApiKey::DeleteGroups => on(Describe, Delete, Describe),
        ApiKey::InitProducerId | ApiKey::EndTxn => on(Describe, Describe, Write),
        ApiKey::AddPartitionsToTxn => on(Write, Describe, Write),
        ApiKey::AddOffsetsToTxn | ApiKey::TxnOffsetCommit => on(Read, Read, Write),
        // Metadata, ListOffsets, OffsetForLeaderEpoch, OffsetFetch,
        // FindCoordinator, DescribeGroups, ConsumerGroupDescribe,
        // DescribeTransactions, DescribeTopicPartitions, listings.
        _ => Needs::default(),
    }
}

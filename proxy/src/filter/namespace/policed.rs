//! Which Kafka APIs a namespaced virtual cluster carries: the ones whose
//! names the filter renames, and the few that carry no names at all.
//! Everything else is refused, and a unit test walks every API key the
//! Kafka library knows, so a new version of it cannot open a hole.

use kafka_protocol::messages::ApiKey;

/// APIs whose requests and responses the namespace filter renames.
pub const RENAMED: [ApiKey; 37] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DeleteGroups,
    ApiKey::ElectLeaders,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::OffsetDelete,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::DescribeTopicPartitions,
];

/// APIs that carry no topic, group or transactional id, so they pass a
/// namespace as they are (SASL is the auth hop's).
pub const NAMELESS: [ApiKey; 6] = [
    ApiKey::ApiVersions,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeCluster,
    ApiKey::GetTelemetrySubscriptions,
    ApiKey::PushTelemetry,
];

/// Whether the filter renames `key`'s names.
pub fn renames(key: ApiKey) -> bool {
    RENAMED.contains(&key)
}

/// Whether a namespaced virtual cluster advertises (and carries) `key`.
pub fn advertised(key: ApiKey) -> bool {
    renames(key) || NAMELESS.contains(&key)
}

//! Which Kafka APIs a namespaced virtual cluster carries: the ones whose
//! names the filter renames, and the few that carry no names at all.
//! Everything else is refused, and a unit test walks every API key the
//! Kafka library knows, so a new version of it cannot open a hole.

use kafka_protocol::messages::{self, ApiKey, ResponseKind};

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

/// The answer to an API this filter does not rename, for the APIs whose
/// answer has a top-level error code: `code` there and nothing else
/// (`None` for the others, whose connection is closed instead).
pub(super) fn refused_answer(key: ApiKey, code: i16) -> Option<ResponseKind> {
    Some(match key {
        ApiKey::DescribeAcls => ResponseKind::DescribeAcls(
            messages::DescribeAclsResponse::default().with_error_code(code),
        ),
        ApiKey::DescribeLogDirs => ResponseKind::DescribeLogDirs(
            messages::DescribeLogDirsResponse::default().with_error_code(code),
        ),
        ApiKey::CreateDelegationToken => ResponseKind::CreateDelegationToken(
            messages::CreateDelegationTokenResponse::default().with_error_code(code),
        ),
        ApiKey::RenewDelegationToken => ResponseKind::RenewDelegationToken(
            messages::RenewDelegationTokenResponse::default().with_error_code(code),
        ),
        ApiKey::ExpireDelegationToken => ResponseKind::ExpireDelegationToken(
            messages::ExpireDelegationTokenResponse::default().with_error_code(code),
        ),
        ApiKey::DescribeDelegationToken => ResponseKind::DescribeDelegationToken(
            messages::DescribeDelegationTokenResponse::default().with_error_code(code),
        ),
        ApiKey::DescribeClientQuotas => ResponseKind::DescribeClientQuotas(
            messages::DescribeClientQuotasResponse::default().with_error_code(code),
        ),
        ApiKey::DescribeUserScramCredentials => ResponseKind::DescribeUserScramCredentials(
            messages::DescribeUserScramCredentialsResponse::default().with_error_code(code),
        ),
        ApiKey::Vote => ResponseKind::Vote(messages::VoteResponse::default().with_error_code(code)),
        ApiKey::BeginQuorumEpoch => ResponseKind::BeginQuorumEpoch(
            messages::BeginQuorumEpochResponse::default().with_error_code(code),
        ),
        ApiKey::EndQuorumEpoch => ResponseKind::EndQuorumEpoch(
            messages::EndQuorumEpochResponse::default().with_error_code(code),
        ),
        ApiKey::DescribeQuorum => ResponseKind::DescribeQuorum(
            messages::DescribeQuorumResponse::default().with_error_code(code),
        ),
        ApiKey::AlterPartition => ResponseKind::AlterPartition(
            messages::AlterPartitionResponse::default().with_error_code(code),
        ),
        ApiKey::UpdateFeatures => ResponseKind::UpdateFeatures(
            messages::UpdateFeaturesResponse::default().with_error_code(code),
        ),
        ApiKey::Envelope => {
            ResponseKind::Envelope(messages::EnvelopeResponse::default().with_error_code(code))
        }
        ApiKey::FetchSnapshot => ResponseKind::FetchSnapshot(
            messages::FetchSnapshotResponse::default().with_error_code(code),
        ),
        ApiKey::BrokerRegistration => ResponseKind::BrokerRegistration(
            messages::BrokerRegistrationResponse::default().with_error_code(code),
        ),
        ApiKey::BrokerHeartbeat => ResponseKind::BrokerHeartbeat(
            messages::BrokerHeartbeatResponse::default().with_error_code(code),
        ),
        ApiKey::UnregisterBroker => ResponseKind::UnregisterBroker(
            messages::UnregisterBrokerResponse::default().with_error_code(code),
        ),
        ApiKey::AllocateProducerIds => ResponseKind::AllocateProducerIds(
            messages::AllocateProducerIdsResponse::default().with_error_code(code),
        ),
        ApiKey::ControllerRegistration => ResponseKind::ControllerRegistration(
            messages::ControllerRegistrationResponse::default().with_error_code(code),
        ),
        ApiKey::AssignReplicasToDirs => ResponseKind::AssignReplicasToDirs(
            messages::AssignReplicasToDirsResponse::default().with_error_code(code),
        ),
        ApiKey::ListConfigResources => ResponseKind::ListConfigResources(
            messages::ListConfigResourcesResponse::default().with_error_code(code),
        ),
        ApiKey::ShareGroupHeartbeat => ResponseKind::ShareGroupHeartbeat(
            messages::ShareGroupHeartbeatResponse::default().with_error_code(code),
        ),
        ApiKey::ShareFetch => {
            ResponseKind::ShareFetch(messages::ShareFetchResponse::default().with_error_code(code))
        }
        ApiKey::ShareAcknowledge => ResponseKind::ShareAcknowledge(
            messages::ShareAcknowledgeResponse::default().with_error_code(code),
        ),
        ApiKey::AddRaftVoter => ResponseKind::AddRaftVoter(
            messages::AddRaftVoterResponse::default().with_error_code(code),
        ),
        ApiKey::RemoveRaftVoter => ResponseKind::RemoveRaftVoter(
            messages::RemoveRaftVoterResponse::default().with_error_code(code),
        ),
        ApiKey::UpdateRaftVoter => ResponseKind::UpdateRaftVoter(
            messages::UpdateRaftVoterResponse::default().with_error_code(code),
        ),
        ApiKey::AlterShareGroupOffsets => ResponseKind::AlterShareGroupOffsets(
            messages::AlterShareGroupOffsetsResponse::default().with_error_code(code),
        ),
        ApiKey::DeleteShareGroupOffsets => ResponseKind::DeleteShareGroupOffsets(
            messages::DeleteShareGroupOffsetsResponse::default().with_error_code(code),
        ),
        _ => return None,
    })
}

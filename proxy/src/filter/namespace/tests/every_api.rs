//! Fail closed over every API key the Kafka library knows: each is
//! renamed or refused, advertised only when policed, and every refusal
//! answer encodes; hostile array counts are decode errors.

use super::*;

fn default_request(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => RequestKind::Produce(Default::default()),
        ApiKey::Fetch => RequestKind::Fetch(Default::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
        ApiKey::Metadata => RequestKind::Metadata(Default::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(Default::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(Default::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(Default::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(Default::default()),
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(Default::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(Default::default()),
        ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(Default::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(Default::default()),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(Default::default()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(Default::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(Default::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
        ApiKey::AlterReplicaLogDirs => RequestKind::AlterReplicaLogDirs(Default::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(Default::default()),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(Default::default()),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
        ApiKey::CreateDelegationToken => RequestKind::CreateDelegationToken(Default::default()),
        ApiKey::RenewDelegationToken => RequestKind::RenewDelegationToken(Default::default()),
        ApiKey::ExpireDelegationToken => RequestKind::ExpireDelegationToken(Default::default()),
        ApiKey::DescribeDelegationToken => RequestKind::DescribeDelegationToken(Default::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(Default::default()),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(Default::default()),
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(Default::default())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(Default::default())
        }
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(Default::default()),
        ApiKey::DescribeClientQuotas => RequestKind::DescribeClientQuotas(Default::default()),
        ApiKey::AlterClientQuotas => RequestKind::AlterClientQuotas(Default::default()),
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(Default::default())
        }
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(Default::default())
        }
        ApiKey::Vote => RequestKind::Vote(Default::default()),
        ApiKey::BeginQuorumEpoch => RequestKind::BeginQuorumEpoch(Default::default()),
        ApiKey::EndQuorumEpoch => RequestKind::EndQuorumEpoch(Default::default()),
        ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(Default::default()),
        ApiKey::AlterPartition => RequestKind::AlterPartition(Default::default()),
        ApiKey::UpdateFeatures => RequestKind::UpdateFeatures(Default::default()),
        ApiKey::Envelope => RequestKind::Envelope(Default::default()),
        ApiKey::FetchSnapshot => RequestKind::FetchSnapshot(Default::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(Default::default()),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(Default::default()),
        ApiKey::BrokerRegistration => RequestKind::BrokerRegistration(Default::default()),
        ApiKey::BrokerHeartbeat => RequestKind::BrokerHeartbeat(Default::default()),
        ApiKey::UnregisterBroker => RequestKind::UnregisterBroker(Default::default()),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(Default::default()),
        ApiKey::ListTransactions => RequestKind::ListTransactions(Default::default()),
        ApiKey::AllocateProducerIds => RequestKind::AllocateProducerIds(Default::default()),
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(Default::default()),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(Default::default()),
        ApiKey::ControllerRegistration => RequestKind::ControllerRegistration(Default::default()),
        ApiKey::GetTelemetrySubscriptions => {
            RequestKind::GetTelemetrySubscriptions(Default::default())
        }
        ApiKey::PushTelemetry => RequestKind::PushTelemetry(Default::default()),
        ApiKey::AssignReplicasToDirs => RequestKind::AssignReplicasToDirs(Default::default()),
        ApiKey::ListConfigResources => RequestKind::ListConfigResources(Default::default()),
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(Default::default()),
        ApiKey::ShareGroupHeartbeat => RequestKind::ShareGroupHeartbeat(Default::default()),
        ApiKey::ShareGroupDescribe => RequestKind::ShareGroupDescribe(Default::default()),
        ApiKey::ShareFetch => RequestKind::ShareFetch(Default::default()),
        ApiKey::ShareAcknowledge => RequestKind::ShareAcknowledge(Default::default()),
        ApiKey::AddRaftVoter => RequestKind::AddRaftVoter(Default::default()),
        ApiKey::RemoveRaftVoter => RequestKind::RemoveRaftVoter(Default::default()),
        ApiKey::UpdateRaftVoter => RequestKind::UpdateRaftVoter(Default::default()),
        ApiKey::InitializeShareGroupState => {
            RequestKind::InitializeShareGroupState(Default::default())
        }
        ApiKey::ReadShareGroupState => RequestKind::ReadShareGroupState(Default::default()),
        ApiKey::WriteShareGroupState => RequestKind::WriteShareGroupState(Default::default()),
        ApiKey::DeleteShareGroupState => RequestKind::DeleteShareGroupState(Default::default()),
        ApiKey::ReadShareGroupStateSummary => {
            RequestKind::ReadShareGroupStateSummary(Default::default())
        }
        ApiKey::DescribeShareGroupOffsets => {
            RequestKind::DescribeShareGroupOffsets(Default::default())
        }
        ApiKey::AlterShareGroupOffsets => RequestKind::AlterShareGroupOffsets(Default::default()),
        ApiKey::DeleteShareGroupOffsets => RequestKind::DeleteShareGroupOffsets(Default::default()),
    }
}

#[test]
fn every_api_key_is_renamed_or_refused() {
    let ns = namespace(NamespaceMode::HidePrefix, "every-key");
    let interest = ns.interest();
    for key in ApiKey::iter() {
        let version = key.valid_versions().max;
        let sasl_or_versions = matches!(
            key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        assert_eq!(
            interest.wants_request(key as i16, version),
            !sasl_or_versions,
            "{key:?}: every request but SASL and ApiVersions is intercepted"
        );
        if sasl_or_versions {
            continue;
        }
        let (verdict, _, _) = exchange(&ns, key, version, default_request(key), None);
        if !policed::advertised(key) {
            assert_eq!(
                matches!(verdict, Verdict::Respond(_)),
                policed::refused_answer(key, CLUSTER_AUTHORIZATION_FAILED).is_some(),
                "{key:?}: answered with its error when it has one, closed otherwise"
            );
        }
        match verdict {
            Verdict::Respond(_) if !policed::advertised(key) => {}
            Verdict::Close(e) => {
                assert!(
                    !policed::advertised(key),
                    "{key:?} is advertised but refused"
                );
                assert_eq!(
                    (e.hop, e.kind),
                    (Hop::Policy, Kind::UnpolicedApi),
                    "{key:?}"
                );
                assert!(e.message.contains(&format!("{key:?}")), "{}", e.message);
            }
            _ => assert!(
                policed::advertised(key),
                "{key:?} passes but is not policed"
            ),
        }
        if policed::renames(key) {
            assert!(
                interest.wants_response(key as i16, version),
                "{key:?} answers"
            );
        }
    }
}

#[test]
fn api_versions_advertises_only_policed_apis() {
    use kafka_protocol::messages::{ApiVersionsResponse, api_versions_response::ApiVersion};
    let ns = namespace(NamespaceMode::HidePrefix, "versions");
    let all = ApiKey::iter()
        .map(|k| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_max_version(3)
        })
        .collect();
    let (_, _, answer) = exchange(
        &ns,
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(Default::default()),
        Some(ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_api_keys(all),
        )),
    );
    let Some(ResponseKind::ApiVersions(r)) = answer else {
        panic!()
    };
    let keys: Vec<ApiKey> = r
        .api_keys
        .iter()
        .map(|k| ApiKey::try_from(k.api_key).unwrap())
        .collect();
    assert!(keys.contains(&ApiKey::Produce) && keys.contains(&ApiKey::SaslHandshake));
    assert!(!keys.contains(&ApiKey::CreateAcls), "{keys:?}");
    assert!(!keys.contains(&ApiKey::DescribeLogDirs), "{keys:?}");
}

#[test]
fn a_huge_array_count_is_a_decode_error_not_an_abort() {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::Encodable;
    // Metadata v1 claiming i32::MAX topics in a 4-byte body: the Kafka
    // library reserved that many up front and the process aborted
    // (third_party/kafka-protocol/SLUICE-PATCH.md).
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(1)
        .encode(&mut frame, ApiKey::Metadata.request_header_version(1))
        .unwrap();
    frame.put_i32(i32::MAX);
    let refused = metadata_v1_through_chain(frame.freeze()).unwrap_err();
    assert_eq!(refused.kind, Kind::UndecodableRequest, "{refused:?}");
}

#[test]
fn a_request_of_too_many_elements_is_a_decode_error() {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::Encodable;
    // 300,000 empty topic names: 600 KB on the wire, tens of MB decoded.
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(1)
        .encode(&mut frame, ApiKey::Metadata.request_header_version(1))
        .unwrap();
    frame.put_i32(300_000);
    for _ in 0..300_000 {
        frame.put_i16(0);
    }
    let refused = metadata_v1_through_chain(frame.freeze()).unwrap_err();
    assert!(
        refused.message.contains("more array elements"),
        "{refused:?}"
    );
}

#[test]
fn every_refusal_answer_encodes_at_every_version() {
    use bytes::BytesMut;
    for key in ApiKey::iter() {
        let Some(answer) = policed::refused_answer(key, CLUSTER_AUTHORIZATION_FAILED) else {
            continue;
        };
        let versions = key.valid_versions();
        for version in versions.min..=versions.max {
            let mut out = BytesMut::new();
            answer
                .encode(&mut out, version)
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
        }
    }
}

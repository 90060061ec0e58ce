//! A request's and a response's API, dispatched to the family of APIs
//! that renames and checks its names (data, groups, admin, txn), with the
//! ACL decisions of the request made first (gate).

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};

use super::{
    Asked, CLUSTER_AUTHORIZATION_FAILED, Namespace, admin, data, gate, groups, listing, policed,
    report::{refusal, unpoliced},
    txn,
};
use crate::filter::{Context, InFlight, Verdict, acl};

impl Namespace {
    /// Every name of a request through the namespace and the ACLs.
    pub(super) fn walk(
        &self,
        cx: &mut Context<'_>,
        header: &mut RequestHeader,
        body: &mut RequestKind,
    ) -> Verdict {
        let mut asked = Asked::default();
        let api = ApiKey::try_from(header.request_api_key).ok();
        if let Some(acls) = &self.acls {
            let principal = cx
                .principal
                .map_or_else(|| "User:ANONYMOUS".to_string(), |p| p.to_string());
            let api_name = api.map_or_else(String::new, |k| format!("{k:?}"));
            let values = [
                ("principal", principal.as_str()),
                ("client_id", header.client_id.as_deref().unwrap_or("")),
                ("virtual_cluster", cx.route.virtual_cluster.id.as_str()),
                ("listener", cx.route.listener_id.as_str()),
                ("api", api_name.as_str()),
            ];
            asked.access = Some(acls.access(&principal, &values));
            asked.needs = api.map(acl::needs).unwrap_or_default();
        }
        let gated = match asked.access.as_mut() {
            Some(access) => gate::request(self, access, api, header.request_api_version, body),
            None => None,
        };
        let verdict = if let Some(verdict) = gated {
            verdict
        } else {
            match body {
                RequestKind::Produce(r) => data::produce(self, &mut asked, r),
                RequestKind::Fetch(r) => data::fetch(self, &mut asked, r),
                RequestKind::ListOffsets(r) => data::list_offsets(self, &mut asked, r),
                RequestKind::OffsetForLeaderEpoch(r) => {
                    data::offset_for_leader_epoch(self, &mut asked, r)
                }
                RequestKind::DeleteRecords(r) => data::delete_records(self, &mut asked, r),
                RequestKind::DescribeProducers(r) => data::describe_producers(self, &mut asked, r),
                RequestKind::Metadata(r) => {
                    listing::metadata(self, &mut asked, r, header.request_api_version)
                }
                RequestKind::CreateTopics(r) => admin::create_topics(self, &mut asked, r),
                RequestKind::DeleteTopics(r) => admin::delete_topics(self, &mut asked, r),
                RequestKind::CreatePartitions(r) => admin::create_partitions(self, &mut asked, r),
                RequestKind::DescribeConfigs(r) => admin::describe_configs(self, &mut asked, r),
                RequestKind::AlterConfigs(r) => admin::alter_configs(self, &mut asked, r),
                RequestKind::IncrementalAlterConfigs(r) => {
                    admin::incremental_alter_configs(self, &mut asked, r)
                }
                RequestKind::ElectLeaders(r) => admin::elect_leaders(self, &mut asked, r),
                RequestKind::AlterPartitionReassignments(r) => {
                    admin::alter_partition_reassignments(self, &mut asked, r)
                }
                RequestKind::ListPartitionReassignments(r) => {
                    admin::list_partition_reassignments(self, &mut asked, r)
                }
                RequestKind::DescribeTopicPartitions(r) => {
                    listing::describe_topic_partitions(self, &mut asked, r)
                }
                RequestKind::DescribeCluster(_) => Verdict::Forward,
                RequestKind::FindCoordinator(r) => {
                    groups::find_coordinator(self, &mut asked, r, header.request_api_version)
                }
                RequestKind::JoinGroup(r) => groups::join_group(self, &mut asked, r),
                RequestKind::SyncGroup(r) => groups::sync_group(self, &mut asked, r),
                RequestKind::Heartbeat(r) => groups::heartbeat(self, &mut asked, r),
                RequestKind::LeaveGroup(r) => groups::leave_group(self, &mut asked, r),
                RequestKind::OffsetCommit(r) => groups::offset_commit(self, &mut asked, r),
                RequestKind::OffsetFetch(r) => groups::offset_fetch(self, &mut asked, r),
                RequestKind::OffsetDelete(r) => groups::offset_delete(self, &mut asked, r),
                RequestKind::DescribeGroups(r) => groups::describe_groups(self, &mut asked, r),
                RequestKind::ListGroups(_) => Verdict::Forward,
                RequestKind::DeleteGroups(r) => groups::delete_groups(self, &mut asked, r),
                RequestKind::ConsumerGroupHeartbeat(r) => {
                    groups::consumer_group_heartbeat(self, &mut asked, r)
                }
                RequestKind::ConsumerGroupDescribe(r) => {
                    groups::consumer_group_describe(self, &mut asked, r)
                }
                RequestKind::InitProducerId(r) => txn::init_producer_id(self, &mut asked, r),
                RequestKind::AddPartitionsToTxn(r) => {
                    txn::add_partitions_to_txn(self, &mut asked, r)
                }
                RequestKind::AddOffsetsToTxn(r) => txn::add_offsets_to_txn(self, &mut asked, r),
                RequestKind::TxnOffsetCommit(r) => txn::txn_offset_commit(self, &mut asked, r),
                RequestKind::EndTxn(r) => txn::end_txn(self, &mut asked, r),
                RequestKind::DescribeTransactions(r) => {
                    txn::describe_transactions(self, &mut asked, r)
                }
                RequestKind::ListTransactions(r) => txn::list_transactions(self, r),
                RequestKind::GetTelemetrySubscriptions(_)
                | RequestKind::PushTelemetry(_)
                | RequestKind::ApiVersions(_)
                | RequestKind::SaslHandshake(_)
                | RequestKind::SaslAuthenticate(_) => Verdict::Forward,
                _ if !self.polices() => Verdict::Forward,
                _ => {
                    // Refused, never forwarded: answered with the API's own
                    // error where its answer has one, the connection closed
                    // otherwise (as a broker does for an API it lacks).
                    let refusal = unpoliced(cx, header.request_api_key, header.request_api_version);
                    match ApiKey::try_from(header.request_api_key)
                        .ok()
                        .and_then(|k| policed::refused_answer(k, CLUSTER_AUTHORIZATION_FAILED))
                    {
                        Some(answer) => {
                            cx.findings.warnings.push(refusal);
                            Verdict::Respond(answer)
                        }
                        None => Verdict::Close(refusal),
                    }
                }
            }
        };
        if self.names.renames()
            && let Some(refusal) = refusal(cx, header.request_api_key, &asked)
        {
            cx.findings.warnings.push(refusal);
        }
        if let Some(access) = &mut asked.access {
            gate::report(cx, api, access);
        }
        cx.notes.put(asked);
        verdict
    }

    /// Every name of an answer back to the client's.
    pub(super) fn answer(
        &self,
        cx: &mut Context<'_>,
        body: &mut ResponseKind,
        in_flight: &InFlight,
    ) -> Verdict {
        let asked = cx.notes.take::<Asked>().unwrap_or_default();
        let v = in_flight.version;
        match body {
            ResponseKind::ApiVersions(r) if self.polices() => {
                r.api_keys
                    .retain(|k| ApiKey::try_from(k.api_key).is_ok_and(policed::advertised));
                if self.acls.as_ref().is_some_and(|a| a.decides()) {
                    gate::advertise(r);
                }
            }
            ResponseKind::Produce(r) => data::produce_out(self, &asked, r),
            ResponseKind::Fetch(r) => data::fetch_out(self, &asked, r),
            ResponseKind::ListOffsets(r) => data::list_offsets_out(self, &asked, r),
            ResponseKind::OffsetForLeaderEpoch(r) => {
                data::offset_for_leader_epoch_out(self, &asked, r)
            }
            ResponseKind::DeleteRecords(r) => data::delete_records_out(self, &asked, r),
            ResponseKind::DescribeProducers(r) => data::describe_producers_out(self, &asked, r),
            ResponseKind::Metadata(r) => listing::metadata_out(self, &asked, r),
            ResponseKind::CreateTopics(r) => admin::create_topics_out(self, &asked, r),
            ResponseKind::DeleteTopics(r) => admin::delete_topics_out(self, &asked, r),
            ResponseKind::CreatePartitions(r) => admin::create_partitions_out(self, &asked, r),
            ResponseKind::DescribeConfigs(r) => admin::describe_configs_out(self, &asked, r),
            ResponseKind::AlterConfigs(r) => admin::alter_configs_out(self, &asked, r),
            ResponseKind::IncrementalAlterConfigs(r) => {
                admin::incremental_alter_configs_out(self, &asked, r)
            }
            ResponseKind::ElectLeaders(r) => admin::elect_leaders_out(self, &asked, r),
            ResponseKind::AlterPartitionReassignments(r) => {
                admin::alter_partition_reassignments_out(self, &asked, r)
            }
            ResponseKind::ListPartitionReassignments(r) => {
                admin::list_partition_reassignments_out(self, &asked, r)
            }
            ResponseKind::DescribeTopicPartitions(r) => {
                listing::describe_topic_partitions_out(self, &asked, r)
            }
            ResponseKind::FindCoordinator(r) => groups::find_coordinator_out(self, &asked, r, v),
            ResponseKind::JoinGroup(r) => groups::join_group_out(self, &asked, r),
            ResponseKind::SyncGroup(r) => groups::sync_group_out(self, &asked, r),
            ResponseKind::OffsetCommit(r) => groups::offset_commit_out(self, &asked, r),
            ResponseKind::OffsetFetch(r) => groups::offset_fetch_out(self, &asked, r),
            ResponseKind::OffsetDelete(r) => groups::offset_delete_out(self, &asked, r),
            ResponseKind::DescribeGroups(r) => groups::describe_groups_out(self, &asked, r),
            ResponseKind::ListGroups(r) => groups::list_groups_out(self, &asked, r),
            ResponseKind::DeleteGroups(r) => groups::delete_groups_out(self, &asked, r),
            ResponseKind::ConsumerGroupHeartbeat(r) => {
                groups::consumer_group_heartbeat_out(self, r)
            }
            ResponseKind::ConsumerGroupDescribe(r) => {
                groups::consumer_group_describe_out(self, &asked, r)
            }
            ResponseKind::AddPartitionsToTxn(r) => txn::add_partitions_to_txn_out(self, &asked, r),
            ResponseKind::TxnOffsetCommit(r) => txn::txn_offset_commit_out(self, &asked, r),
            ResponseKind::DescribeTransactions(r) => {
                txn::describe_transactions_out(self, &asked, r)
            }
            ResponseKind::ListTransactions(r) => txn::list_transactions_out(self, &asked, r),
            _ => {}
        }
        Verdict::Forward
    }
}

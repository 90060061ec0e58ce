//! Namespaces and topic aliases: the filter that lets teams share one
//! backend cluster. Every topic name, consumer-group id and transactional
//! id in a request is turned into its backend name (or refused with the
//! API's own authorization error when it is outside the namespace), and
//! every one in a response back into the client's (or dropped when the
//! client may not see it). Topic ids are as hidden as their names.
//!
//! Fail closed: in a namespaced virtual cluster this filter intercepts
//! every request. An API it does not rename ([`policed`]) is refused,
//! never forwarded: answered with CLUSTER_AUTHORIZATION_FAILED where its
//! answer has a top-level error code, the connection closed otherwise (as
//! a broker does for an API it does not support), counted at `hop=policy
//! kind=unpoliced_api`; ApiVersions advertises only the APIs it renames.
//! One module per family of APIs.

mod admin;
mod consumer_protocol;
mod data;
mod gate;
mod groups;
mod names;
pub mod policed;
mod topic_ids;
mod txn;

pub use names::{Names, Resource, glob};
pub use topic_ids::TopicIds;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use kafka_protocol::{
    messages::{
        ApiKey, GroupId, RequestHeader, RequestKind, ResponseKind, TopicName, TransactionalId,
    },
    protocol::StrBytes,
};
use uuid::Uuid;

use super::{
    Context, Filter, InFlight, Interest, Verdict,
    acl::{self, Access, AclPolicies, Needs, Operation, ResourceType},
};
use crate::hop::{Hop, HopError, Kind};

/// `TOPIC_AUTHORIZATION_FAILED`.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// `GROUP_AUTHORIZATION_FAILED`.
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
/// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`.
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
/// `UNKNOWN_TOPIC_ID`: what a client sees for an id it may not know.
pub const UNKNOWN_TOPIC_ID: i16 = 100;
/// `INVALID_REQUEST`.
pub const INVALID_REQUEST: i16 = 42;
/// `CLUSTER_AUTHORIZATION_FAILED`.
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// The namespace (and alias) filter of one virtual cluster, which also
/// asks its gateway ACLs about every name it renames.
#[derive(Debug)]
pub struct Namespace {
    names: Names,
    ids: Arc<TopicIds>,
    acls: Option<Arc<AclPolicies>>,
}

/// A topic a request named that the client may not use: answered by the
/// filter with `code`, the other topics of the request going on.
#[derive(Debug, Clone)]
pub(crate) struct DeniedTopic {
    /// The client's name for it (empty when named by id).
    pub name: StrBytes,
    /// Its id, when the request used one.
    pub id: Uuid,
    /// The partitions the request named.
    pub partitions: Vec<i32>,
    /// The error each partition gets.
    pub code: i16,
}

/// What one request's renaming leaves for its response.
#[derive(Debug, Default)]
pub(crate) struct Asked {
    /// Backend topic name → the name the client used (an alias, say).
    pub topics: HashMap<StrBytes, StrBytes>,
    /// Topics refused, answered by the filter.
    pub denied_topics: Vec<DeniedTopic>,
    /// Group ids (client names) refused.
    pub denied_groups: Vec<StrBytes>,
    /// Transactional ids (client names) refused.
    pub denied_transactions: Vec<StrBytes>,
    /// Config resources refused: type, client name, error.
    pub denied_resources: Vec<(i8, StrBytes, i16)>,
    /// The request was a classic group's of the consumer protocol (its
    /// answer's member bytes hold topic names).
    pub consumer_protocol: Option<bool>,
    /// The request's ACL decisions (gateway ACLs only).
    pub access: Option<Access>,
    /// What the request's API needs of the ACLs.
    pub needs: Needs,
    /// Names (as the client wrote them) refused by the ACLs rather than
    /// the namespace: reported as ACL denials.
    pub acl_refused: HashSet<(Resource, StrBytes)>,
}

impl Namespace {
    /// The filter for `names` in front of backend cluster `backend_id`,
    /// deciding `acls` too when the gateway enforces ACLs.
    pub fn new(names: Names, backend_id: &str, acls: Option<Arc<AclPolicies>>) -> Namespace {
        Namespace {
            names,
            ids: TopicIds::of_backend(backend_id),
            acls,
        }
    }

    /// Asks the ACLs (when the gateway enforces them) for the operation
    /// the request's API needs on `name` (the name the rules use: the
    /// topic an alias stands for); false, and `written` (the client's
    /// name) kept as an ACL refusal, when it is denied.
    fn permitted(
        &self,
        asked: &mut Asked,
        resource: Resource,
        name: &str,
        written: &StrBytes,
    ) -> bool {
        let Some(access) = asked.access.as_mut() else {
            return true;
        };
        let needs = asked.needs;
        let (resource_type, operation) = match resource {
            Resource::Topic => (ResourceType::Topic, needs.topic),
            Resource::Group => (ResourceType::Group, needs.group),
            Resource::TransactionalId => (ResourceType::TransactionalId, needs.transactional_id),
        };
        if resource == Resource::Topic
            && needs.create_on_cluster
            && access.may(ResourceType::Cluster, acl::CLUSTER, Operation::Create)
        {
            return true;
        }
        if access.permit(resource_type, name, operation) {
            return true;
        }
        asked.acl_refused.insert((resource, written.clone()));
        false
    }

    /// Replaces a broker's `authorized_operations` bit set for `name` with
    /// the gateway's decisions (left alone when not asked for:
    /// `i32::MIN`, or without gateway ACLs).
    pub(crate) fn authorized_operations(
        &self,
        asked: &Asked,
        resource: Resource,
        name: &str,
        field: &mut i32,
    ) {
        let Some(access) = asked.access.as_ref().filter(|a| a.decides()) else {
            return;
        };
        if *field == i32::MIN {
            return;
        }
        let (resource_type, name) = match resource {
            Resource::Topic => (ResourceType::Topic, self.names.unalias(name)),
            Resource::Group => (ResourceType::Group, name),
            Resource::TransactionalId => (ResourceType::TransactionalId, name),
        };
        *field = access.authorized_operations(resource_type, name);
    }

    /// Whether the principal may read the topic the client knows as `name`
    /// (or by `id`) under the gateway's ACLs, for a Fetch answer.
    pub(crate) fn may_read(&self, asked: &Asked, name: &TopicName, id: Uuid) -> bool {
        let Some(access) = asked.access.as_ref().filter(|a| a.decides()) else {
            return true;
        };
        let shown = if name.0.is_empty() {
            self.ids
                .name(id)
                .and_then(|backend| self.names.outward(Resource::Topic, &backend))
        } else {
            Some(self.names.unalias(&name.0).to_string())
        };
        shown.is_some_and(|n| access.may(ResourceType::Topic, &n, Operation::Read))
    }

    /// Whether a listing may show the topic the client knows as `name`
    /// (after renaming back): `describe` on it.
    pub(crate) fn describable(&self, asked: &Asked, resource: Resource, name: &str) -> bool {
        let Some(access) = &asked.access else {
            return true;
        };
        let resource_type = match resource {
            Resource::Topic => ResourceType::Topic,
            Resource::Group => ResourceType::Group,
            Resource::TransactionalId => ResourceType::TransactionalId,
        };
        let name = match resource {
            Resource::Topic => self.names.unalias(name),
            _ => name,
        };
        access.may(resource_type, name, Operation::Describe)
    }

    /// Renames a request's topic (by name) or checks it (by id); false
    /// when it is refused (recorded in `asked` with its partitions).
    pub(crate) fn topic_in(
        &self,
        asked: &mut Asked,
        name: &mut TopicName,
        id: Uuid,
        partitions: Vec<i32>,
    ) -> bool {
        if !name.0.is_empty() && !id.is_nil() {
            // A name and an id at once (the broker refuses it, but may echo
            // both): neither goes to the broker, so no answer can pair a
            // foreign id with a name of this tenant's.
            asked.denied_topics.push(DeniedTopic {
                name: name.0.clone(),
                id,
                partitions,
                code: UNKNOWN_TOPIC_ID,
            });
            return false;
        }
        if name.0.is_empty() {
            let shown = self
                .ids
                .name(id)
                .and_then(|backend| self.names.outward(Resource::Topic, &backend));
            let Some(shown) = shown else {
                asked.denied_topics.push(DeniedTopic {
                    name: StrBytes::default(),
                    id,
                    partitions,
                    code: UNKNOWN_TOPIC_ID,
                });
                return false;
            };
            if !self.permitted(asked, Resource::Topic, &shown, &name.0) {
                asked.denied_topics.push(DeniedTopic {
                    name: StrBytes::default(),
                    id,
                    partitions,
                    code: TOPIC_AUTHORIZATION_FAILED,
                });
                return false;
            }
            return true;
        }
        match self.names.inward(Resource::Topic, &name.0) {
            Some(backend) => {
                let backend = StrBytes::from_string(backend);
                let unaliased = self.names.unalias(&name.0).to_string();
                if !self.permitted(asked, Resource::Topic, &unaliased, &name.0) {
                    asked.denied_topics.push(DeniedTopic {
                        name: name.0.clone(),
                        id,
                        partitions,
                        code: TOPIC_AUTHORIZATION_FAILED,
                    });
                    return false;
                }
                // A topic named twice under different names (an alias and
                // its topic) in one request: its answer could carry only
                // one of them, so the second is refused.
                if asked
                    .topics
                    .get(&backend)
                    .is_some_and(|first| *first != name.0)
                {
                    asked.denied_topics.push(DeniedTopic {
                        name: name.0.clone(),
                        id,
                        partitions,
                        code: INVALID_REQUEST,
                    });
                    return false;
                }
                asked.topics.insert(backend.clone(), name.0.clone());
                name.0 = backend;
                true
            }
            None => {
                asked.denied_topics.push(DeniedTopic {
                    name: name.0.clone(),
                    id,
                    partitions,
                    code: TOPIC_AUTHORIZATION_FAILED,
                });
                false
            }
        }
    }

    /// As [`Namespace::topic_in`] for a request that changes the topic
    /// itself (create, delete, configs, partitions, records): a topic
    /// shared through `additional` may be used, not changed, by a tenant.
    pub(crate) fn owned_topic_in(
        &self,
        asked: &mut Asked,
        name: &mut TopicName,
        id: Uuid,
        partitions: Vec<i32>,
    ) -> bool {
        let shared = if name.0.is_empty() {
            self.ids
                .name(id)
                .is_some_and(|backend| self.names.is_extra_backend(Resource::Topic, &backend))
        } else {
            self.names.is_extra(Resource::Topic, &name.0)
        };
        if shared {
            asked.denied_topics.push(DeniedTopic {
                name: name.0.clone(),
                id,
                partitions,
                code: TOPIC_AUTHORIZATION_FAILED,
            });
            return false;
        }
        self.topic_in(asked, name, id, partitions)
    }

    /// Records the topic ids a broker's own answer pairs with names
    /// (Metadata, DescribeTopicPartitions, a created topic): the only
    /// source of the id map, so no request can plant an entry.
    pub(crate) fn learn_id(&self, name: &TopicName, id: Uuid) {
        self.ids.learn(id, &name.0);
    }

    /// Renames a response's topic back; false when the client may not
    /// see it (the entry is dropped).
    pub(crate) fn topic_out(&self, asked: &Asked, name: &mut TopicName, id: Uuid) -> bool {
        if name.0.is_empty() {
            // By id only: the request's ids were checked on the way in;
            // any other id must be one the client may see.
            return self
                .ids
                .name(id)
                .is_some_and(|backend| self.names.outward(Resource::Topic, &backend).is_some());
        }
        if let Some(client) = asked.topics.get(&name.0) {
            name.0 = client.clone();
            return true;
        }
        match self.names.outward(Resource::Topic, &name.0) {
            Some(client) => {
                name.0 = StrBytes::from_string(client);
                true
            }
            None => false,
        }
    }

    /// A nullable response topic name, as [`Namespace::topic_out`].
    pub(crate) fn optional_topic_out(
        &self,
        asked: &Asked,
        name: &mut Option<TopicName>,
        id: Uuid,
    ) -> bool {
        match name {
            Some(n) => self.topic_out(asked, n, id),
            None => {
                let mut by_id = TopicName::default();
                self.topic_out(asked, &mut by_id, id)
            }
        }
    }

    /// Renames a group id; false when refused (recorded in `asked`).
    pub(crate) fn group_in(&self, asked: &mut Asked, group: &mut GroupId) -> bool {
        self.rename_in(asked, Resource::Group, &mut group.0)
    }

    /// As [`Namespace::group_in`] for a request that deletes the group or
    /// its offsets: a group shared through `additional` is not a tenant's
    /// to delete.
    pub(crate) fn owned_group_in(&self, asked: &mut Asked, group: &mut GroupId) -> bool {
        if self.names.is_extra(Resource::Group, &group.0) {
            asked.denied_groups.push(group.0.clone());
            return false;
        }
        self.group_in(asked, group)
    }

    /// Renames a group id back; false when the client may not see it.
    pub(crate) fn group_out(&self, group: &mut GroupId) -> bool {
        self.rename_out(Resource::Group, &mut group.0)
    }

    /// Renames a transactional id; false when refused.
    pub(crate) fn transaction_in(&self, asked: &mut Asked, id: &mut TransactionalId) -> bool {
        self.rename_in(asked, Resource::TransactionalId, &mut id.0)
    }

    /// Renames a transactional id back; false when the client may not
    /// see it.
    pub(crate) fn transaction_out(&self, id: &mut TransactionalId) -> bool {
        self.rename_out(Resource::TransactionalId, &mut id.0)
    }

    /// Renames a group or transactional id in place; false (and the
    /// client's name recorded in `asked`) when it is outside the namespace
    /// or denied by the ACLs.
    pub(crate) fn rename_in(
        &self,
        asked: &mut Asked,
        resource: Resource,
        name: &mut StrBytes,
    ) -> bool {
        let renamed = self
            .names
            .inward(resource, name)
            .filter(|_| self.permitted(asked, resource, &name.clone(), name));
        match renamed {
            Some(backend) => {
                *name = StrBytes::from_string(backend);
                true
            }
            None => {
                match resource {
                    Resource::TransactionalId => asked.denied_transactions.push(name.clone()),
                    _ => asked.denied_groups.push(name.clone()),
                }
                false
            }
        }
    }

    /// Renames any backend name of `resource` back; false when hidden.
    pub(crate) fn rename_out(&self, resource: Resource, name: &mut StrBytes) -> bool {
        match self.names.outward(resource, name) {
            Some(client) => {
                *name = StrBytes::from_string(client);
                true
            }
            None => false,
        }
    }

    /// Whether this filter polices what clients do: it renames names or
    /// the gateway decides ACLs. Otherwise (ACL policies only reported,
    /// `acl_mode = passthrough`) it changes nothing a client sees:
    /// every API is forwarded and advertised as the broker does.
    pub(crate) fn polices(&self) -> bool {
        self.names.renames() || self.acls.as_ref().is_some_and(|a| a.decides())
    }

    /// The name mapping.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The topic ids of its backend.
    pub(crate) fn ids(&self) -> &TopicIds {
        &self.ids
    }
}

impl Filter for Namespace {
    fn name(&self) -> &'static str {
        "namespace"
    }

    fn interest(&self) -> Interest {
        let mut interest = Interest::new();
        for key in ApiKey::iter() {
            // The gate owns SASL; ApiVersions requests carry no names.
            if matches!(
                key,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            ) {
                continue;
            }
            interest = interest.requests(key, ..);
            if policed::renames(key) && self.polices() {
                interest = interest.responses(key, ..);
            }
        }
        if !self.polices() {
            // Reporting only: answers are read for topic ids, not changed.
            return [
                ApiKey::Metadata,
                ApiKey::CreateTopics,
                ApiKey::DescribeTopicPartitions,
            ]
            .into_iter()
            .fold(interest, |i, key| i.responses(key, ..));
        }
        interest.responses(ApiKey::ApiVersions, ..)
    }

    fn on_request(
        &self,
        cx: &mut Context<'_>,
        header: &mut RequestHeader,
        body: &mut RequestKind,
    ) -> Verdict {
        if !self.polices() {
            // Only reporting what the ACLs would deny: the walk runs on a
            // copy, the request goes on as it came.
            let (mut header, mut probe) = (header.clone(), body.clone());
            self.walk(cx, &mut header, &mut probe);
            cx.notes.take::<Asked>();
            return Verdict::Forward;
        }
        self.walk(cx, header, body)
    }

    fn on_response(
        &self,
        cx: &mut Context<'_>,
        body: &mut ResponseKind,
        in_flight: &InFlight,
    ) -> Verdict {
        if !self.polices() {
            // Only the broker's own listings teach topic ids.
            match body {
                ResponseKind::Metadata(r) => {
                    for t in r.topics.iter().filter(|t| t.error_code == 0) {
                        if let Some(name) = &t.name {
                            self.learn_id(name, t.topic_id);
                        }
                    }
                }
                ResponseKind::DescribeTopicPartitions(r) => {
                    for t in r.topics.iter().filter(|t| t.error_code == 0) {
                        if let Some(name) = &t.name {
                            self.learn_id(name, t.topic_id);
                        }
                    }
                }
                ResponseKind::CreateTopics(r) => {
                    for t in r.topics.iter().filter(|t| t.error_code == 0) {
                        self.learn_id(&t.name, t.topic_id);
                    }
                }
                _ => {}
            }
            return Verdict::Forward;
        }
        self.answer(cx, body, in_flight)
    }
}

impl Namespace {
    /// Every name of a request through the namespace and the ACLs.
    fn walk(
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
            if api == Some(ApiKey::Metadata) && header.request_api_version < 4 && acls.decides() {
                // Before v4 there is no auto-create flag: the broker may
                // create any topic named. Naming one then needs create on
                // it (or the cluster), as creating it would: an old client
                // without it is refused, never lets the broker create.
                asked.needs.topic = Operation::Create;
                asked.needs.create_on_cluster = true;
            }
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
                    admin::metadata(self, &mut asked, r, header.request_api_version)
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
                    admin::describe_topic_partitions(self, &mut asked, r)
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
    fn answer(
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
            ResponseKind::Metadata(r) => admin::metadata_out(self, &asked, r),
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
                admin::describe_topic_partitions_out(self, &asked, r)
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

/// What a request had refused, for the node's status and log (which hop,
/// which virtual cluster, which names): a tenant told
/// TOPIC_AUTHORIZATION_FAILED by the gateway is a question an operator
/// must be able to answer.
fn refusal(cx: &Context<'_>, key: i16, asked: &Asked) -> Option<HopError> {
    const SHOWN: usize = 5;
    let by_acl =
        |resource: Resource, name: &StrBytes| asked.acl_refused.contains(&(resource, name.clone()));
    let mut names: Vec<String> = asked
        .denied_topics
        .iter()
        .filter(|t| match t.code {
            TOPIC_AUTHORIZATION_FAILED => !by_acl(Resource::Topic, &t.name),
            // Topics refused with their group or transactional id.
            GROUP_AUTHORIZATION_FAILED | TRANSACTIONAL_ID_AUTHORIZATION_FAILED => {
                asked.acl_refused.is_empty()
            }
            _ => true,
        })
        .map(|t| {
            if t.name.is_empty() {
                format!("topic id {}", t.id)
            } else {
                format!("topic {:?}", t.name.as_str())
            }
        })
        .chain(
            asked
                .denied_groups
                .iter()
                .filter(|g| !by_acl(Resource::Group, g))
                .map(|g| format!("group {:?}", g.as_str())),
        )
        .chain(
            asked
                .denied_transactions
                .iter()
                .filter(|t| !by_acl(Resource::TransactionalId, t))
                .map(|t| format!("transactional id {:?}", t.as_str())),
        )
        .chain(
            asked
                .denied_resources
                .iter()
                .filter(|(_, n, _)| !by_acl(Resource::Topic, n) && !by_acl(Resource::Group, n))
                .map(|(t, n, _)| format!("config resource {t} {:?}", n.as_str())),
        )
        .collect();
    if names.is_empty() {
        return None;
    }
    let total = names.len();
    names.truncate(SHOWN);
    let more = if total > SHOWN {
        format!(" and {} more", total - SHOWN)
    } else {
        String::new()
    };
    let api = ApiKey::try_from(key).map_or_else(|_| format!("api_key={key}"), |k| format!("{k:?}"));
    Some(HopError::new(
        Hop::Policy,
        cx.route.virtual_cluster.id.clone(),
        Kind::OutsideNamespace,
        format!(
            "{api}: refused {}{more} (outside this virtual cluster's namespace, unknown ids, \
             shared names a tenant may not change, or a topic named twice under an alias); \
             the rest of the request went on",
            names.join(", ")
        ),
    ))
}

/// The refusal of an API this filter does not rename.
fn unpoliced(cx: &Context<'_>, key: i16, version: i16) -> HopError {
    let name =
        ApiKey::try_from(key).map_or_else(|_| format!("api_key={key}"), |k| format!("{k:?}"));
    HopError::new(
        Hop::Policy,
        cx.route.virtual_cluster.id.clone(),
        Kind::UnpolicedApi,
        format!(
            "{name} v{version} is not policed by the namespace of this virtual cluster (names in \
             it would reach the backend unchecked): refused, never forwarded"
        ),
    )
}

/// The partition indexes of a request's topic entry.
pub(crate) fn indexes<T>(partitions: &[T], index: impl Fn(&T) -> i32) -> Vec<i32> {
    partitions.iter().map(index).collect()
}

#[cfg(test)]
mod tests;

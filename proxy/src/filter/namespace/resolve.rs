//! One name at a time: a request's topic, group or transactional id
//! into its backend name (or refused: outside the namespace, an unknown
//! id, a shared name a tenant may not change, denied by the ACLs), and a
//! response's back into the client's (or hidden).

use std::sync::Arc;

use kafka_protocol::{
    messages::{GroupId, TopicName, TransactionalId},
    protocol::StrBytes,
};
use uuid::Uuid;

use super::{
    Asked, DeniedTopic, INVALID_REQUEST, Names, Namespace, Resource, TOPIC_AUTHORIZATION_FAILED,
    TopicIds, UNKNOWN_TOPIC_ID,
};
use crate::filter::acl::{self, AclPolicies, Operation, ResourceType};

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

    /// The client's name of the topic the backend calls `backend` — the
    /// topic itself, never an alias of it (what ACL rules name); `None`
    /// when the client may not see it.
    pub(crate) fn canonical(&self, backend: &TopicName) -> Option<String> {
        self.names.outward(Resource::Topic, &backend.0)
    }

    /// Replaces a broker's `authorized_operations` bit set for `name` (a
    /// topic's [`Namespace::canonical`] name) with the gateway's decisions
    /// (left alone when not asked for: `i32::MIN`, or without gateway
    /// ACLs).
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
        let resource_type = match resource {
            Resource::Topic => ResourceType::Topic,
            Resource::Group => ResourceType::Group,
            Resource::TransactionalId => ResourceType::TransactionalId,
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

    /// Whether a listing may show `name` (a topic's
    /// [`Namespace::canonical`] name: an alias is not the topic): `describe`
    /// on it.
    pub(crate) fn describable(&self, asked: &Asked, resource: Resource, name: &str) -> bool {
        let Some(access) = &asked.access else {
            return true;
        };
        let resource_type = match resource {
            Resource::Topic => ResourceType::Topic,
            Resource::Group => ResourceType::Group,
            Resource::TransactionalId => ResourceType::TransactionalId,
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
            deny(asked, name.0.clone(), id, partitions, UNKNOWN_TOPIC_ID);
            return false;
        }
        if name.0.is_empty() {
            let shown = self
                .ids
                .name(id)
                .and_then(|backend| self.names.outward(Resource::Topic, &backend));
            let Some(shown) = shown else {
                deny(asked, StrBytes::default(), id, partitions, UNKNOWN_TOPIC_ID);
                return false;
            };
            if !self.permitted(asked, Resource::Topic, &shown, &name.0) {
                deny(
                    asked,
                    StrBytes::default(),
                    id,
                    partitions,
                    TOPIC_AUTHORIZATION_FAILED,
                );
                return false;
            }
            return true;
        }
        match self.names.inward(Resource::Topic, &name.0) {
            Some(backend) => {
                let backend = StrBytes::from_string(backend);
                let unaliased = self.names.unalias(&name.0).to_string();
                if !self.permitted(asked, Resource::Topic, &unaliased, &name.0) {
                    deny(
                        asked,
                        name.0.clone(),
                        id,
                        partitions,
                        TOPIC_AUTHORIZATION_FAILED,
                    );
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
                    deny(asked, name.0.clone(), id, partitions, INVALID_REQUEST);
                    return false;
                }
                asked.topics.insert(backend.clone(), name.0.clone());
                name.0 = backend;
                true
            }
            None => {
                deny(
                    asked,
                    name.0.clone(),
                    id,
                    partitions,
                    TOPIC_AUTHORIZATION_FAILED,
                );
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
            deny(
                asked,
                name.0.clone(),
                id,
                partitions,
                TOPIC_AUTHORIZATION_FAILED,
            );
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

/// Records a topic of the request as refused with `code` (answered by the
/// filter, the rest of the request going on).
fn deny(asked: &mut Asked, name: StrBytes, id: Uuid, partitions: Vec<i32>, code: i16) {
    asked.denied_topics.push(DeniedTopic {
        name,
        id,
        partitions,
        code,
    });
}

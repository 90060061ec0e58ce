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
mod dispatch;
mod gate;
mod groups;
mod listing;
mod names;
pub mod policed;
mod report;
mod resolve;
mod topic_ids;
mod txn;

pub use names::{Names, Resource, glob};
pub use topic_ids::TopicIds;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use kafka_protocol::{
    messages::{ApiKey, RequestHeader, RequestKind, ResponseKind},
    protocol::StrBytes,
};
use uuid::Uuid;

use super::{
    Context, Filter, InFlight, Interest, Verdict,
    acl::{Access, AclPolicies, Needs},
};

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
    /// A Metadata request before v4 asked the broker for every topic
    /// instead of the ones named (which it might have created): the
    /// names asked for (client names), to answer only those.
    pub listed_instead: Option<Vec<StrBytes>>,
    /// The request's ACL decisions (gateway ACLs only).
    pub access: Option<Access>,
    /// What the request's API needs of the ACLs.
    pub needs: Needs,
    /// Names (as the client wrote them) refused by the ACLs rather than
    /// the namespace: reported as ACL denials.
    pub acl_refused: HashSet<(Resource, StrBytes)>,
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
            // Reporting only: Metadata answers (decoded for the broker
            // addresses anyway) are read for topic ids, not changed.
            return interest.responses(ApiKey::Metadata, ..);
        }
        interest.responses(ApiKey::ApiVersions, ..)
    }

    fn observes_only(&self) -> bool {
        !self.polices()
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
            if let ResponseKind::Metadata(r) = body {
                for t in r.topics.iter().filter(|t| t.error_code == 0) {
                    if let Some(name) = &t.name {
                        self.learn_id(name, t.topic_id);
                    }
                }
            }
            return Verdict::Forward;
        }
        self.answer(cx, body, in_flight)
    }
}

/// The partition indexes of a request's topic entry.
pub(crate) fn indexes<T>(partitions: &[T], index: impl Fn(&T) -> i32) -> Vec<i32> {
    partitions.iter().map(index).collect()
}

#[cfg(test)]
mod tests;

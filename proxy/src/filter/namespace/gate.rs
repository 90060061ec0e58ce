//! The gateway ACLs' own part of a request, before its names are walked:
//! the ACL admin APIs answered by the gateway, cluster-level operations,
//! an idempotent producer's start, topic auto-creation; and afterwards
//! the report of what was denied (counted at `hop=policy` per policy,
//! logged, sent as sampled `acl_denied` events).

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestKind, api_versions_response::ApiVersion,
};
use sluice_proto::dataplane::v1::DataPlaneEvent;

use super::Namespace;
use crate::{
    filter::{
        Context, Verdict,
        acl::{Access, CLUSTER, Denial, Operation, ResourceType, answers},
    },
    hop::{Hop, HopError, Kind},
};

/// The ACL admin APIs the gateway answers itself, and their versions.
const ACL_APIS: [(ApiKey, i16, i16); 3] = [
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
];

/// How many names one report shows.
const SHOWN: usize = 5;

/// What the ACLs decide before the names of a request are walked: an
/// answer of the gateway's own, or `None` to go on.
pub(super) fn request(
    ns: &Namespace,
    access: &mut Access,
    api: Option<ApiKey>,
    version: i16,
    body: &mut RequestKind,
) -> Option<Verdict> {
    let api = api?;
    if !access.decides() {
        // The backend decides: the cluster operation is only reported,
        // the ACL admin APIs go to the backend.
        if let Some(operation) = answers::cluster_operation(api) {
            access.permit(ResourceType::Cluster, CLUSTER, operation);
        }
        return None;
    }
    if let Some(operation) = answers::cluster_operation(api)
        && !access.permit(ResourceType::Cluster, CLUSTER, operation)
    {
        return answers::cluster_refused(api).map(Verdict::Respond);
    }
    match body {
        RequestKind::DescribeCluster(r) => {
            // Anyone may describe the cluster; the broker's view of what
            // the principal may do there is not the gateway's.
            r.include_cluster_authorized_operations = false;
            None
        }
        RequestKind::DescribeAcls(r) => Some(Verdict::Respond(answers::describe(access, r))),
        RequestKind::CreateAcls(r) => Some(Verdict::Respond(answers::create(r))),
        RequestKind::DeleteAcls(r) => Some(Verdict::Respond(answers::delete(r))),
        // (An empty transactional id is a name like any other: checked by
        // the walk, and the broker answers INVALID_REQUEST.)
        RequestKind::InitProducerId(r) if r.transactional_id.is_none() => {
            // An idempotent producer: Kafka lets it start with
            // idempotent_write on the cluster or write on some topic.
            let may = access.may(ResourceType::Cluster, CLUSTER, Operation::IdempotentWrite)
                || access.may_any(ResourceType::Topic, Operation::Write);
            if may {
                return None;
            }
            access.permit(ResourceType::Cluster, CLUSTER, Operation::IdempotentWrite);
            answers::cluster_refused(api).map(Verdict::Respond)
        }
        // Before v4 a Metadata request has no such flag (the broker's
        // auto.create.topics.enable decides: turn it off behind gateway
        // ACLs); it cannot be cleared there.
        RequestKind::Metadata(r) if r.allow_auto_topic_creation && version >= 4 => {
            // Creating a topic by asking for it needs create, like
            // CreateTopics; without it the topic is not created.
            let on_cluster = access.may(ResourceType::Cluster, CLUSTER, Operation::Create);
            let all_creatable = on_cluster
                || r.topics.iter().flatten().all(|t| {
                    t.name.as_ref().is_none_or(|n| {
                        access.may(
                            ResourceType::Topic,
                            ns.names().unalias(n.0.as_str()),
                            Operation::Create,
                        )
                    })
                });
            if !all_creatable {
                r.allow_auto_topic_creation = false;
            }
            None
        }
        _ => None,
    }
}

/// Adds the ACL admin APIs to an ApiVersions answer: the gateway answers
/// them, whatever the broker supports.
pub(super) fn advertise(r: &mut ApiVersionsResponse) {
    for (key, min, max) in ACL_APIS {
        r.api_keys.retain(|k| k.api_key != key as i16);
        r.api_keys.push(
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max),
        );
    }
}

/// Reports a request's denials and conditions that failed: one count,
/// log line and event per deciding policy (and per shadow/enforced).
pub(super) fn report(cx: &mut Context<'_>, api: Option<ApiKey>, access: &mut Access) {
    let vc = cx.route.virtual_cluster.id.clone();
    let api = api.map_or_else(|| "an unknown API".to_string(), |k| format!("{k:?}"));
    for (policy, error) in std::mem::take(&mut access.failures) {
        cx.findings.warnings.push(HopError::new(
            Hop::Policy,
            policy,
            Kind::ConditionFailed,
            format!(
                "{api}: the condition could not be evaluated for {} ({error}); its deny rules \
                 apply, its allow rules do not",
                access.principal()
            ),
        ));
    }
    let denials = std::mem::take(&mut access.denials);
    if denials.is_empty() {
        return;
    }
    let mut more = std::mem::take(&mut access.more);
    let mut groups: BTreeMap<(Option<String>, bool), Vec<&Denial>> = BTreeMap::new();
    for d in &denials {
        let policy = d.rule.as_ref().map(|(id, _)| id.clone());
        groups.entry((policy, d.shadow)).or_default().push(d);
    }
    for ((policy, shadow), list) in groups {
        let count = list.len();
        let mut names: Vec<String> = list
            .iter()
            .take(SHOWN)
            .map(|d| {
                let rule = d
                    .rule
                    .as_ref()
                    .map_or(String::new(), |(_, i)| format!(" (rules[{i}])"));
                format!(
                    "{} on {} {:?}{rule}",
                    d.operation.as_str(),
                    d.resource.as_str(),
                    d.name
                )
            })
            .collect();
        if list.len() > SHOWN {
            names.push(format!("{} more", list.len() - SHOWN));
        }
        if more > 0 {
            names.push(format!("{more} more (of any policy) not itemised"));
            more = 0;
        }
        let by = match &policy {
            Some(id) => format!("denied by cluster_policy_acls {id}"),
            None => "no rule allows it (denied by default)".to_string(),
        };
        let outcome = if shadow {
            "in shadow: reported, not applied; the request went on"
        } else {
            "refused with Kafka's authorization error for it alone"
        };
        let message = format!(
            "{} {api}: {}: {by}; {outcome}",
            access.principal(),
            names.join(", ")
        );
        let entity = policy.clone().unwrap_or_else(|| vc.clone());
        let error = HopError::new(Hop::Policy, entity.clone(), Kind::AclDenied, message)
            .with_detail(if shadow { "shadow" } else { "enforce" })
            .times(count as u64);
        cx.findings.events.push(DataPlaneEvent {
            event: "acl_denied".into(),
            key: format!(
                "{vc}/{}/{}/{}",
                access.principal(),
                policy.as_deref().unwrap_or("default"),
                if shadow { "shadow" } else { "enforce" }
            ),
            count: count as u64,
            hop: Hop::Policy.as_str().into(),
            entity_id: entity,
            message: error.message.clone(),
            shadow,
        });
        cx.findings.warnings.push(error);
    }
}

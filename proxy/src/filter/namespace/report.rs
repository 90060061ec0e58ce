//! What a request had refused, for the node's status and log: each
//! refusal named at hop=policy with the virtual cluster, the API and the
//! names.

use kafka_protocol::{messages::ApiKey, protocol::StrBytes};

use super::{
    Asked, GROUP_AUTHORIZATION_FAILED, Resource, TOPIC_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use crate::{
    filter::Context,
    hop::{Hop, HopError, Kind},
};

/// What a request had refused, for the node's status and log (which hop,
/// which virtual cluster, which names): a tenant told
/// TOPIC_AUTHORIZATION_FAILED by the gateway is a question an operator
/// must be able to answer.
pub(super) fn refusal(cx: &Context<'_>, key: i16, asked: &Asked) -> Option<HopError> {
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
pub(super) fn unpoliced(cx: &Context<'_>, key: i16, version: i16) -> HopError {
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

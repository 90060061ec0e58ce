//! Record policies: a virtual cluster's produce policies run over the
//! records of Produce requests before the broker has them, its consume
//! policies over the records of Fetch answers before the client has them
//! (`modify_headers`, `skip_record`, `schema_validation`, `encrypt`,
//! `decrypt`). A virtual cluster without them has no such filter, so its
//! records are never decoded; with them, only the partitions a policy may
//! apply to are (see `walk.rs`).
//!
//! The filter runs after the namespace filter: it sees the partitions the
//! namespace and the ACLs let through, and names topics as the client
//! does (backend names renamed back; topic ids looked up in the
//! backend's id map). A produce batch a policy refuses is taken out of
//! the request and answered `INVALID_RECORD` with the record's index and
//! reason (KIP-467) while the rest goes to the broker; a consume
//! partition a policy refuses is answered with the error instead of its
//! records.

mod apply;
mod crypto;
mod json;
mod outcomes;
mod policies;
mod walk;

pub use outcomes::{Outcome, PolicyOutcome};

use std::{collections::HashMap, sync::Arc};

use kafka_protocol::messages::{
    ApiKey, RequestHeader, RequestKind, ResponseKind, TopicName,
    produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse},
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{Context, Filter, InFlight, Interest, Verdict, namespace::Names};
use crate::{
    config::Config,
    filter::namespace::{Resource, TopicIds},
};
use apply::Scope;
use outcomes::Tally;
use policies::{Phase, Phases};
use walk::{Refusal, Walked};

/// The most partitions of one Fetch whose offsets are kept for its answer.
const MAX_PARTITIONS: usize = 100_000;

/// Kafka's UNKNOWN_TOPIC_ID: a topic id this node has not seen named yet
/// (the client's Metadata refresh teaches it).
const UNKNOWN_TOPIC_ID: i16 = 100;

/// The record policies of one virtual cluster, as a filter.
#[derive(Debug)]
pub struct RecordPolicies {
    phases: Phases,
    names: Option<Arc<Names>>,
    ids: Arc<TopicIds>,
}

/// Who sent a Fetch and from which offsets, kept for its answer
/// (responses carry no principal).
struct Asker {
    principal: String,
    client_id: String,
    /// Fetch offsets by (topic name, topic id, partition), as asked of the
    /// broker (a fetch session may leave partitions out: unknown).
    from: HashMap<(String, Uuid, i32), i64>,
}

/// Produce partitions refused by a policy, answered with the broker's.
#[derive(Default)]
struct Refused(Vec<(TopicName, Uuid, i32, Refusal)>);

impl RecordPolicies {
    /// The record policies of virtual cluster `vc` (`None` when it has
    /// none enabled), renaming topics back through `names` when it has a
    /// namespace or aliases; or why they cannot be enforced.
    pub fn compile(
        config: &Config,
        vc: &str,
        backend_id: &str,
        names: Option<Arc<Names>>,
    ) -> Result<Option<RecordPolicies>, String> {
        let phases = Phases::compile(config, vc)?;
        if phases.produce.is_empty() && phases.consume.is_empty() {
            return Ok(None);
        }
        Ok(Some(RecordPolicies {
            phases,
            names,
            ids: TopicIds::of_backend(backend_id),
        }))
    }

    /// The client's name of the topic the backend calls `name` (or
    /// `id`), if known.
    fn client_topic(&self, name: &TopicName, id: Uuid) -> Option<String> {
        let backend = if name.0.is_empty() {
            self.ids.name(id)?
        } else {
            name.0.to_string()
        };
        Some(match &self.names {
            Some(names) => names.outward(Resource::Topic, &backend).unwrap_or(backend),
            None => backend,
        })
    }
}

impl Filter for RecordPolicies {
    fn name(&self) -> &'static str {
        "record_policies"
    }

    fn interest(&self) -> Interest {
        let mut interest = Interest::new().responses(ApiKey::Metadata, 10..);
        if !self.phases.produce.is_empty() {
            interest = interest
                .requests(ApiKey::Produce, ..)
                .responses(ApiKey::Produce, ..);
        }
        if !self.phases.consume.is_empty() {
            interest = interest
                .requests(ApiKey::Fetch, ..)
                .responses(ApiKey::Fetch, ..);
        }
        interest
    }

    fn on_request(
        &self,
        cx: &mut Context<'_>,
        header: &mut RequestHeader,
        body: &mut RequestKind,
    ) -> Verdict {
        let principal = cx
            .principal
            .map(|p| p.to_string())
            .unwrap_or_else(|| "User:ANONYMOUS".into());
        let client_id = header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        match body {
            RequestKind::Fetch(r) => {
                let from = r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(move |p| {
                            (
                                (t.topic.0.to_string(), t.topic_id, p.partition),
                                p.fetch_offset,
                            )
                        })
                    })
                    .take(MAX_PARTITIONS)
                    .collect();
                cx.notes.put(Asker {
                    principal,
                    client_id,
                    from,
                });
                Verdict::Forward
            }
            RequestKind::Produce(r) => {
                let policies = &self.phases.produce;
                let mut tally = Tally::default();
                let mut refused = Refused::default();
                let mut budget = walk::MAX_INFLATED_PER_MESSAGE;
                for topic in &mut r.topic_data {
                    let client_name = self.client_topic(&topic.name, topic.topic_id);
                    let (name, id) = (topic.name.clone(), topic.topic_id);
                    topic.partition_data.retain_mut(|p| {
                        let Some(set) = &p.records else {
                            return true;
                        };
                        let Some(client_name) = &client_name else {
                            // Whether a policy applies cannot be told: only
                            // shadow policies let it through.
                            if all_shadow(policies) {
                                return true;
                            }
                            refused.0.push((name.clone(), id, p.index, unknown_id(id)));
                            return false;
                        };
                        let scope = Scope {
                            api: "Produce",
                            principal: &principal,
                            client_id: &client_id,
                            virtual_cluster: &cx.route.virtual_cluster.id,
                            listener: &cx.route.listener_id,
                            topic: client_name,
                            partition: p.index,
                            phase: Phase::Produce,
                        };
                        match walk::partition(policies, &scope, set, None, &mut budget, &mut tally)
                        {
                            Walked::Unchanged => true,
                            // Only consume defers; refused here all the same.
                            Walked::Deferred(_) => {
                                let refusal = Refusal {
                                    code: 87,
                                    message: "the request's records inflate beyond the budget"
                                        .into(),
                                    records: Vec::new(),
                                };
                                refused.0.push((name.clone(), id, p.index, refusal));
                                false
                            }
                            Walked::Changed(changed) => {
                                p.records = Some(changed);
                                true
                            }
                            Walked::Refused(_, refusal) => {
                                refused.0.push((name.clone(), id, p.index, refusal));
                                false
                            }
                        }
                    });
                }
                // Topics left with no partition still go to the broker
                // (an empty Produce is answered empty): the refusals are
                // added to its answer on the way back, where the namespace
                // filter names them as the client does.
                r.topic_data.retain(|t| !t.partition_data.is_empty());
                cx.findings.outcomes.extend(tally.finish(policies));
                if !refused.0.is_empty() {
                    cx.notes.put(refused);
                }
                Verdict::Forward
            }
            _ => Verdict::Forward,
        }
    }

    fn on_response(
        &self,
        cx: &mut Context<'_>,
        body: &mut ResponseKind,
        _in_flight: &InFlight,
    ) -> Verdict {
        match body {
            ResponseKind::Metadata(m) => {
                for t in &m.topics {
                    if let Some(name) = &t.name {
                        self.ids.learn(t.topic_id, name);
                    }
                }
            }
            ResponseKind::Produce(answer) => {
                if let Some(refused) = cx.notes.take::<Refused>() {
                    add_refused(answer, &refused);
                }
            }
            ResponseKind::Fetch(answer) => {
                let asker = cx.notes.take::<Asker>().unwrap_or(Asker {
                    principal: "User:ANONYMOUS".into(),
                    client_id: String::new(),
                    from: HashMap::new(),
                });
                let policies = &self.phases.consume;
                let mut tally = Tally::default();
                let mut budget = walk::MAX_INFLATED_PER_MESSAGE;
                for topic in &mut answer.responses {
                    let client_name = self.client_topic(&topic.topic, topic.topic_id);
                    for p in &mut topic.partitions {
                        let Some(set) = &p.records else {
                            continue;
                        };
                        let walked = match &client_name {
                            None if all_shadow(policies) => Walked::Unchanged,
                            None => Walked::Refused(None, unknown_id(topic.topic_id)),
                            Some(client_name) => {
                                let scope = Scope {
                                    api: "Fetch",
                                    principal: &asker.principal,
                                    client_id: &asker.client_id,
                                    virtual_cluster: &cx.route.virtual_cluster.id,
                                    listener: &cx.route.listener_id,
                                    topic: client_name,
                                    partition: p.partition_index,
                                    phase: Phase::Consume,
                                };
                                let key =
                                    (topic.topic.0.to_string(), topic.topic_id, p.partition_index);
                                let from = asker.from.get(&key).copied();
                                walk::partition(
                                    policies,
                                    &scope,
                                    set,
                                    from,
                                    &mut budget,
                                    &mut tally,
                                )
                            }
                        };
                        match walked {
                            Walked::Unchanged => {}
                            Walked::Changed(changed) => p.records = Some(changed),
                            Walked::Deferred(before) => p.records = before,
                            // The records before the refused one are
                            // answered; the next fetch (from its offset)
                            // gets the error.
                            Walked::Refused(Some(before), _) => p.records = Some(before),
                            Walked::Refused(None, refusal) => {
                                p.error_code = refusal.code;
                                p.records = None;
                            }
                        }
                    }
                }
                cx.findings.outcomes.extend(tally.finish(policies));
            }
            _ => {}
        }
        Verdict::Forward
    }
}

/// Whether every policy of a phase only reports (shadow).
fn all_shadow(policies: &[policies::Policy]) -> bool {
    policies.iter().all(|p| p.shadow)
}

fn unknown_id(id: Uuid) -> Refusal {
    Refusal {
        code: UNKNOWN_TOPIC_ID,
        message: format!(
            "topic id {id} not seen named yet: record policies cannot tell whether they apply"
        ),
        records: Vec::new(),
    }
}

/// Adds the refused partitions to a Produce answer (each under its topic).
fn add_refused(answer: &mut kafka_protocol::messages::ProduceResponse, refused: &Refused) {
    for (name, id, index, refusal) in &refused.0 {
        let partition = PartitionProduceResponse::default()
            .with_index(*index)
            .with_error_code(refusal.code)
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
            .with_error_message(Some(StrBytes::from_string(format!(
                "hop=policy: {}",
                refusal.message
            ))))
            .with_record_errors(
                refusal
                    .records
                    .iter()
                    .map(|(i, m)| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(*i)
                            .with_batch_index_error_message(Some(StrBytes::from_string(m.clone())))
                    })
                    .collect(),
            );
        match answer
            .responses
            .iter_mut()
            .find(|t| t.name == *name && t.topic_id == *id)
        {
            Some(t) => t.partition_responses.push(partition),
            None => answer.responses.push(
                TopicProduceResponse::default()
                    .with_name(name.clone())
                    .with_topic_id(*id)
                    .with_partition_responses(vec![partition]),
            ),
        }
    }
}

#[cfg(test)]
mod tests;

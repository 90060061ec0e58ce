//! What record policies did, counted per request and handed to the
//! connection in one go (no shared counter touched per record): per
//! policy and outcome, with the last reason for a rejected or failed
//! record.

use sluice_proto::dataplane::v1::DataPlaneEvent;

/// The longest reason kept, in characters.
const MAX_REASON: usize = 300;

/// What one policy did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It acted on the record.
    Applied,
    /// Its condition did not hold (or there was nothing to act on).
    Skipped,
    /// The record was refused or left out for failing it.
    Rejected,
    /// It could not process the record, which went on.
    Failed,
    /// A quota throttled a request or answer (or would have, in shadow).
    Throttled,
    /// A quota refused a connection (or would have, in shadow).
    Refused,
}

impl Outcome {
    /// Its name in node status.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Skipped => "skipped",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Throttled => "throttled",
            Outcome::Refused => "refused",
        }
    }
}

/// One policy's count of one outcome in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// The policy's id.
    pub policy_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// The policy is in shadow mode (nothing was changed).
    pub shadow: bool,
    /// How many records.
    pub count: u64,
    /// The last reason, for rejected and failed records.
    pub message: Option<String>,
}

impl PolicyOutcome {
    /// The event to send (sampled) for it: records refused or failed, and
    /// what a shadow policy would have done.
    pub fn event(&self) -> Option<DataPlaneEvent> {
        let worth = match self.outcome {
            Outcome::Rejected | Outcome::Failed | Outcome::Throttled | Outcome::Refused => true,
            Outcome::Applied => self.shadow,
            Outcome::Skipped => false,
        };
        let event = match self.outcome {
            Outcome::Throttled | Outcome::Refused => "quota_exceeded",
            _ => "record_policy",
        };
        worth.then(|| DataPlaneEvent {
            event: event.into(),
            key: format!("{}:{}", self.policy_id, self.outcome.as_str()),
            count: self.count,
            hop: "policy".into(),
            entity_id: self.policy_id.clone(),
            message: format!(
                "{}{}",
                self.outcome.as_str(),
                self.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            shadow: self.shadow,
        })
    }
}

/// Counts for one phase's policies (by index) in one request.
#[derive(Debug, Default)]
pub(super) struct Tally {
    counts: Vec<(usize, Outcome, u64, Option<String>)>,
}

impl Tally {
    /// Counts one record's `outcome` for policy `i`.
    pub(super) fn count(&mut self, i: usize, outcome: Outcome, why: Option<&str>) {
        self.count_many(i, outcome, 1, why);
    }

    /// Counts `n` records' `outcome` for policy `i`.
    pub(super) fn count_many(&mut self, i: usize, outcome: Outcome, n: u64, why: Option<&str>) {
        if n == 0 {
            return;
        }
        // Reasons are bounded (they go to node status and events).
        let why = why.map(|w| match w.char_indices().nth(MAX_REASON) {
            Some((at, _)) => &w[..at],
            None => w,
        });
        match self
            .counts
            .iter_mut()
            .find(|(p, o, _, _)| *p == i && *o == outcome)
        {
            Some(slot) => {
                slot.2 += n;
                if let Some(why) = why {
                    slot.3 = Some(why.to_string());
                }
            }
            None => self.counts.push((i, outcome, n, why.map(str::to_string))),
        }
    }

    /// The counts, named by the policies they belong to.
    pub(super) fn finish(self, policies: &[super::policies::Policy]) -> Vec<PolicyOutcome> {
        self.counts
            .into_iter()
            .filter_map(|(i, outcome, count, message)| {
                let p = policies.get(i)?;
                Some(PolicyOutcome {
                    policy_id: p.id.clone(),
                    outcome,
                    shadow: p.shadow,
                    count,
                    message,
                })
            })
            .collect()
    }
}

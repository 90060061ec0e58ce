//! One partition's record set through a phase's policies: the policies
//! whose conditions depend only on the partition are decided once, and
//! when none can apply the records are never decoded; otherwise each
//! batch is decoded, its records run through the policies, and it is
//! encoded again only when a record changed or was left out (control
//! batches and unchanged batches go on as they came).
//!
//! A record a policy refuses: on produce the partition's batch is refused
//! (the broker never has it); on consume the records before it are
//! answered and the partition fails at its offset, so the consumer gets
//! everything up to it and then the error. What cannot be read when only
//! shadow policies would read it goes on unchanged (counted as failed).

use bytes::{Bytes, BytesMut};

use super::{
    apply::{self, Fate, Held, Scope},
    outcomes::{Outcome, Tally},
    policies::{Phase, Policy},
};
use crate::kafka::records;

/// The most one batch's records may inflate to (a broker's default
/// `message.max.bytes` is 1 MiB; this leaves room for raised limits).
const MAX_INFLATED: usize = 32 << 20;

/// The most all batches of one request or answer may inflate to, so a
/// request of many small compressed batches cannot ask for gigabytes.
pub(super) const MAX_INFLATED_PER_MESSAGE: usize = 128 << 20;

/// Why a partition's records are refused, with the per-record errors
/// (batch index, message) a Produce answer carries (KIP-467).
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    /// The Kafka error code.
    pub(super) code: i16,
    /// What is wrong, naming the record.
    pub(super) message: String,
    /// The records at fault, by their index in the batch.
    pub(super) records: Vec<(i32, String)>,
}

/// What becomes of a partition's records.
#[derive(Debug)]
pub(super) enum Walked {
    /// They go on as they came.
    Unchanged,
    /// They go on as these bytes.
    Changed(Bytes),
    /// Refused: on produce the whole partition; on consume, the records
    /// from the fetch offset up to the refused one (if any) are answered,
    /// so the consumer's next fetch starts at it and gets the error.
    Refused(Option<Bytes>, Refusal),
    /// The message's inflation budget ran out (consume): the records
    /// before (if any) are answered without an error, the rest on the
    /// client's next fetch.
    Deferred(Option<Bytes>),
}

/// Marks an inflation budget that ran out (as opposed to data that
/// cannot be read).
#[derive(Debug)]
struct Budget;

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("inflation budget")
    }
}

/// Kafka's error codes used here.
const CORRUPT_MESSAGE: i16 = 2;
const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
const INVALID_RECORD: i16 = 87;

/// Runs `policies` over `set`, inflating at most `budget` more bytes. On
/// consume, `from` is the offset the client fetched from, when known:
/// records below it (the broker answers from the start of the batch
/// holding it) are not judged, the client drops them.
pub(super) fn partition(
    policies: &[Policy],
    scope: &Scope<'_>,
    set: &Bytes,
    from: Option<i64>,
    budget: &mut usize,
    tally: &mut Tally,
) -> Walked {
    if set.is_empty() || policies.is_empty() {
        return Walked::Unchanged;
    }
    let held: Vec<Option<Held>> = policies
        .iter()
        .map(|p| p.by_partition.then(|| scope.holds(&p.conditions)))
        .collect();
    let live: Vec<usize> = (0..policies.len())
        .filter(|&i| !matches!(held[i], Some(Ok(false))))
        .collect();
    let split = records::split(set);
    if live.is_empty() {
        // None can apply: counted as skipped from the batch headers,
        // without decoding a record (what cannot be read goes on as it
        // came: no policy is concerned).
        let n: u64 = split
            .iter()
            .flat_map(|s| &s.batches)
            .filter(|b| !b.is_control())
            .map(|b| b.record_count())
            .sum();
        for i in 0..policies.len() {
            tally.count_many(i, Outcome::Skipped, n, None);
        }
        return Walked::Unchanged;
    }
    // What cannot be read fails the policies that would read it; only
    // enforced ones refuse it.
    let enforced = live.iter().any(|&i| !policies[i].shadow);
    let unreadable = |code: i16, message: String, tally: &mut Tally| {
        let outcome = if enforced {
            Outcome::Rejected
        } else {
            Outcome::Failed
        };
        for &i in &live {
            tally.count(i, outcome, Some(&message));
        }
        let refusal = Refusal {
            code: match scope.phase {
                Phase::Produce => code,
                Phase::Consume => CORRUPT_MESSAGE,
            },
            message,
            records: Vec::new(),
        };
        (enforced, refusal)
    };
    let split = match split {
        Ok(split) => split,
        Err(e) => {
            let message = format!("record policies cannot read these records: {e:#}");
            let (refuse, refusal) = unreadable(UNSUPPORTED_FOR_MESSAGE_FORMAT, message, tally);
            return if refuse {
                Walked::Refused(None, refusal)
            } else {
                Walked::Unchanged
            };
        }
    };
    // Re-encoded batches are about as long as they came (a header more).
    let mut out = BytesMut::with_capacity(set.len() + set.len() / 8);
    let mut changed_any = false;
    let consume = scope.phase == Phase::Consume;
    let below = |offset: i64| consume && from.is_some_and(|f| offset < f);
    for batch in &split.batches {
        // Control batches, and batches wholly below the fetch offset (the
        // client drops them), go on as they came.
        if batch.is_control() || below(batch.last_offset()) {
            out.extend_from_slice(batch.raw());
            continue;
        }
        let before = |out: &BytesMut| (!out.is_empty()).then(|| Bytes::copy_from_slice(out));
        let decoded = batch.decode(MAX_INFLATED).and_then(|(records, inflated)| {
            if inflated > *budget {
                return Err(anyhow::anyhow!(
                    "the records of one message inflate beyond {} MiB",
                    MAX_INFLATED_PER_MESSAGE >> 20
                )
                .context(Budget));
            }
            *budget -= inflated;
            Ok(records)
        });
        let mut decoded = match decoded {
            Ok(records) => records,
            Err(e) if consume && e.downcast_ref::<Budget>().is_some() => {
                // Not this time: the client fetches the rest again.
                return Walked::Deferred(before(&out));
            }
            Err(e) => {
                let message = format!(
                    "record batch at offset {} ({}): {e:#}",
                    batch.base_offset(),
                    batch.codec()
                );
                let (refuse, refusal) = unreadable(INVALID_RECORD, message, tally);
                if !refuse {
                    return Walked::Unchanged;
                }
                return Walked::Refused(before(&out), refusal);
            }
        };
        let mut changed = false;
        let mut kept = Vec::with_capacity(decoded.len());
        for (index, mut record) in decoded.drain(..).enumerate() {
            let offset = record.offset;
            if below(offset) {
                kept.push(record);
                continue;
            }
            match apply::run(policies, &held, scope, &mut record, index, tally) {
                Fate::Keep(c) => {
                    changed |= c;
                    kept.push(record);
                }
                Fate::Drop => changed = true,
                Fate::Refuse(why) => {
                    let refusal = Refusal {
                        code: match scope.phase {
                            Phase::Produce => INVALID_RECORD,
                            Phase::Consume => CORRUPT_MESSAGE,
                        },
                        message: why.clone(),
                        records: vec![(index as i32, why)],
                    };
                    if scope.phase == Phase::Produce {
                        return Walked::Refused(None, refusal);
                    }
                    // Consume: the records from the fetch offset up to this
                    // one are answered, the batch ending just before it, so
                    // the client's next fetch starts here and gets the
                    // error. Without a known fetch offset (or at it), the
                    // error now: a partial answer could be fetched again
                    // and again.
                    if from.is_none_or(|f| offset <= f) {
                        return Walked::Refused(None, refusal);
                    }
                    let mark = out.len();
                    if batch
                        .encode_ending(&kept, offset.saturating_sub(1), &mut out)
                        .is_err()
                    {
                        out.truncate(mark);
                        return Walked::Refused(None, refusal);
                    }
                    return Walked::Refused(before(&out), refusal);
                }
            }
        }
        if changed {
            changed_any = true;
            if let Err(e) = batch.encode(&kept, &mut out) {
                let message = format!("record batch at offset {}: {e:#}", batch.base_offset());
                let (_, refusal) = unreadable(INVALID_RECORD, message, tally);
                return Walked::Refused(None, refusal);
            }
        } else {
            out.extend_from_slice(batch.raw());
        }
    }
    if !changed_any {
        return Walked::Unchanged;
    }
    out.extend_from_slice(&split.tail);
    Walked::Changed(out.freeze())
}

//! One partition's record set through a phase's policies: the policies
//! whose conditions depend only on the partition are decided once, and
//! when none can apply the records are never decoded; otherwise each
//! batch is decoded, its records run through the policies, and it is
//! encoded again only when a record changed or was left out (control
//! batches and unchanged batches go on as they came).

use bytes::{Bytes, BytesMut};

use super::{
    apply::{self, Fate, Held, Scope},
    outcomes::{Outcome, Tally},
    policies::Policy,
};
use crate::kafka::records;

/// The most one batch's records may inflate to (a broker's default
/// `message.max.bytes` is 1 MiB; this leaves room for raised limits).
pub(super) const MAX_INFLATED: usize = 32 << 20;

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

/// Kafka's error codes used here.
pub(super) const CORRUPT_MESSAGE: i16 = 2;
pub(super) const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
pub(super) const INVALID_RECORD: i16 = 87;

/// Runs `policies` over `set`; `Ok(None)` when it goes on unchanged.
pub(super) fn partition(
    policies: &[Policy],
    scope: &Scope<'_>,
    set: &Bytes,
    tally: &mut Tally,
) -> Result<Option<Bytes>, Refusal> {
    if set.is_empty() || policies.is_empty() {
        return Ok(None);
    }
    let refuse = |code: i16, message: String| Refusal {
        code,
        message,
        records: Vec::new(),
    };
    let split = records::split(set).map_err(|e| {
        refuse(
            UNSUPPORTED_FOR_MESSAGE_FORMAT,
            format!("record policies cannot read these records: {e:#}"),
        )
    })?;
    let held: Vec<Option<Held>> = policies
        .iter()
        .map(|p| p.by_partition.then(|| scope.holds(&p.conditions)))
        .collect();
    let live = held.iter().any(|h| !matches!(h, Some(Ok(false))));
    if !live {
        // None can apply: counted as skipped without decoding a record.
        let n: u64 = split
            .batches
            .iter()
            .filter(|b| !b.is_control())
            .map(|b| b.record_count())
            .sum();
        for i in 0..policies.len() {
            tally.count_many(i, Outcome::Skipped, n, None);
        }
        return Ok(None);
    }
    let mut out = BytesMut::new();
    let mut changed_any = false;
    for batch in &split.batches {
        if batch.is_control() {
            out.extend_from_slice(batch.raw());
            continue;
        }
        let mut decoded = batch.decode(MAX_INFLATED).map_err(|e| {
            refuse(
                CORRUPT_MESSAGE,
                format!(
                    "record batch at offset {} ({}): {e:#}",
                    batch.base_offset(),
                    batch.codec()
                ),
            )
        })?;
        let mut changed = false;
        let mut kept = Vec::with_capacity(decoded.len());
        for (index, mut record) in decoded.drain(..).enumerate() {
            match apply::run(policies, &held, scope, &mut record, index, tally) {
                Fate::Keep(c) => {
                    changed |= c;
                    kept.push(record);
                }
                Fate::Drop => changed = true,
                Fate::Refuse(why) => {
                    return Err(Refusal {
                        code: INVALID_RECORD,
                        message: why.clone(),
                        records: vec![(index as i32, why)],
                    });
                }
            }
        }
        if changed {
            changed_any = true;
            batch.encode(&kept, &mut out).map_err(|e| {
                refuse(
                    CORRUPT_MESSAGE,
                    format!("record batch at offset {}: {e:#}", batch.base_offset()),
                )
            })?;
        } else {
            out.extend_from_slice(batch.raw());
        }
    }
    if !changed_any {
        return Ok(None);
    }
    out.extend_from_slice(&split.tail);
    Ok(Some(out.freeze()))
}

//! Record sets (the `records` bytes of a Produce request's partition or a
//! Fetch answer's), split into their batches and, where a record policy
//! asks, decoded into records and encoded again through the
//! `kafka-protocol` crate's record batches — each batch with the codec it
//! came with, decompressed with a bound (`inflate.rs`).
//!
//! What the crate derives from the records alone, a batch keeps from its
//! original header: the last offset (a consumer resumes after it, even
//! when records were left out), the timestamp type and, for log-append
//! time, the broker's timestamp. A batch left with no records is written
//! as an empty batch spanning the same offsets, the way log compaction
//! leaves one. Batches nobody changed go on as the bytes they came as.

mod inflate;

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

/// Offsets within a v2 batch header.
mod at {
    pub(super) const LENGTH: usize = 8;
    pub(super) const MAGIC: usize = 16;
    pub(super) const CRC: usize = 17;
    pub(super) const ATTRIBUTES: usize = 21;
    pub(super) const LAST_OFFSET_DELTA: usize = 23;
    pub(super) const MAX_TIMESTAMP: usize = 35;
    pub(super) const BASE_SEQUENCE: usize = 53;
    pub(super) const RECORD_COUNT: usize = 57;
    pub(super) const RECORDS: usize = 61;
}

/// Attribute bits of a v2 batch.
const CODEC_BITS: i16 = 0x7;
const LOG_APPEND_TIME: i16 = 1 << 3;
const CONTROL: i16 = 1 << 5;

/// One record batch (magic 2) as it came, with the header fields a
/// re-encoded batch keeps.
#[derive(Debug, Clone)]
pub struct Batch {
    raw: Bytes,
    base_offset: i64,
    last_offset_delta: i32,
    attributes: i16,
    max_timestamp: i64,
    base_sequence: i32,
}

/// A record set split into its whole batches and what follows them: a
/// Fetch answer may end in a batch cut short by the size limit, which
/// clients skip, so it goes on untouched.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// The whole batches, in order.
    pub batches: Vec<Batch>,
    /// A trailing partial batch (empty when there is none).
    pub tail: Bytes,
}

/// Splits `records` into batches, reading only their headers. Message
/// sets older than magic 2 are an error (record policies cannot read
/// them, and clients of the last ten years do not send them).
pub fn split(records: &Bytes) -> Result<Split> {
    let mut split = Split::default();
    let mut rest = records.clone();
    while !rest.is_empty() {
        let length = rest
            .get(at::LENGTH..at::LENGTH + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let magic = rest.get(at::MAGIC).map(|m| *m as i8);
        let size = match length {
            Some(l) if l < 0 => bail!("record batch length {l} is negative"),
            Some(l) => at::LENGTH + 4 + l as usize,
            None => usize::MAX,
        };
        if size > rest.len() || magic.is_none() {
            split.tail = rest;
            break;
        }
        if magic != Some(2) {
            bail!(
                "message format v{} (record batches are v2 since Kafka 0.11)",
                magic.unwrap_or(-1)
            );
        }
        if size < at::RECORDS {
            bail!("record batch of {size} bytes is shorter than its header");
        }
        let raw = rest.split_to(size);
        split.batches.push(Batch::read(raw));
    }
    Ok(split)
}

fn i16_at(b: &[u8], i: usize) -> i16 {
    i16::from_be_bytes([b[i], b[i + 1]])
}

fn i32_at(b: &[u8], i: usize) -> i32 {
    i32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn i64_at(b: &[u8], i: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[i..i + 8]);
    i64::from_be_bytes(x)
}

impl Batch {
    /// Reads the header of `raw` (a whole batch, at least a header long).
    fn read(raw: Bytes) -> Batch {
        Batch {
            base_offset: i64_at(&raw, 0),
            last_offset_delta: i32_at(&raw, at::LAST_OFFSET_DELTA),
            attributes: i16_at(&raw, at::ATTRIBUTES),
            max_timestamp: i64_at(&raw, at::MAX_TIMESTAMP),
            base_sequence: i32_at(&raw, at::BASE_SEQUENCE),
            raw,
        }
    }

    /// The batch as it came.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Whether it is a control batch (a transaction marker): never
    /// decoded or changed.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL != 0
    }

    /// Its codec's name, for errors and counts.
    pub fn codec(&self) -> &'static str {
        match self.attributes & CODEC_BITS {
            0 => "none",
            1 => "gzip",
            2 => "snappy",
            3 => "lz4",
            4 => "zstd",
            _ => "unknown",
        }
    }

    /// How many records its header says it holds.
    pub fn record_count(&self) -> u64 {
        i32_at(&self.raw, at::RECORD_COUNT).max(0) as u64
    }

    /// The offset of its first record.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The offset after which a consumer resumes: its last record's, or
    /// the last one it held before records were left out.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Its records (CRC checked), decompressed to at most `max_inflated`
    /// bytes, and how many bytes they took decompressed.
    pub fn decode(&self, max_inflated: usize) -> Result<(Vec<Record>, usize)> {
        let mut buf = self.raw.clone();
        let inflated = std::cell::Cell::new(self.raw.len().saturating_sub(at::RECORDS));
        let set = RecordBatchDecoder::decode_with_custom_compression(
            &mut buf,
            Some(|compressed: &mut Bytes, codec: Compression| {
                let out = inflate::inflate(compressed, codec, max_inflated)?;
                inflated.set(out.len());
                Ok(out)
            }),
        )?;
        if !buf.is_empty() {
            bail!("record batch longer than its records");
        }
        Ok((set.records, inflated.get()))
    }

    /// Appends this batch to `out` holding `records` instead (some of its
    /// own, changed or fewer), with its codec, spanning the same offsets.
    pub fn encode(&self, records: &[Record], out: &mut BytesMut) -> Result<()> {
        self.encode_ending(records, self.last_offset(), out)
    }

    /// Like [`Batch::encode`], the batch ending at offset `last` (at or
    /// before its own last offset: a consumer resumes after it).
    pub fn encode_ending(&self, records: &[Record], last: i64, out: &mut BytesMut) -> Result<()> {
        let start = out.len();
        if records.is_empty() {
            self.encode_empty(last, out)?;
            return Ok(());
        }
        let compression = match self.attributes & CODEC_BITS {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => bail!("unknown compression codec {other}"),
        };
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(out, records.iter(), &options)?;
        let batch = &mut out[start..];
        if batch.len() < at::RECORDS || i32_at(batch, at::RECORD_COUNT) as usize != records.len() {
            bail!("the records of one batch no longer fit one batch");
        }
        // The crate derives the offsets from the records left: the batch
        // keeps its last offset, so a consumer resumes after every record
        // it held, and its timestamp type.
        let base = i64_at(batch, 0);
        let delta = last
            .checked_sub(base)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d >= 0)
            .context("record offsets out of the batch's range")?;
        batch[at::LAST_OFFSET_DELTA..at::LAST_OFFSET_DELTA + 4]
            .copy_from_slice(&delta.to_be_bytes());
        let attributes = i16_at(batch, at::ATTRIBUTES) | (self.attributes & LOG_APPEND_TIME);
        batch[at::ATTRIBUTES..at::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        if self.attributes & LOG_APPEND_TIME != 0 {
            batch[at::MAX_TIMESTAMP..at::MAX_TIMESTAMP + 8]
                .copy_from_slice(&self.max_timestamp.to_be_bytes());
        }
        if self.base_sequence == -1 {
            batch[at::BASE_SEQUENCE..at::BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
        }
        let crc = crc32c::crc32c(&batch[at::ATTRIBUTES..]);
        batch[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// The header alone with no records, ending at offset `last`: what
    /// log compaction leaves of a batch whose records are all gone
    /// (consumers move past it).
    fn encode_empty(&self, last: i64, out: &mut BytesMut) -> Result<()> {
        let delta = last
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d >= 0)
            .context("record offsets out of the batch's range")?;
        let start = out.len();
        out.extend_from_slice(&self.raw[..at::RECORDS]);
        let batch = &mut out[start..];
        let length = (at::RECORDS - at::LENGTH - 4) as i32;
        batch[at::LENGTH..at::LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        // Uncompressed: there is nothing to compress.
        let attributes = self.attributes & !CODEC_BITS;
        batch[at::ATTRIBUTES..at::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[at::LAST_OFFSET_DELTA..at::LAST_OFFSET_DELTA + 4]
            .copy_from_slice(&delta.to_be_bytes());
        batch[at::RECORD_COUNT..at::RECORD_COUNT + 4].copy_from_slice(&0i32.to_be_bytes());
        // Its timestamps and producer fields stay as they were.
        let crc = crc32c::crc32c(&batch[at::ATTRIBUTES..]);
        batch[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests;

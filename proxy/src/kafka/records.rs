//! Record sets (the `records` bytes of a Produce request's partition or a
//! Fetch answer's) decoded into records and re-encoded with the codec
//! each batch came with, through the `kafka-protocol` crate's record
//! batches. Decompression is Sluice's own and bounded: a client's batch
//! of a few kilobytes must not inflate into gigabytes (the crate's own
//! decompressors inflate without a limit, and its snappy one allocates
//! whatever length a block claims).
//!
//! The groundwork of record policies (issue #17); nothing on the request
//! path decodes records yet.

use std::io::Read;

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, RecordSet,
};

/// Xerial's framing of snappy (what Java clients send): magic, version,
/// compatible version, then length-prefixed raw blocks.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER: usize = 16;

/// Decodes every batch of `records`, refusing one whose records inflate
/// beyond `max_inflated` bytes.
pub fn decode(records: &Bytes, max_inflated: usize) -> Result<Vec<RecordSet>> {
    let mut buf = records.clone();
    let mut sets = Vec::new();
    while !buf.is_empty() {
        let inflate = |compressed: &mut Bytes, codec: Compression| -> Result<Bytes> {
            inflate(compressed, codec, max_inflated)
        };
        sets.push(RecordBatchDecoder::decode_with_custom_compression(
            &mut buf,
            Some(inflate),
        )?);
    }
    Ok(sets)
}

/// Encodes `sets` again, each batch with its own codec and version.
pub fn encode(sets: &[RecordSet]) -> Result<Bytes> {
    let mut out = BytesMut::new();
    for set in sets {
        let options = RecordEncodeOptions {
            version: set.version,
            compression: set.compression,
        };
        RecordBatchEncoder::encode(&mut out, set.records.iter(), &options)?;
    }
    Ok(out.freeze())
}

/// The records of one batch, decompressed, at most `max` bytes.
fn inflate(compressed: &mut Bytes, codec: Compression, max: usize) -> Result<Bytes> {
    let input = std::mem::take(compressed);
    let bounded = |reader: &mut dyn Read, what: &str| -> Result<Bytes> {
        let mut out = Vec::new();
        reader
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .with_context(|| format!("{what} records do not decompress"))?;
        if out.len() > max {
            bail!("{what} records inflate beyond {max} bytes");
        }
        Ok(Bytes::from(out))
    };
    match codec {
        Compression::None => Ok(input),
        Compression::Gzip => bounded(&mut flate2::read::GzDecoder::new(&input[..]), "gzip"),
        Compression::Zstd => bounded(&mut zstd::stream::read::Decoder::new(&input[..])?, "zstd"),
        Compression::Lz4 => bounded(&mut lz4::Decoder::new(&input[..])?, "lz4"),
        Compression::Snappy => snappy(&input, max),
    }
}

/// Snappy, raw or in xerial's framing, each block's claimed length
/// checked against what is left of `max` before it is allocated.
fn snappy(input: &[u8], max: usize) -> Result<Bytes> {
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut block = |raw: &[u8], out: &mut Vec<u8>| -> Result<()> {
        let length = snap::raw::decompress_len(raw).context("snappy block header")?;
        if out.len() + length > max {
            bail!("snappy records inflate beyond {max} bytes");
        }
        let start = out.len();
        out.resize(start + length, 0);
        decoder
            .decompress(raw, &mut out[start..])
            .context("snappy records do not decompress")?;
        Ok(())
    };
    if !input.starts_with(XERIAL_MAGIC) {
        block(input, &mut out)?;
        return Ok(Bytes::from(out));
    }
    let mut rest = input
        .get(XERIAL_HEADER..)
        .context("xerial header cut short")?;
    while !rest.is_empty() {
        let length = rest
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .context("xerial block length cut short")?;
        let raw = rest.get(4..4 + length).context("xerial block cut short")?;
        block(raw, &mut out)?;
        rest = &rest[4 + length..];
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::{Record, TimestampType};

    use super::*;

    fn record(i: i64, value: &[u8], producer_id: i64, transactional: bool) -> Record {
        Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if producer_id < 0 { -1 } else { 3 },
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: if producer_id < 0 { -1 } else { 7 + i as i32 },
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        }
    }

    fn encoded(records: &[Record], compression: Compression) -> Bytes {
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        out.freeze()
    }

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips_keeping_its_codec_and_producer_fields() {
        for codec in CODECS {
            let records: Vec<Record> = (0..3)
                .map(|i| record(i, b"hello records", 4242, true))
                .collect();
            let wire = encoded(&records, codec);
            let sets = decode(&wire, 1 << 20).unwrap_or_else(|e| panic!("{codec:?}: {e:#}"));
            assert_eq!(sets.len(), 1);
            assert_eq!(sets[0].compression, codec, "the batch keeps its codec");
            let got = &sets[0].records;
            assert_eq!(got.len(), 3);
            assert_eq!(
                (got[1].producer_id, got[1].producer_epoch, got[1].sequence),
                (4242, 3, 8),
                "{codec:?}"
            );
            assert!(got.iter().all(|r| r.transactional));
            assert_eq!(got[2].value.as_deref(), Some(&b"hello records"[..]));
            // Encoded again: the same records decode from it.
            let again = decode(&encode(&sets).unwrap(), 1 << 20).unwrap();
            assert_eq!(again, sets, "{codec:?}");
        }
    }

    #[test]
    fn a_batch_that_inflates_beyond_the_limit_is_refused() {
        let big = vec![0u8; 4 << 20];
        for codec in CODECS.into_iter().skip(1) {
            let wire = encoded(&[record(0, &big, -1, false)], codec);
            assert!(
                wire.len() < 1 << 20,
                "{codec:?} compresses zeros: {}",
                wire.len()
            );
            let err = decode(&wire, 1 << 20).unwrap_err();
            assert!(format!("{err:#}").contains("beyond"), "{codec:?}: {err:#}");
            assert!(decode(&wire, 8 << 20).is_ok(), "{codec:?} within the limit");
        }
    }

    #[test]
    fn xerial_snappy_is_read_block_by_block_and_bounded() {
        let block = snap::raw::Encoder::new()
            .compress_vec(&[7u8; 1000])
            .unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for _ in 0..3 {
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        assert_eq!(snappy(&framed, 3000).unwrap().len(), 3000);
        assert!(snappy(&framed, 2999).is_err());
        // A block claiming more than is there is an error, not a panic.
        let mut cut = framed.clone();
        cut.truncate(framed.len() - 10);
        assert!(snappy(&cut, 1 << 20).is_err());
    }
}

use kafka_protocol::records::TimestampType;

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
        offset: 100 + i,
        // As decoded: the base sequence (-1 without a producer id) plus
        // the offset delta.
        sequence: if producer_id < 0 {
            -1 + i as i32
        } else {
            7 + i as i32
        },
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

/// Decodes every batch of `wire` with the crate's own decoder (what a
/// client would read).
fn read_back(wire: &Bytes) -> Vec<kafka_protocol::records::RecordSet> {
    let mut buf = wire.clone();
    RecordBatchDecoder::decode_all(&mut buf).unwrap()
}

#[test]
fn every_codec_round_trips_keeping_its_codec_and_producer_fields() {
    for codec in CODECS {
        let records: Vec<Record> = (0..3)
            .map(|i| record(i, b"hello records", 4242, true))
            .collect();
        let wire = encoded(&records, codec);
        let split = split(&wire).unwrap();
        assert_eq!(split.batches.len(), 1);
        assert!(split.tail.is_empty());
        let batch = &split.batches[0];
        let got = batch
            .decode(1 << 20)
            .unwrap_or_else(|e| panic!("{codec:?}: {e:#}"))
            .0;
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[1].producer_id, got[1].producer_epoch, got[1].sequence),
            (4242, 3, 8),
            "{codec:?}"
        );
        assert!(got.iter().all(|r| r.transactional));
        let mut out = BytesMut::new();
        batch.encode(&got, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &wire[..],
            "{codec:?}: unchanged records, same bytes"
        );
        let again = read_back(&out.freeze());
        assert_eq!(again[0].compression, codec, "the batch keeps its codec");
        assert_eq!(again[0].records, got, "{codec:?}");
    }
}

#[test]
fn a_batch_keeps_its_last_offset_when_records_are_left_out() {
    for codec in CODECS {
        let records: Vec<Record> = (0..5).map(|i| record(i, b"v", -1, false)).collect();
        let wire = encoded(&records, codec);
        let batch = &split(&wire).unwrap().batches[0];
        let all = batch.decode(1 << 20).unwrap().0;
        // The first and the last record left out.
        let mut out = BytesMut::new();
        batch.encode(&all[1..4], &mut out).unwrap();
        let out = out.freeze();
        let again = split(&out).unwrap();
        let kept = &again.batches[0];
        assert_eq!(kept.base_offset, 101, "{codec:?}");
        assert_eq!(
            kept.base_offset + i64::from(kept.last_offset_delta),
            104,
            "{codec:?}: the consumer resumes at 105"
        );
        assert_eq!(kept.base_sequence, -1, "{codec:?}");
        let offsets: Vec<i64> = kept
            .decode(1 << 20)
            .unwrap()
            .0
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [101, 102, 103], "{codec:?}");
        // Every record left out: an empty batch over the same offsets.
        let mut out = BytesMut::new();
        batch.encode(&[], &mut out).unwrap();
        let out = out.freeze();
        let empty = &split(&out).unwrap().batches[0];
        assert_eq!(
            (empty.base_offset, empty.last_offset_delta),
            (100, 4),
            "{codec:?}"
        );
        assert!(empty.decode(1 << 20).unwrap().0.is_empty());
        assert!(read_back(&out)[0].records.is_empty(), "a client reads it");
    }
}

#[test]
fn log_append_time_is_kept() {
    let records: Vec<Record> = (0..2).map(|i| record(i, b"v", -1, false)).collect();
    let mut wire = BytesMut::from(&encoded(&records, Compression::None)[..]);
    // As a broker writes it: log-append time, its own max timestamp.
    let attributes = i16_at(&wire, at::ATTRIBUTES) | LOG_APPEND_TIME;
    wire[at::ATTRIBUTES..at::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    wire[at::MAX_TIMESTAMP..at::MAX_TIMESTAMP + 8].copy_from_slice(&42i64.to_be_bytes());
    let crc = crc32c::crc32c(&wire[at::ATTRIBUTES..]);
    wire[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    let wire = wire.freeze();
    let batch = &split(&wire).unwrap().batches[0];
    let mut got = batch.decode(1 << 20).unwrap().0;
    got[0].value = Some(Bytes::from_static(b"changed"));
    let mut out = BytesMut::new();
    batch.encode(&got, &mut out).unwrap();
    let again = Batch::read(out.freeze());
    assert_ne!(again.attributes & LOG_APPEND_TIME, 0);
    assert_eq!(again.max_timestamp, 42);
    assert!(again.decode(1 << 20).is_ok(), "CRC right");
}

#[test]
fn a_cut_batch_at_the_end_is_kept_as_it_came() {
    let records: Vec<Record> = (0..2).map(|i| record(i, b"v", -1, false)).collect();
    let one = encoded(&records, Compression::None);
    let mut wire = BytesMut::from(&one[..]);
    wire.extend_from_slice(&one[..one.len() - 3]);
    let split = split(&wire.freeze()).unwrap();
    assert_eq!(split.batches.len(), 1);
    assert_eq!(split.tail.len(), one.len() - 3);
}

#[test]
fn old_message_formats_and_bad_batches_are_errors_not_panics() {
    let records: Vec<Record> = (0..2).map(|i| record(i, b"v", -1, false)).collect();
    let mut wire = BytesMut::from(&encoded(&records, Compression::None)[..]);
    wire[at::MAGIC] = 1;
    let err = split(&wire.clone().freeze()).unwrap_err();
    assert!(format!("{err}").contains("message format v1"), "{err}");
    wire[at::MAGIC] = 2;
    wire[at::RECORDS + 1] ^= 0xff;
    let batch = &split(&wire.freeze()).unwrap().batches[0];
    let err = batch.decode(1 << 20).unwrap_err();
    assert!(format!("{err}").contains("Cyclic redundancy"), "{err}");
    let mut short = BytesMut::new();
    short.extend_from_slice(&0i64.to_be_bytes());
    short.extend_from_slice(&20i32.to_be_bytes());
    short.extend_from_slice(&[0, 0, 0, 0, 2]);
    short.extend_from_slice(&[0; 15]);
    assert!(split(&short.freeze()).is_err());
}

#[test]
fn repeated_header_keys_are_refused_rather_than_collapsed() {
    // Two headers named "h" on one record, written by hand.
    let mut r = record(0, b"v", -1, false);
    r.headers.insert("h".into(), Some(Bytes::from_static(b"1")));
    r.headers.insert("i".into(), Some(Bytes::from_static(b"2")));
    let mut wire = BytesMut::from(&encoded(&[r], Compression::None)[..]);
    let at_i = wire.windows(2).rposition(|w| w == b"\x02i").unwrap();
    wire[at_i + 1] = b'h';
    let crc = crc32c::crc32c(&wire[at::ATTRIBUTES..]);
    wire[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    let batch = &split(&wire.freeze()).unwrap().batches[0];
    let err = batch.decode(1 << 20).unwrap_err();
    assert!(format!("{err}").contains("repeated"), "{err}");
}

#[test]
fn a_batch_that_inflates_beyond_the_limit_is_refused() {
    let big = vec![0u8; 4 << 20];
    for codec in CODECS.into_iter().skip(1) {
        let wire = encoded(&[record(0, &big, -1, false)], codec);
        assert!(wire.len() < 1 << 20, "{codec:?} compresses zeros");
        let batch = &split(&wire).unwrap().batches[0];
        let err = batch.decode(1 << 20).unwrap_err();
        assert!(format!("{err:#}").contains("beyond"), "{codec:?}: {err:#}");
        assert!(batch.decode(8 << 20).is_ok(), "{codec:?} within the limit");
    }
}

//! What the review of the first cut asked for: consumers get the records
//! before a refused one, repeated JSON members are not JSON, control and
//! transactional batches keep what makes them so, policies run in a fixed
//! order of kinds, and shadow policies never refuse what they cannot read.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ProduceResponse, RequestKind, ResponseKind},
    records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions},
};
use sluice_proto::admin::v1::{
    ConsumePolicySchemaValidation, FailureMode, PolicyEnforcement, ProducePolicyEncrypt,
    ProducePolicyModifyHeaders, ProducePolicySchemaValidation, entity::Spec,
};

use super::*;

const OBJECT: &str = r#"{"type":"object","required":["n"]}"#;

#[test]
fn a_consumer_gets_the_records_before_a_refused_one() {
    let f = policies(vec![at(
        "v",
        1,
        Spec::ConsumePolicySchemaValidation(ConsumePolicySchemaValidation {
            virtual_cluster_id: "vc".into(),
            schema: OBJECT.into(),
            failure_mode: FailureMode::Error as i32,
            ..Default::default()
        }),
    )]);
    let set = batch(
        &[r#"{"n":1}"#, r#"{"n":2}"#, "bad", r#"{"n":4}"#],
        10,
        Compression::Zstd,
    );
    let (_, answer, findings) = exchange(&f, RequestKind::Fetch(Default::default()), fetched(set));
    let ResponseKind::Fetch(answer) = answer else {
        panic!()
    };
    let p = &answer.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "the good records first");
    let out = p.records.clone().unwrap();
    let got: Vec<i64> = read(&out).iter().map(|r| r.offset).collect();
    assert_eq!(got, [10, 11]);
    assert_eq!(
        records::split(&out).unwrap().batches[0].last_offset(),
        11,
        "resume at the bad one"
    );
    let rejected = findings
        .outcomes
        .iter()
        .find(|o| o.outcome == Outcome::Rejected)
        .unwrap();
    assert!(
        rejected
            .message
            .as_deref()
            .unwrap()
            .starts_with("offset 12:"),
        "{rejected:?}"
    );
    // Fetching from the bad record: the error, no records.
    let from_bad = batch(&["bad", r#"{"n":4}"#], 12, Compression::None);
    let (_, answer, _) = exchange(
        &f,
        RequestKind::Fetch(Default::default()),
        fetched(from_bad),
    );
    let ResponseKind::Fetch(answer) = answer else {
        panic!()
    };
    let p = &answer.responses[0].partitions[0];
    assert_eq!((p.error_code, p.records.is_none()), (2, true));
}

#[test]
fn repeated_json_members_are_not_json() {
    let f = policies(vec![at(
        "v",
        1,
        Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
            virtual_cluster_id: "vc".into(),
            schema: r#"{"type":"object","properties":{"n":{"minimum":0}}}"#.into(),
            ..Default::default()
        }),
    )]);
    // serde_json alone would read n = 5 here; another reader n = -1.
    let (request, _, _) = exchange(
        &f,
        produce(batch(&[r#"{"n":-1,"n":5}"#], 0, Compression::None)),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert!(produced(&request).is_none(), "refused");
}

#[test]
fn policies_run_in_a_fixed_order_of_kinds_not_creation_order() {
    // The encrypt policy is older, yet validation runs first (on the
    // plaintext, which is valid), then encryption.
    let f = policies(vec![
        key("k", 3),
        at(
            "e",
            1,
            Spec::ProducePolicyEncrypt(ProducePolicyEncrypt {
                virtual_cluster_id: "vc".into(),
                static_key_id: "k".into(),
                ..Default::default()
            }),
        ),
        at(
            "v",
            2,
            Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
                virtual_cluster_id: "vc".into(),
                schema: OBJECT.into(),
                ..Default::default()
            }),
        ),
    ]);
    let (request, _, findings) = exchange(
        &f,
        produce(batch(&[r#"{"n":1}"#], 0, Compression::None)),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    let stored = read(&produced(&request).expect("accepted"));
    assert!(
        stored[0]
            .headers
            .contains_key(&StrBytes::from_static_str("sluice-key-id"))
    );
    assert_eq!(count(&findings, "v", Outcome::Applied), 1);
}

/// A batch of `records` as written with `transactional`/`control` set.
fn flagged(transactional: bool, control: bool) -> Bytes {
    let records: Vec<Record> = (0..2)
        .map(|i| Record {
            transactional,
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 77,
            producer_epoch: 2,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i,
            sequence: 40 + i as i32,
            timestamp: 1,
            key: Some(Bytes::from_static(b"\x00\x00\x00\x00")),
            value: Some(Bytes::from_static(b"\x00\x00\x00\x00\x00\x00")),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    out.freeze()
}

#[test]
fn control_batches_pass_untouched_and_transactional_ones_keep_their_flags() {
    let f = policies(vec![at(
        "h",
        1,
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: "vc".into(),
            actions: vec![super::set("via", "sluice")],
            ..Default::default()
        }),
    )]);
    let control = flagged(true, true);
    let mut both = BytesMut::from(&flagged(true, false)[..]);
    both.extend_from_slice(&control);
    let (request, _, _) = exchange(
        &f,
        produce(both.freeze()),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    let out = produced(&request).unwrap();
    let split = records::split(&out).unwrap();
    assert_eq!(
        split.batches[1].raw(),
        &control,
        "the control batch as it came"
    );
    let txn = split.batches[0].decode(1 << 20).unwrap().0;
    for r in &txn {
        assert!(r.transactional && !r.control);
        assert_eq!((r.producer_id, r.producer_epoch), (77, 2));
        assert!(r.headers.contains_key(&StrBytes::from_static_str("via")));
    }
    assert_eq!((txn[0].sequence, txn[1].sequence), (40, 41));
}

#[test]
fn shadow_policies_never_refuse_what_they_cannot_read() {
    let shadow = |enforcement: PolicyEnforcement| {
        policies(vec![at(
            "v",
            1,
            Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
                virtual_cluster_id: "vc".into(),
                schema: OBJECT.into(),
                enforcement: enforcement as i32,
                ..Default::default()
            }),
        )])
    };
    // A message set of magic 1 (an old client), as far as the header goes.
    let mut old = BytesMut::from(&batch(&["x"], 0, Compression::None)[..]);
    old[16] = 1;
    let old = old.freeze();
    let (request, _, findings) = exchange(
        &shadow(PolicyEnforcement::Shadow),
        produce(old.clone()),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert_eq!(produced(&request).unwrap(), old, "forwarded as it came");
    assert_eq!(count(&findings, "v", Outcome::Failed), 1);
    let (request, response, _) = exchange(
        &shadow(PolicyEnforcement::Enforce),
        produce(old),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert!(produced(&request).is_none());
    let ResponseKind::Produce(answer) = response else {
        panic!()
    };
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 43);
}

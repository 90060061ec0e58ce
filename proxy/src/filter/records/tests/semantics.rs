//! What the review of the first cut asked for: consumers get the records
//! before a refused one, repeated JSON members are not JSON, control and
//! transactional batches keep what makes them so, policies run in a fixed
//! order of kinds, and shadow policies never refuse what they cannot read.

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        FetchRequest, ProduceResponse, RequestKind, ResponseKind, TopicName,
        fetch_request::{FetchPartition, FetchTopic},
    },
    records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions},
};
use sluice_proto::admin::v1::{
    ConsumePolicyModifyHeaders, ConsumePolicySchemaValidation, FailureMode, PolicyEnforcement,
    ProducePolicyEncrypt, ProducePolicyModifyHeaders, ProducePolicySchemaValidation, entity::Spec,
};

use super::*;

const OBJECT: &str = r#"{"type":"object","required":["n"]}"#;

/// A Fetch of partition 0 of `orders` from `offset`.
fn fetch_from(offset: i64) -> RequestKind {
    RequestKind::Fetch(FetchRequest::default().with_topics(vec![
        FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![FetchPartition::default().with_fetch_offset(offset)]),
    ]))
}

#[test]
fn a_consumer_gets_the_records_before_a_refused_one_then_the_error() {
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
    // The broker answers from the start of the batch holding the offset
    // asked for, whatever that offset.
    let answer = || {
        fetched(batch(
            &[r#"{"n":1}"#, r#"{"n":2}"#, "bad", r#"{"n":4}"#],
            10,
            Compression::Zstd,
        ))
    };
    let partition = |answer: ResponseKind| {
        let ResponseKind::Fetch(answer) = answer else {
            panic!()
        };
        answer.responses[0].partitions[0].clone()
    };
    let (_, first, findings) = exchange(&f, fetch_from(10), answer());
    let p = partition(first);
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
    // Fetching from the bad record (the same batch comes back): the
    // error, never the same good records again.
    let (_, second, _) = exchange(&f, fetch_from(12), answer());
    let p = partition(second);
    assert_eq!((p.error_code, p.records.is_none()), (2, true));
    // Without a known fetch offset (a fetch session left the partition
    // out): the error at once, never a partial answer that could repeat.
    let (_, unknown, _) = exchange(&f, RequestKind::Fetch(Default::default()), answer());
    assert_eq!(partition(unknown).error_code, 2);
    // A client past the bad record (it seeked) reads on.
    let (_, past, _) = exchange(&f, fetch_from(13), answer());
    let p = partition(past);
    assert_eq!(p.error_code, 0);
    let got: Vec<i64> = read(p.records.as_ref().unwrap())
        .iter()
        .map(|r| r.offset)
        .collect();
    assert!(got.contains(&13), "{got:?}");
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

#[test]
fn a_condition_that_cannot_be_evaluated_never_drops_refuses_or_leaks() {
    // `value.kind` of a record without `kind` cannot be evaluated.
    let condition = "value.kind == 'card'";
    let f = policies(vec![
        key("k", 5),
        at(
            "h",
            1,
            Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
                virtual_cluster_id: "vc".into(),
                condition: condition.into(),
                actions: vec![super::set("via", "sluice")],
                ..Default::default()
            }),
        ),
        at(
            "v",
            2,
            Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
                virtual_cluster_id: "vc".into(),
                condition: condition.into(),
                schema: r#"{"required":["kind"]}"#.into(),
                ..Default::default()
            }),
        ),
        at(
            "e",
            3,
            Spec::ProducePolicyEncrypt(ProducePolicyEncrypt {
                virtual_cluster_id: "vc".into(),
                condition: condition.into(),
                static_key_id: "k".into(),
                ..Default::default()
            }),
        ),
    ]);
    let (request, _, findings) = exchange(
        &f,
        produce(batch(&[r#"{"pan":"4111"}"#], 0, Compression::None)),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    let stored = read(&produced(&request).expect("not refused"));
    let r = &stored[0];
    assert!(
        !r.headers.contains_key(&StrBytes::from_static_str("via")),
        "headers: not applied"
    );
    assert!(
        r.headers
            .contains_key(&StrBytes::from_static_str("sluice-key-id")),
        "encrypt: applied all the same"
    );
    assert!(!r.value.as_ref().unwrap().windows(4).any(|w| w == b"4111"));
    assert_eq!(
        count(&findings, "v", Outcome::Rejected),
        0,
        "validate: only counted"
    );
    assert_eq!(count(&findings, "v", Outcome::Failed), 2);
    let reason = findings
        .outcomes
        .iter()
        .find(|o| o.policy_id == "h")
        .and_then(|o| o.message.clone())
        .unwrap();
    assert!(reason.contains("no member \"kind\""), "{reason}");
    assert!(
        !reason.contains("4111"),
        "no record content in reasons: {reason}"
    );
}

#[test]
fn an_unreadable_produce_batch_is_an_invalid_record_and_counted_rejected() {
    let f = policies(vec![at(
        "h",
        1,
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: "vc".into(),
            actions: vec![super::set("via", "sluice")],
            ..Default::default()
        }),
    )]);
    let mut bad = BytesMut::from(&batch(&["x"], 0, Compression::None)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // the CRC no longer holds
    let (request, response, findings) = exchange(
        &f,
        produce(bad.freeze()),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert!(produced(&request).is_none());
    let ResponseKind::Produce(answer) = response else {
        panic!()
    };
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 87);
    assert_eq!(count(&findings, "h", Outcome::Rejected), 1);
}

#[test]
fn a_fetch_answer_past_the_inflation_budget_is_deferred_not_failed() {
    use super::super::{apply::Scope, outcomes::Tally, policies::Phase, walk};
    let f = policies(vec![at(
        "h",
        1,
        Spec::ConsumePolicyModifyHeaders(ConsumePolicyModifyHeaders {
            virtual_cluster_id: "vc".into(),
            actions: vec![super::remove("drop-me")],
            ..Default::default()
        }),
    )]);
    let scope = Scope {
        api: "Fetch",
        principal: "User:a",
        client_id: "c",
        virtual_cluster: "vc",
        listener: "l",
        topic: "orders",
        partition: 0,
        phase: Phase::Consume,
    };
    let mut two = BytesMut::from(&batch(&["a"], 0, Compression::Gzip)[..]);
    two.extend_from_slice(&batch(&["b"], 1, Compression::Gzip));
    let two = two.freeze();
    let first = batch(&["a"], 0, Compression::Gzip);
    let one = records::split(&first).unwrap().batches[0]
        .decode(1 << 20)
        .unwrap()
        .1;
    // Budget for the first batch only: it is answered, the second waits.
    let mut budget = one;
    let mut tally = Tally::default();
    let walked = walk::partition(
        &f.phases.consume,
        &scope,
        &two,
        Some(0),
        &mut budget,
        &mut tally,
    );
    let walk::Walked::Deferred(Some(before)) = walked else {
        panic!("{walked:?}")
    };
    assert_eq!(read(&before).len(), 1);
    let mut none = 0;
    let walked = walk::partition(
        &f.phases.consume,
        &scope,
        &two,
        Some(0),
        &mut none,
        &mut tally,
    );
    assert!(matches!(walked, walk::Walked::Deferred(None)), "{walked:?}");
}

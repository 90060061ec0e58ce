//! Record policies on decoded messages: what reaches the broker on
//! produce and the client on consume, with each policy's outcome counts
//! (`crypto.rs`: encryption and decryption).

mod crypto;
mod semantics;

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        FetchResponse, ProduceRequest, ProduceResponse, RequestHeader, RequestKind, ResponseKind,
        TopicName,
        fetch_response::{FetchableTopicResponse, PartitionData},
        produce_request::{PartitionProduceData, TopicProduceData},
    },
    protocol::StrBytes,
    records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType},
};
use prost_types::Timestamp;
use sluice_proto::admin::v1::{
    ConsumePolicyModifyHeaders, ConsumePolicySkipRecord, Entity, HeaderAction, HeaderRemove,
    HeaderSet, PolicyEnforcement, ProducePolicyEncrypt, ProducePolicyModifyHeaders,
    ProducePolicySchemaValidation, Secret, StaticKey, entity::Spec, header_action::Action as A,
};

use super::{Outcome, RecordPolicies};
use crate::{
    auth::Principal,
    config::{Config, compiled::test_route},
    filter::{Chain, Context, Filter, Findings, InFlight, Notes, Verdict},
    kafka::records,
    listener::routes::{Mapping, PortMap},
};

pub(super) fn at(id: &str, n: i64, spec: Spec) -> Entity {
    Entity {
        id: id.into(),
        created_at: Some(Timestamp {
            seconds: n,
            nanos: 0,
        }),
        spec: Some(spec),
        ..Default::default()
    }
}

pub(super) fn key(id: &str, byte: u8) -> Entity {
    at(
        id,
        0,
        Spec::StaticKey(StaticKey {
            value: Some(Secret {
                value: [byte; 32].iter().map(|b| format!("{b:02x}")).collect(),
                ..Default::default()
            }),
        }),
    )
}

fn set(k: &str, v: &str) -> HeaderAction {
    HeaderAction {
        action: Some(A::Set(HeaderSet {
            key: k.into(),
            value: v.into(),
        })),
    }
}

fn remove(k: &str) -> HeaderAction {
    HeaderAction {
        action: Some(A::Remove(HeaderRemove { key: k.into() })),
    }
}

pub(super) fn policies(entities: Vec<Entity>) -> RecordPolicies {
    RecordPolicies::compile(
        &Config::with_entities(entities),
        "vc",
        "records-tests",
        None,
    )
    .expect("compiles")
    .expect("has policies")
}

pub(super) fn batch(values: &[&str], offset: i64, codec: Compression) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 9,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset: offset + i as i64,
            sequence: 5 + i as i32,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: [(
                StrBytes::from_static_str("drop-me"),
                Some(Bytes::from_static(b"x")),
            )]
            .into_iter()
            .collect(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: codec,
        },
    )
    .unwrap();
    out.freeze()
}

pub(super) fn read(set: &Bytes) -> Vec<Record> {
    records::split(set)
        .unwrap()
        .batches
        .iter()
        .flat_map(|b| b.decode(1 << 20).unwrap().0)
        .collect()
}

pub(super) fn produce(set: Bytes) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("orders")))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(set)),
                    ]),
            ]),
    )
}

pub(super) fn fetched(set: Bytes) -> ResponseKind {
    ResponseKind::Fetch(FetchResponse::default().with_responses(vec![
        FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![
                PartitionData::default()
                    .with_partition_index(0)
                    .with_high_watermark(100)
                    .with_records(Some(set)),
            ]),
    ]))
}

/// A request through `f`, and its answer back; what was forwarded, the
/// answer and the findings.
pub(super) fn exchange(
    f: &RecordPolicies,
    mut request: RequestKind,
    mut response: ResponseKind,
) -> (RequestKind, ResponseKind, Findings) {
    let route = test_route(
        Chain::new(Vec::new()),
        Mapping::Ports(PortMap {
            advertised_host: "127.0.0.1".into(),
            brokers: Default::default(),
            min_broker_id: 0,
            max_broker_id: 0,
        }),
    );
    let principal = Principal::user("alice");
    let (mut notes, mut findings) = (Notes::default(), Findings::default());
    let mut header =
        RequestHeader::default().with_client_id(Some(StrBytes::from_static_str("app")));
    let mut cx = Context {
        route: &route,
        principal: Some(&principal),
        notes: &mut notes,
        findings: &mut findings,
    };
    assert!(matches!(
        f.on_request(&mut cx, &mut header, &mut request),
        Verdict::Forward
    ));
    cx.principal = None;
    let key = match &request {
        RequestKind::Produce(_) => 0,
        _ => 1,
    };
    let in_flight = InFlight {
        api_key: key,
        version: 9,
        correlation_id: 1,
    };
    assert!(matches!(
        f.on_response(&mut cx, &mut response, &in_flight),
        Verdict::Forward
    ));
    (request, response, findings)
}

pub(super) fn produced(request: &RequestKind) -> Option<Bytes> {
    let RequestKind::Produce(r) = request else {
        panic!("not a produce")
    };
    r.topic_data
        .first()?
        .partition_data
        .first()?
        .records
        .clone()
}

pub(super) fn count(findings: &Findings, policy: &str, outcome: Outcome) -> u64 {
    findings
        .outcomes
        .iter()
        .filter(|o| o.policy_id == policy && o.outcome == outcome)
        .map(|o| o.count)
        .sum()
}

#[test]
fn headers_are_set_and_removed_on_produce_in_every_codec() {
    let f = policies(vec![at(
        "h",
        1,
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: "vc".into(),
            condition: "topic == 'orders' && principal == 'User:alice'".into(),
            actions: vec![set("team", "blue"), remove("drop-me")],
            ..Default::default()
        }),
    )]);
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let (request, _, findings) = exchange(
            &f,
            produce(batch(&["a", "b"], 0, codec)),
            ResponseKind::Produce(ProduceResponse::default()),
        );
        let set = produced(&request).unwrap();
        assert_eq!(
            records::split(&set).unwrap().batches[0].codec(),
            format!("{codec:?}").to_lowercase()
        );
        let got = read(&set);
        assert_eq!(got.len(), 2);
        for r in &got {
            assert_eq!(
                r.headers.get(&StrBytes::from_static_str("team")),
                Some(&Some(Bytes::from_static(b"blue")))
            );
            assert!(
                !r.headers
                    .contains_key(&StrBytes::from_static_str("drop-me"))
            );
            assert_eq!(
                (r.producer_id, r.producer_epoch),
                (9, 1),
                "idempotence kept"
            );
        }
        assert_eq!(got[1].sequence, 6, "{codec:?}: sequence numbers kept");
        assert_eq!(count(&findings, "h", Outcome::Applied), 2);
    }
}

#[test]
fn a_policy_whose_condition_rules_a_partition_out_decodes_nothing() {
    let f = policies(vec![at(
        "h",
        1,
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: "vc".into(),
            condition: "topic == 'payments'".into(),
            actions: vec![set("team", "blue")],
            ..Default::default()
        }),
    )]);
    let set = batch(&["a", "b", "c"], 0, Compression::None);
    let (request, _, findings) = exchange(
        &f,
        produce(set.clone()),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert_eq!(produced(&request).unwrap(), set, "the same bytes");
    assert_eq!(count(&findings, "h", Outcome::Skipped), 3);
}

#[test]
fn invalid_json_is_refused_naming_the_record_and_the_path() {
    let f = policies(vec![at(
        "s",
        1,
        Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
            virtual_cluster_id: "vc".into(),
            schema: r#"{"type":"object","required":["total"],"properties":{"total":{"type":"number","minimum":0}}}"#.into(),
            ..Default::default()
        }),
    )]);
    let (request, response, findings) = exchange(
        &f,
        produce(batch(
            &[r#"{"total":1}"#, r#"{"total":-5}"#],
            0,
            Compression::None,
        )),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert!(
        produced(&request).is_none(),
        "the batch never reaches the broker"
    );
    let ResponseKind::Produce(answer) = response else {
        panic!()
    };
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "INVALID_RECORD");
    assert_eq!(p.record_errors[0].batch_index, 1);
    let message = p.error_message.as_ref().unwrap().to_string();
    assert!(
        message.contains("record 1: /total: fails the schema at /properties/total/minimum"),
        "{message}"
    );
    assert!(
        !message.contains("-5"),
        "the reason never copies the record: {message}"
    );
    assert!(message.contains("hop=policy"), "{message}");
    assert_eq!(count(&findings, "s", Outcome::Rejected), 1);
    assert_eq!(count(&findings, "s", Outcome::Applied), 1);
    // Valid records go through unchanged.
    let set = batch(&[r#"{"total":3}"#], 0, Compression::Zstd);
    let (request, _, _) = exchange(
        &f,
        produce(set.clone()),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert_eq!(produced(&request).unwrap(), set);
}

#[test]
fn shadow_policies_count_and_change_nothing() {
    let f = policies(vec![at(
        "s",
        1,
        Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
            virtual_cluster_id: "vc".into(),
            schema: r#"{"type":"object"}"#.into(),
            enforcement: PolicyEnforcement::Shadow as i32,
            ..Default::default()
        }),
    )]);
    let set = batch(&["not json"], 0, Compression::None);
    let (request, _, findings) = exchange(
        &f,
        produce(set.clone()),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    assert_eq!(produced(&request).unwrap(), set);
    assert_eq!(count(&findings, "s", Outcome::Rejected), 1);
    assert!(findings.outcomes[0].shadow);
    let event = findings.outcomes[0].event().unwrap();
    assert!(
        event.shadow && event.message.contains("not JSON"),
        "{event:?}"
    );
}

#[test]
fn skipped_records_leave_their_offsets_behind() {
    let f = policies(vec![
        at(
            "skip",
            1,
            Spec::ConsumePolicySkipRecord(ConsumePolicySkipRecord {
                virtual_cluster_id: "vc".into(),
                skip_condition: "value.startsWith('secret')".into(),
                ..Default::default()
            }),
        ),
        at(
            "h",
            2,
            Spec::ConsumePolicyModifyHeaders(ConsumePolicyModifyHeaders {
                virtual_cluster_id: "vc".into(),
                actions: vec![remove("drop-me")],
                ..Default::default()
            }),
        ),
    ]);
    // A string value is not JSON: `value` is null there, so the condition
    // reads `value_text`.
    let f2 = policies(vec![at(
        "skip",
        1,
        Spec::ConsumePolicySkipRecord(ConsumePolicySkipRecord {
            virtual_cluster_id: "vc".into(),
            skip_condition: "value_text.startsWith('secret')".into(),
            ..Default::default()
        }),
    )]);
    let set = batch(&["secret-1", "public", "secret-2"], 40, Compression::Lz4);
    let (_, answer, findings) = exchange(
        &f,
        RequestKind::Fetch(Default::default()),
        fetched(set.clone()),
    );
    let ResponseKind::Fetch(answer) = answer else {
        panic!()
    };
    // `value` is null, so the skip condition cannot be evaluated: the
    // records are kept (never dropped for it), counted as failed.
    let out = answer.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(read(&out).len(), 3);
    assert_eq!(count(&findings, "skip", Outcome::Failed), 3);
    // Every record of a batch left out: an empty batch over its offsets.
    let secrets = batch(&["secret-a", "secret-b"], 60, Compression::Gzip);
    let (_, answer, _) = exchange(
        &f2,
        RequestKind::Fetch(Default::default()),
        fetched(secrets),
    );
    let ResponseKind::Fetch(answer) = answer else {
        panic!()
    };
    let out = answer.responses[0].partitions[0].records.clone().unwrap();
    assert!(read(&out).is_empty());
    let empty = &records::split(&out).unwrap().batches[0];
    assert_eq!((empty.base_offset(), empty.last_offset()), (60, 61));
    let (_, answer, findings) = exchange(&f2, RequestKind::Fetch(Default::default()), fetched(set));
    let ResponseKind::Fetch(answer) = answer else {
        panic!()
    };
    let out = answer.responses[0].partitions[0].records.clone().unwrap();
    let got = read(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].offset, got[0].value.as_deref()),
        (41, Some(&b"public"[..]))
    );
    let batch = &records::split(&out).unwrap().batches[0];
    assert_eq!(batch.last_offset(), 42, "the batch still ends at offset 42");
    assert_eq!(count(&findings, "skip", Outcome::Applied), 2);
}

#[test]
fn what_a_node_cannot_enforce_refuses_the_virtual_cluster() {
    let config = Config::with_entities(vec![at(
        "e",
        1,
        Spec::ProducePolicyEncrypt(ProducePolicyEncrypt {
            virtual_cluster_id: "vc".into(),
            static_key_id: "absent".into(),
            ..Default::default()
        }),
    )]);
    let err = RecordPolicies::compile(&config, "vc", "b", None).unwrap_err();
    assert!(
        err.contains("static_key_id: static_key absent is not on this node"),
        "{err}"
    );
    let config = Config::with_entities(vec![at(
        "s",
        1,
        Spec::ProducePolicySchemaValidation(ProducePolicySchemaValidation {
            virtual_cluster_id: "vc".into(),
            schema: r#"{"$ref":"https://example.com/s.json"}"#.into(),
            ..Default::default()
        }),
    )]);
    let err = RecordPolicies::compile(&config, "vc", "b", None).unwrap_err();
    assert!(err.contains(".schema:"), "{err}");
    let disabled = Config::with_entities(vec![at(
        "h",
        1,
        Spec::ProducePolicyModifyHeaders(ProducePolicyModifyHeaders {
            virtual_cluster_id: "vc".into(),
            enabled: Some(false),
            actions: vec![set("a", "b")],
            ..Default::default()
        }),
    )]);
    assert!(
        RecordPolicies::compile(&disabled, "vc", "b", None)
            .unwrap()
            .is_none()
    );
}

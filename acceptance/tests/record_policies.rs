//! examples/record-policies end to end: `terraform apply` gives one
//! virtual cluster produce and consume policies, a proxy joins, and real
//! clients (confluent-kafka producing and consuming, kafka-python reading
//! through the gateway and straight from tansu) show what a user would
//! notice: headers set on produce and removed on consume, every codec
//! passing a header policy intact, an idempotent producer's records
//! exactly once, a transactional producer's batches still transactional,
//! skipped records that consumers still move past and
//! commit, invalid JSON refused naming the record and the path,
//! ciphertext at rest and plaintext through the gateway across a key
//! rotation, one JSON field encrypted, and each policy's outcomes counted
//! in node status.

use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::{
    messages::{
        ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
        fetch_request::{FetchPartition, FetchTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
    },
    protocol::StrBytes,
    records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    },
};
use serde_json::{Value, json};
use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    example::Example,
    raw_client,
    server::gateways,
    stack::start_proxy_with,
};
use sluice_proto::admin::v1::{Kind, ListDataPlaneNodesRequest, ListEntitiesRequest, entity::Spec};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// One records.py command; its JSON report.
fn records(args: &[&str]) -> Value {
    let out = clients::run("python3", "records.py", args);
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report from records.py {args:?}: {out}"))
}

fn produce(bootstrap: &str, topic: &str, spec: Value) -> Vec<Value> {
    let report = records(&["produce", bootstrap, topic, &spec.to_string()]);
    report["results"].as_array().cloned().unwrap_or_default()
}

fn values(report: &Value) -> Vec<String> {
    report["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records: {report}"))
        .iter()
        .map(|r| r["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// One uncompressed record batch holding `values`.
fn batch(values: &[&str]) -> bytes::Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1 + i as i32,
            timestamp: 0,
            key: None,
            value: Some(bytes::Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encodes");
    buf.freeze()
}

/// Every record of partition 0 of `topic`, read straight from the broker
/// at `address` with a raw Fetch (read uncommitted), batch flags and all.
async fn fetch_raw(address: &str, topic: &str) -> Vec<Record> {
    let mut raw = TcpStream::connect(address).await.unwrap();
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let answer: FetchResponse = raw_client::request(&mut raw, ApiKey::Fetch, 11, &request)
        .await
        .unwrap();
    let mut records = answer.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    RecordBatchDecoder::decode_all(&mut records)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .filter(|r| !r.control)
        .collect()
}

/// Waits until the node has applied the gateway's newest revision.
async fn wait_applied(example: &Example) {
    let mut admin = example.server.client(Some(&example.token)).await;
    let gateway = gateways(&mut admin).await.remove(0);
    let Some(Spec::Gateway(g)) = &gateway.spec else {
        panic!("not a gateway")
    };
    let started = std::time::Instant::now();
    while started.elapsed() < WAIT {
        let nodes = admin
            .list_data_plane_nodes(ListDataPlaneNodesRequest {
                gateway_id: gateway.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        if nodes.iter().any(|n| n.applied_revision >= g.revision) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node never applied revision {}", g.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_policies_change_check_hide_and_encrypt_records() {
    let tansu = Tansu::start("127.0.0.5");
    let topics = [
        "stamped",
        "stamped-codecs",
        "stamped-idem",
        "stamped-txn",
        "events",
        "payments",
        "secrets",
        "cards",
    ];
    for topic in topics {
        tansu.create_topic(topic, 1);
    }
    let mut example = Example::prepare("record-policies");
    let (a, b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let ports = json!([a.min(b), a.max(b)]);
    example.var("backend_bootstrap", &tansu.address);
    example.var("ports", &ports);
    example.apply();
    example.assert_no_changes();
    let proxy = start_proxy_with(&example.server, example.dir.path(), "record-policies", &[]);
    proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{}", ports[1]))
        })
        .expect("the proxy never listened");
    let boot = format!("127.0.0.1:{}", ports[0]);
    let direct = tansu.address.clone();

    // Headers: set on produce (seen by kafka-python through the gateway),
    // removed on consume (still stored in the broker).
    let headers = json!({"trace-internal": "t-1", "keep": "k"});
    let sent = produce(
        &boot,
        "stamped",
        json!({"values": ["a", "b"], "headers": headers}),
    );
    assert!(sent.iter().all(|r| r["error"].is_null()), "{sent:?}");
    let through = records(&["read", &boot, "stamped"]);
    assert_eq!(values(&through), ["a", "b"], "{through}");
    for r in through["records"].as_array().unwrap() {
        assert_eq!(
            r["headers"],
            json!({"keep": "k", "via": "sluice"}),
            "{through}"
        );
    }
    let stored = records(&["read", &direct, "stamped"]);
    assert_eq!(
        stored["records"][0]["headers"],
        json!({"trace-internal": "t-1", "keep": "k", "via": "sluice"}),
        "{stored}"
    );

    // Every codec confluent-kafka produces passes a header policy intact.
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let mut expected = Vec::new();
    for codec in codecs {
        let batch: Vec<String> = (0..3)
            .map(|i| format!("{codec}-{i}-{}", "x".repeat(300)))
            .collect();
        let sent = produce(
            &boot,
            "stamped-codecs",
            json!({"values": batch, "batch": true, "compression": codec}),
        );
        assert!(
            sent.iter().all(|r| r["error"].is_null()),
            "{codec}: {sent:?}"
        );
        expected.extend(batch);
    }
    let got = records(&["consume", &boot, "stamped-codecs", "codecs"]);
    assert_eq!(values(&got), expected, "{got}");
    for r in got["records"].as_array().unwrap() {
        assert_eq!(r["headers"]["via"], "sluice", "{r}");
    }

    // An idempotent producer keeps its sequence numbers through a policy:
    // every record once, in order.
    let many: Vec<String> = (0..300).map(|i| format!("idem-{i}")).collect();
    let sent = produce(
        &boot,
        "stamped-idem",
        json!({"values": many, "batch": true, "idempotent": true}),
    );
    assert!(sent.iter().all(|r| r["error"].is_null()), "{sent:?}");
    let got = records(&["consume", &boot, "stamped-idem", "idem"]);
    assert_eq!(values(&got), many, "exactly once, in order");

    // A transactional producer through a policy: its batches reach the
    // broker still transactional, with its producer id and epoch and the
    // policy's header (tansu has no EndTxn, so the transaction stays open;
    // what is checked is what the gateway forwarded).
    let sent = produce(
        &boot,
        "stamped-txn",
        json!({"values": ["t-0", "t-1", "t-2"], "batch": true, "transactional_id": "txn-1"}),
    );
    assert!(sent.iter().all(|r| r["error"].is_null()), "{sent:?}");
    let stored = fetch_raw(&direct, "stamped-txn").await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    for r in &stored {
        assert!(r.transactional && !r.control, "{r:?}");
        assert!(r.producer_id >= 0 && r.producer_epoch >= 0, "{r:?}");
        assert_eq!(
            r.headers.get(&StrBytes::from_static_str("via")),
            Some(&Some(bytes::Bytes::from_static(b"sluice"))),
            "{r:?}"
        );
    }
    let sequences: Vec<i32> = stored.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, [0, 1, 2], "sequence numbers kept");
    let payloads: Vec<&[u8]> = stored.iter().filter_map(|r| r.value.as_deref()).collect();
    assert_eq!(payloads, [&b"t-0"[..], b"t-1", b"t-2"]);

    // Skipped records are left out, and the consumer moves past them and
    // commits: no stuck consumer, no rewind.
    let events = |ns: &[(u32, &str)]| -> Value {
        json!({"values": ns.iter().map(|(n, level)| json!({"n": n, "level": level}).to_string()).collect::<Vec<_>>(), "batch": true})
    };
    produce(
        &boot,
        "events",
        events(&[(0, "info"), (1, "debug"), (2, "info"), (3, "debug")]),
    );
    let got = records(&["consume", &boot, "events", "watchers"]);
    let ns: Vec<i64> = got["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r["value"].as_str().unwrap()).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ns, [0, 2], "{got}");
    // librdkafka commits its position after the last record it delivered
    // (a skipped record at the very end is covered by the next commit).
    assert_eq!(got["committed"].as_i64(), Some(3), "{got}");
    produce(&boot, "events", events(&[(4, "info"), (5, "debug")]));
    let again = records(&["consume", &boot, "events", "watchers"]);
    let ns: Vec<&str> = again["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        ns.len(),
        1,
        "only the new info record, nothing again: {again}"
    );
    assert!(ns[0].contains("\"n\":4"), "{again}");
    assert_eq!(
        again["committed"].as_i64(),
        Some(5),
        "moved past 3 (skipped): {again}"
    );
    assert!(again["errors"].as_array().unwrap().is_empty(), "{again}");

    // Schema validation: valid accepted, invalid refused as
    // INVALID_RECORD (librdkafka shows the code; the broker-style message
    // naming the record and the JSON-schema path is in the answer, KIP-467).
    let sent = produce(
        &boot,
        "payments",
        json!({"values": ["{\"amount\": 5}", "{\"amount\": -1}", "not json"]}),
    );
    assert!(sent[0]["error"].is_null(), "{sent:?}");
    assert_eq!(sent[1]["error"], "INVALID_RECORD", "{sent:?}");
    assert_eq!(sent[2]["error"], "INVALID_RECORD", "{sent:?}");
    let mut raw = TcpStream::connect(&boot).await.unwrap();
    let three = batch(&[
        "{\"amount\": 1}",
        "{\"amount\": \"lots\"}",
        "{\"amount\": 2}",
    ]);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("payments")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(three)),
                ]),
        ]);
    let answer: ProduceResponse = raw_client::request(&mut raw, ApiKey::Produce, 9, &request)
        .await
        .unwrap();
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "{answer:?}");
    assert_eq!(p.record_errors[0].batch_index, 1, "{answer:?}");
    let message = p
        .error_message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("hop=policy") && message.contains("record 1: /amount"),
        "{message}"
    );
    let stored = records(&["read", &direct, "payments"]);
    assert_eq!(
        values(&stored),
        ["{\"amount\": 5}"],
        "only the valid one is stored"
    );

    // Encryption: ciphertext at rest, plaintext through the gateway; the
    // key rotates (new records under the new key) and old records still
    // decrypt.
    produce(&boot, "secrets", json!({"values": ["secret-1"]}));
    example.var("encryption_key", "new");
    example.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    wait_applied(&example).await;
    produce(&boot, "secrets", json!({"values": ["secret-2"]}));
    let stored = records(&["read", &direct, "secrets"]);
    let at_rest = values(&stored);
    assert_eq!(at_rest.len(), 2, "{stored}");
    assert!(at_rest.iter().all(|v| !v.contains("secret-")), "{stored}");
    let key_ids: Vec<&str> = stored["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["headers"]["sluice-key-id"].as_str().unwrap_or_default())
        .collect();
    assert!(
        !key_ids[0].is_empty() && key_ids[0] != key_ids[1],
        "rotated: {key_ids:?}"
    );
    let through = records(&["read", &boot, "secrets"]);
    assert_eq!(values(&through), ["secret-1", "secret-2"], "{through}");
    assert!(
        through["records"][0]["headers"]
            .get("sluice-key-id")
            .is_none(),
        "{through}"
    );

    // Field-level: only the card number is encrypted.
    let card = json!({"card": {"number": "4111111111111111", "exp": "12/30"}, "total": 7});
    produce(&boot, "cards", json!({"values": [card.to_string()]}));
    let stored = records(&["read", &direct, "cards"]);
    let at_rest: Value = serde_json::from_str(&values(&stored)[0]).unwrap();
    assert_eq!(
        (&at_rest["card"]["exp"], &at_rest["total"]),
        (&json!("12/30"), &json!(7))
    );
    assert!(
        at_rest["card"]["number"]
            .as_str()
            .unwrap()
            .starts_with("sluice:v1:"),
        "{at_rest}"
    );
    let through = records(&["read", &boot, "cards"]);
    let read: Value = serde_json::from_str(&values(&through)[0]).unwrap();
    assert_eq!(read, card);

    // Node status counts each policy's outcomes, by policy id.
    let mut admin = example.server.client(Some(&example.token)).await;
    let gateway = gateways(&mut admin).await[0].id.clone();
    let id_of = async |admin: &mut sluice_acceptance::server::Admin, kind: Kind| {
        admin
            .list_entities(ListEntitiesRequest {
                kind: kind as i32,
                gateway_id: gateway.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entities[0]
            .id
            .clone()
    };
    let schema = id_of(&mut admin, Kind::ProducePolicySchemaValidation).await;
    let skip = id_of(&mut admin, Kind::ConsumePolicySkipRecord).await;
    let started = std::time::Instant::now();
    loop {
        let nodes = admin
            .list_data_plane_nodes(ListDataPlaneNodesRequest {
                gateway_id: gateway.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        let outcomes: Vec<_> = nodes.iter().flat_map(|n| &n.policy_outcomes).collect();
        let count = |id: &str, outcome: &str| {
            outcomes
                .iter()
                .find(|o| o.policy_id == id && o.outcome == outcome)
                .map(|o| (o.count, o.last_message.clone()))
        };
        let rejected = count(&schema, "rejected");
        let skipped = count(&skip, "applied");
        if let (Some((r, message)), Some((s, _))) = (&rejected, &skipped)
            && *r >= 3
            && *s >= 3
        {
            assert!(message.contains("/amount"), "{message}");
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "no policy outcomes in node status: {outcomes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Terraform reads the same counts (the sluice_data_plane_nodes data
    // source, summed by the example's output).
    example.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let outputs = example.tf.ok(&["output", "-json", "-no-color"]);
    let outputs: Value =
        serde_json::from_str(&outputs).unwrap_or_else(|e| panic!("{e}: {outputs}"));
    let rejected = outputs["records_rejected"]["value"].as_f64();
    assert!(rejected.is_some_and(|r| r >= 3.0), "{outputs}");
    drop(proxy);
}

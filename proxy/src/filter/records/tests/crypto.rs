//! Encryption on produce, decryption on consume: ciphertext at rest, keys
//! rotating, JSON fields.

use bytes::Bytes;
use kafka_protocol::{
    messages::{ProduceResponse, RequestKind, ResponseKind},
    protocol::StrBytes,
    records::{Compression, Record},
};
use sluice_proto::admin::v1::{
    ConsumePolicyDecrypt, FailureMode, KeySource, ProducePolicyEncrypt, entity::Spec,
};

use super::*;

fn encrypt_decrypt(encrypt_with: &str, fields: &[&str]) -> (RecordPolicies, RecordPolicies) {
    let keys = vec![key("old", 1), key("new", 2)];
    let mut produce = keys.clone();
    produce.push(at(
        "e",
        1,
        Spec::ProducePolicyEncrypt(ProducePolicyEncrypt {
            virtual_cluster_id: "vc".into(),
            static_key_id: encrypt_with.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }),
    ));
    let mut consume = keys;
    consume.push(at(
        "d",
        1,
        Spec::ConsumePolicyDecrypt(ConsumePolicyDecrypt {
            virtual_cluster_id: "vc".into(),
            key_sources: ["new", "old"]
                .iter()
                .map(|k| KeySource {
                    static_key_id: k.to_string(),
                })
                .collect(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            failure_mode: FailureMode::Error as i32,
            ..Default::default()
        }),
    ));
    (policies(produce), policies(consume))
}

/// Produces `value` through `e` and fetches it back through `d`: what the
/// broker holds and what the consumer reads.
fn through(e: &RecordPolicies, d: &RecordPolicies, value: &str) -> (Record, Record) {
    let (request, _, _) = exchange(
        e,
        produce(batch(&[value], 0, Compression::Gzip)),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    let stored = produced(&request).unwrap();
    let (_, answer, _) = exchange(
        d,
        RequestKind::Fetch(Default::default()),
        fetched(stored.clone()),
    );
    let ResponseKind::Fetch(answer) = answer else {
        panic!()
    };
    let p = &answer.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (
        read(&stored).remove(0),
        read(p.records.as_ref().unwrap()).remove(0),
    )
}

#[test]
fn encrypted_at_rest_plaintext_through_the_gateway_and_keys_rotate() {
    let (e_old, d) = encrypt_decrypt("old", &[]);
    let (stored, consumed) = through(&e_old, &d, "card 4111");
    assert!(
        !stored
            .value
            .as_ref()
            .unwrap()
            .windows(4)
            .any(|w| w == b"4111")
    );
    assert_eq!(
        stored
            .headers
            .get(&StrBytes::from_static_str("sluice-key-id")),
        Some(&Some(Bytes::from_static(b"old")))
    );
    assert_eq!(consumed.value.as_deref(), Some(&b"card 4111"[..]));
    assert!(
        !consumed
            .headers
            .contains_key(&StrBytes::from_static_str("sluice-key-id"))
    );
    // Rotated: new records under the new key, both read back.
    let (e_new, d) = encrypt_decrypt("new", &[]);
    let (_, consumed) = through(&e_new, &d, "card 5500");
    assert_eq!(consumed.value.as_deref(), Some(&b"card 5500"[..]));
    // A decrypt policy without the key refuses the partition (error mode).
    let (e, _) = encrypt_decrypt("old", &[]);
    let only_new = policies(vec![
        key("new", 2),
        at(
            "d",
            1,
            Spec::ConsumePolicyDecrypt(ConsumePolicyDecrypt {
                virtual_cluster_id: "vc".into(),
                key_sources: vec![KeySource {
                    static_key_id: "new".into(),
                }],
                ..Default::default()
            }),
        ),
    ]);
    let (request, _, _) = exchange(
        &e,
        produce(batch(&["x"], 0, Compression::None)),
        ResponseKind::Produce(ProduceResponse::default()),
    );
    let (_, answer, findings) = exchange(
        &only_new,
        RequestKind::Fetch(Default::default()),
        fetched(produced(&request).unwrap()),
    );
    let ResponseKind::Fetch(answer) = answer else {
        panic!()
    };
    assert_eq!(
        answer.responses[0].partitions[0].error_code, 2,
        "CORRUPT_MESSAGE"
    );
    assert!(answer.responses[0].partitions[0].records.is_none());
    assert_eq!(count(&findings, "d", Outcome::Rejected), 1);
}

#[test]
fn field_level_encryption_leaves_the_rest_readable() {
    let (e, d) = encrypt_decrypt("new", &["$.card.number", "$.missing"]);
    let (stored, consumed) = through(
        &e,
        &d,
        r#"{"card":{"number":"4111","exp":"12/30"},"total":7}"#,
    );
    let at_rest: serde_json::Value =
        serde_json::from_slice(stored.value.as_ref().unwrap()).unwrap();
    assert_eq!(at_rest["total"], 7);
    assert_eq!(at_rest["card"]["exp"], "12/30");
    assert!(
        at_rest["card"]["number"]
            .as_str()
            .unwrap()
            .starts_with("sluice:v1:new:")
    );
    let back: serde_json::Value = serde_json::from_slice(consumed.value.as_ref().unwrap()).unwrap();
    assert_eq!(back["card"]["number"], "4111");
}

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, FetchResponse, ProduceResponse, ResponseHeader},
    protocol::{Decodable, Encodable},
};
use sluice_proto::dataplane::v1::{QuotaShare, QuotaShares};

use super::{
    Metric, Quotas,
    policies::{Per, Policy},
    throttle, *,
};
use crate::telemetry::Telemetry;

fn policy(per: Per, produce: u64, connections: u64, shadow: bool) -> Policy {
    Policy {
        id: "q".into(),
        shadow,
        conditions: Vec::new(),
        per,
        produce_bytes: produce,
        fetch_bytes: 0,
        requests: 0,
        connections,
    }
}

fn policies(p: Policy) -> Arc<QuotaPolicies> {
    let reads_client_id = p.per == Per::ClientId;
    Arc::new(QuotaPolicies {
        policies: vec![p],
        reads_client_id,
        reads_api: false,
    })
}

fn meter(quotas: &Arc<Quotas>, telemetry: &Arc<Telemetry>, principal: &str) -> Meter {
    Meter::new(
        quotas.clone(),
        telemetry.clone(),
        Who {
            principal: principal.into(),
            listener: "l".into(),
            virtual_cluster: "vc".into(),
        },
    )
}

/// How long until `bucket` is out of debt (zero: it is not).
fn debt(bucket: &buckets::Bucket, limit: f64, now: Instant) -> Duration {
    match bucket.try_charge(0.0, limit, 1.0, false, now) {
        Ok(_) => Duration::ZERO,
        Err(wait) => wait,
    }
}

/// A request that goes through (it must): the throttle it earned.
fn request(
    m: &Meter,
    p: &Arc<QuotaPolicies>,
    api: i16,
    client_id: &[u8],
    bytes: usize,
) -> Duration {
    m.try_request(p, api, client_id, bytes, true)
        .unwrap_or_else(|wait| panic!("held for {wait:?}"))
}

/// How long a request of no bytes would be held (zero: it went through).
fn held(m: &Meter, p: &Arc<QuotaPolicies>, api: i16, client_id: &[u8]) -> Duration {
    m.try_request(p, api, client_id, 0, true)
        .err()
        .unwrap_or_default()
}

#[test]
fn a_bucket_holds_its_rate_over_time() {
    let quotas = Quotas::default();
    let bucket = quotas.bucket(&"q".into(), Metric::ProduceBytes, "");
    let start = Instant::now();
    // 1000 B/s; a client that waits out every throttle sends 10 KiB
    // batches for 20 s of bucket time.
    let (mut now, mut sent) = (start, 0.0);
    while now < start + Duration::from_secs(20) {
        assert!(
            debt(&bucket, 1000.0, now).is_zero(),
            "it waited out every throttle"
        );
        let throttle = bucket.charge(1024.0, 1000.0, 1.0, now);
        sent += 1024.0;
        now += throttle.max(Duration::from_millis(1));
    }
    let rate = sent / 20.0;
    // The first second's burst on top of the rate, nothing more.
    assert!((1000.0..=1100.0).contains(&rate), "{rate} B/s");
}

#[test]
fn requests_wait_for_debt_however_many_connections_send_them() {
    let quotas = Quotas::default();
    let bucket = quotas.bucket(&"q".into(), Metric::ProduceBytes, "");
    let start = Instant::now();
    // A client ignoring throttles over many connections: each request
    // goes on once the shared bucket is out of debt, whichever
    // connection sends it — 10 s of such traffic moves 10 s of the rate
    // (plus the burst and the last request).
    let (mut now, mut sent) = (start, 0.0);
    while now < start + Duration::from_secs(10) {
        let hold = debt(&bucket, 1000.0, now);
        if !hold.is_zero() {
            now += hold;
            continue;
        }
        bucket
            .try_charge(3000.0, 1000.0, 1.0, false, now)
            .expect("out of debt");
        sent += 3000.0;
    }
    assert!(
        sent <= 1000.0 * (10.0 + 1.0) + 3000.0,
        "{sent} bytes in 10 s"
    );
    assert!(sent >= 1000.0 * 10.0, "{sent} bytes in 10 s");
}

#[test]
fn the_share_scales_the_rate_and_the_default_applies_until_one_arrives() {
    let quotas = Quotas::default();
    let bucket = quotas.bucket(&"q".into(), Metric::Requests, "");
    let now = Instant::now();
    let charge = |at| bucket.charge(1.0, 10.0, quotas.default_share(), at);
    // Default 1.0: a 10/s limit allows a burst of 10.
    for _ in 0..10 {
        assert!(charge(now).is_zero());
    }
    assert!(!charge(now).is_zero());
    quotas.apply(&QuotaShares {
        shares: vec![QuotaShare {
            policy_id: "q".into(),
            metric: "requests".into(),
            key: String::new(),
            share: 0.5,
        }],
        default_share: 0.25,
    });
    assert_eq!(quotas.default_share(), 0.25);
    // At half the rate, one more second buys 5 requests, not 10.
    let later = now + Duration::from_secs(10);
    let allowed = (0..20).take_while(|_| charge(later).is_zero()).count();
    assert_eq!(allowed, 5);
    let (uses, _) = quotas.usage();
    assert_eq!(uses.len(), 1);
    assert!(uses[0].limited && uses[0].metric == "requests");
    // Idle, it is still reported for a while (it holds a share), as not
    // held back.
    let (uses, _) = quotas.usage();
    assert_eq!((uses.len(), uses[0].used, uses[0].limited), (1, 0.0, false));
}

#[test]
fn debt_is_bounded_and_kept_past_one_throttle() {
    let quotas = Quotas::default();
    let bucket = quotas.bucket(&"q".into(), Metric::ProduceBytes, "");
    let now = Instant::now();
    // 100 s of cost at once: the answer says at most MAX_THROTTLE; the
    // bucket keeps MAX_DEBT of it, which holds the next request.
    let throttle = bucket.charge(101.0, 1.0, 1.0, now);
    assert_eq!(throttle, buckets::MAX_THROTTLE);
    let later = now + buckets::MAX_THROTTLE;
    let hold = debt(&bucket, 1.0, later);
    assert_eq!(hold, buckets::MAX_DEBT - buckets::MAX_THROTTLE);
    assert!(debt(&bucket, 1.0, now + buckets::MAX_DEBT).is_zero());
}

#[test]
fn per_principal_buckets_are_apart_and_shadow_never_throttles() {
    let quotas = Arc::new(Quotas::default());
    let telemetry = Arc::new(Telemetry::default());
    let enforced = policies(policy(Per::Principal, 100, 0, false));
    let alice = meter(&quotas, &telemetry, "User:alice");
    let bob = meter(&quotas, &telemetry, "User:bob");
    let produce = ApiKey::Produce as i16;
    assert!(request(&alice, &enforced, produce, b"", 100).is_zero());
    let throttled = request(&alice, &enforced, produce, b"", 100);
    assert!(throttled >= Duration::from_millis(900), "{throttled:?}");
    assert!(alice.muted_until().is_some(), "the connection is muted");
    // Alice's other connections share her bucket: their next Produce
    // waits for her debt (a Heartbeat never does).
    let alice_again = meter(&quotas, &telemetry, "User:alice");
    let wait = held(&alice_again, &enforced, produce, b"");
    assert!(wait >= Duration::from_millis(900), "{wait:?}");
    let heartbeat = ApiKey::Heartbeat as i16;
    assert!(held(&alice_again, &enforced, heartbeat, b"").is_zero());
    assert!(
        held(&bob, &enforced, produce, b"").is_zero(),
        "bob's own bucket"
    );
    assert!(request(&bob, &enforced, produce, b"", 100).is_zero());
    // Not a Produce: only requests count, and there is no request limit.
    let metadata = request(&alice, &enforced, ApiKey::Metadata as i16, b"", 1 << 20);
    assert!(metadata.is_zero());

    let shadow = policies(policy(Per::VirtualCluster, 100, 0, true));
    let carol = meter(&quotas, &telemetry, "User:carol");
    for _ in 0..5 {
        assert!(request(&carol, &shadow, produce, b"", 100).is_zero());
        assert!(held(&carol, &shadow, produce, b"").is_zero());
    }
    assert!(carol.muted_until().is_none());
    let outcomes = telemetry.outcomes();
    let shadowed = outcomes
        .iter()
        .find(|o| o.shadow && o.outcome == "throttled")
        .expect("shadow throttles are counted");
    assert_eq!(shadowed.count, 4);
}

#[test]
fn per_client_id_keys_follow_the_request() {
    let quotas = Arc::new(Quotas::default());
    let telemetry = Arc::new(Telemetry::default());
    let p = policies(policy(Per::ClientId, 100, 0, false));
    let m = meter(&quotas, &telemetry, "User:alice");
    let produce = ApiKey::Produce as i16;
    assert!(request(&m, &p, produce, b"one", 100).is_zero());
    let two = request(&m, &p, produce, b"two", 100);
    assert!(two.is_zero(), "another bucket");
    assert!(!request(&m, &p, produce, b"one", 100).is_zero());
}

#[test]
fn max_connections_refuses_past_the_share_and_frees_on_drop() {
    let quotas = Arc::new(Quotas::default());
    let telemetry = Arc::new(Telemetry::default());
    let p = policies(policy(Per::Principal, 0, 2, false));
    let m = meter(&quotas, &telemetry, "User:alice");
    let one = m.admit(&p, "").unwrap();
    let two = m.admit(&p, "").unwrap();
    let refused = m.admit(&p, "").unwrap_err();
    assert_eq!(refused.hop, crate::hop::Hop::Policy);
    assert_eq!(refused.entity, "q");
    assert!(refused.message.contains("max_connections=2"), "{refused}");
    assert!(refused.message.contains("User:alice"), "{refused}");
    drop(one);
    let three = m.admit(&p, "").unwrap();
    drop((two, three));
    // Shadow: admitted, counted as refused.
    let shadow = policies(policy(Per::Principal, 0, 1, true));
    let kept: Vec<_> = (0..3).map(|_| m.admit(&shadow, "").unwrap()).collect();
    assert_eq!(kept.len(), 3);
    assert!(
        telemetry
            .outcomes()
            .iter()
            .any(|o| o.shadow && o.outcome == "refused" && o.count == 2)
    );
}

fn produce_answer(version: i16, throttle: i32) -> Bytes {
    let mut out = BytesMut::new();
    let api = ApiKey::Produce;
    ResponseHeader::default()
        .with_correlation_id(7)
        .encode(&mut out, api.response_header_version(version))
        .unwrap();
    ProduceResponse::default()
        .with_throttle_time_ms(throttle)
        .encode(&mut out, version)
        .unwrap();
    out.freeze()
}

#[test]
fn throttle_time_is_written_into_produce_and_fetch_answers() {
    for version in [3, 9, 11] {
        let stamped = throttle::stamp(
            ApiKey::Produce as i16,
            version,
            produce_answer(version, 5),
            250,
        )
        .unwrap();
        let mut rest = stamped.clone();
        let api = ApiKey::Produce;
        let header =
            ResponseHeader::decode(&mut rest, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 7);
        let answer = ProduceResponse::decode(&mut rest, version).unwrap();
        assert_eq!(answer.throttle_time_ms, 250, "v{version}");
        // The broker's own longer throttle stays.
        let kept = throttle::stamp(
            ApiKey::Produce as i16,
            version,
            produce_answer(version, 900),
            250,
        )
        .unwrap();
        assert_eq!(kept, produce_answer(version, 900));
    }
    for version in [4, 12, 16] {
        let api = ApiKey::Fetch;
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(9)
            .encode(&mut out, api.response_header_version(version))
            .unwrap();
        FetchResponse::default()
            .with_throttle_time_ms(1)
            .encode(&mut out, version)
            .unwrap();
        let stamped = throttle::stamp(api as i16, version, out.freeze(), 4321).unwrap();
        let mut rest = stamped;
        ResponseHeader::decode(&mut rest, api.response_header_version(version)).unwrap();
        let answer = FetchResponse::decode(&mut rest, version).unwrap();
        assert_eq!(answer.throttle_time_ms, 4321, "v{version}");
    }
    // Answers without the field pass unchanged.
    let v0 = Bytes::from_static(&[0, 0, 0, 7, 0, 0, 0, 0]);
    assert_eq!(
        throttle::stamp(ApiKey::Produce as i16, 0, v0.clone(), 5).unwrap(),
        v0
    );
    assert_eq!(throttle::millis(Duration::from_micros(1001)), 2);
}

#[test]
fn requests_released_together_pass_one_at_a_time() {
    let quotas = Quotas::default();
    let bucket = quotas.bucket(&"q".into(), Metric::ProduceBytes, "");
    let now = Instant::now();
    bucket.try_charge(3000.0, 1000.0, 1.0, false, now).unwrap();
    // Five connections waiting for the same debt wake at the same moment:
    // checked and charged under one lock, only one goes on.
    let later = now + Duration::from_secs(2);
    let passed = (0..5)
        .filter(|_| bucket.try_charge(3000.0, 1000.0, 1.0, false, later).is_ok())
        .count();
    assert_eq!(passed, 1);
    // A request another bucket holds back is refunded, not charged.
    let other = quotas.bucket(&"q".into(), Metric::Requests, "");
    let before = debt(&other, 1.0, later);
    other.try_charge(1.0, 1.0, 1.0, false, later).unwrap();
    other.refund(1.0);
    assert_eq!(debt(&other, 1.0, later), before);
}

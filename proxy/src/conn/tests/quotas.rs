//! Quotas at the pumps: a throttled answer carries its throttle and the
//! connection's next request waits it out.

use std::time::Instant;

use kafka_protocol::messages::ProduceResponse;

use super::*;
use crate::quota::{
    QuotaPolicies,
    policies::{Per, Policy},
};

/// A port whose virtual cluster has one quota: `produce_bytes` per second.
fn config_with_quota(produce_bytes: u64) -> Config {
    let mut route = test_route(Chain::new(base_filters()), mapping());
    let vc = Arc::get_mut(&mut route.virtual_cluster).expect("a fresh route");
    vc.quotas = Some(Arc::new(QuotaPolicies {
        policies: vec![Policy {
            id: "q".into(),
            shadow: false,
            conditions: Vec::new(),
            per: Per::VirtualCluster,
            produce_bytes,
            fetch_bytes: 0,
            requests: 0,
            connections: 0,
        }],
        reads_client_id: false,
        reads_api: false,
    }));
    let mut compiled = Compiled::default();
    compiled.ports.insert(key(), Arc::new(test_port(route)));
    Config::from_compiled(compiled)
}

#[tokio::test]
async fn a_throttled_produce_is_answered_with_its_throttle_and_the_connection_waits() {
    let mut h = start_over(config_with_quota(100));
    // About 300 bytes against 100 B/s with a 100-byte burst: 2 s of debt.
    let big = request(
        ApiKey::Produce,
        8,
        1,
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_transactional_id(Some(StrBytes::from_string("t".repeat(250)).into())),
    );
    h.send(&big).await;
    let forwarded = h.broker_receives().await;
    assert_eq!(forwarded, big, "the request itself goes on at once");
    h.broker_sends(&response(
        ApiKey::Produce,
        8,
        1,
        &ProduceResponse::default(),
    ))
    .await;
    let answer = h.receive().await;
    let mut body = answer.slice(4..);
    ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(8)).unwrap();
    let throttle = ProduceResponse::decode(&mut body, 8)
        .unwrap()
        .throttle_time_ms;
    let owed = (big.len() as i32 - 100) * 10; // ms at 100 B/s
    assert!(
        (owed - 20..=owed + 20).contains(&throttle),
        "{throttle} ms, {owed} owed"
    );
    // The connection is not read until the throttle has passed.
    let sent = Instant::now();
    h.send(&heartbeat(2)).await;
    let next = h.broker_receives().await;
    assert_eq!(request_correlation(&next), 2);
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(throttle as u64 * 9 / 10),
        "read after {waited:?}, throttle {throttle} ms"
    );
}

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse,
        ResponseHeader, describe_cluster_response::DescribeClusterBroker,
        find_coordinator_response::Coordinator, metadata_response::MetadataResponseBroker,
    },
    protocol::{Decodable, Encodable, StrBytes},
};

use super::{Chain, Context, Findings, InFlight, Notes};
use crate::{
    config::compiled::{base_filters, test_route},
    hop::HopError,
    listener::routes::{
        Mapping, PortMap,
        sni::{HostFormat, SniNames},
    },
};

/// What the base chain found besides the new bytes.
struct Found {
    brokers: Vec<(i32, String, i32)>,
    unmapped: Vec<String>,
}

/// Runs the base chain (address rewriting, version capping) over one
/// response frame, as a connection on a listener with `mapping` would.
fn rewrite(
    api_key: i16,
    version: i16,
    frame: Bytes,
    mapping: &PortMap,
) -> Result<(Bytes, Found), HopError> {
    rewrite_with(api_key, version, frame, Mapping::Ports(mapping.clone()))
}

/// [`rewrite`] under any mapping (SNI host names, say).
fn rewrite_with(
    api_key: i16,
    version: i16,
    frame: Bytes,
    mapping: Mapping,
) -> Result<(Bytes, Found), HopError> {
    let route = test_route(Chain::new(base_filters()), mapping);
    let mut findings = Findings::default();
    let mut notes = Notes::default();
    let mut cx = Context {
        route: &route,
        principal: None,
        notes: &mut notes,
        findings: &mut findings,
    };
    let request = InFlight {
        api_key,
        version,
        correlation_id: 42,
    };
    let out = route
        .virtual_cluster
        .chain
        .on_response(&mut cx, &request, frame)?;
    let found = Found {
        brokers: findings.brokers,
        unmapped: findings.warnings.into_iter().map(|w| w.message).collect(),
    };
    Ok((out.to_bytes(), found))
}

fn needs_rewrite(api_key: i16, version: i16) -> bool {
    Chain::new(base_filters()).wants_response(api_key, version)
}

/// Broker ids 111..=113 on ports 19093..=19095 of 127.0.0.1.
fn mapping() -> PortMap {
    PortMap {
        advertised_host: "127.0.0.1".into(),
        brokers: BTreeMap::from([(111, 19093), (112, 19094), (113, 19095)]),
        min_broker_id: 111,
        max_broker_id: 113,
    }
}

fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
    let hv = key.response_header_version(version);
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(42)
        .encode(&mut out, hv)
        .unwrap();
    body.encode(&mut out, version).unwrap();
    out.freeze()
}

fn body<T: Decodable>(key: ApiKey, version: i16, mut bytes: Bytes) -> T {
    let header = ResponseHeader::decode(&mut bytes, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 42, "the correlation id survives");
    T::decode(&mut bytes, version).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn broker(id: i32, host: &str, port: i32) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(id))
        .with_host(StrBytes::from_string(host.into()))
        .with_port(port)
}

#[test]
fn metadata_brokers_get_listener_ports_in_any_order_at_every_version() {
    for version in [0, 1, 4, 9, 12] {
        let response = MetadataResponse::default().with_brokers(vec![
            broker(113, "kafka-3.internal", 9094),
            broker(111, "kafka-1.internal", 9092),
            broker(112, "kafka-2.internal", 9093),
        ]);
        let (out, findings) = rewrite(
            ApiKey::Metadata as i16,
            version,
            frame(ApiKey::Metadata, version, &response),
            &mapping(),
        )
        .unwrap();
        assert!(
            !contains(&out, "internal"),
            "v{version}: a backend host leaked"
        );
        let got: MetadataResponse = body(ApiKey::Metadata, version, out);
        let addrs: Vec<(i32, &str, i32)> = got
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.as_str(), b.port))
            .collect();
        assert_eq!(
            addrs,
            [
                (113, "127.0.0.1", 19095),
                (111, "127.0.0.1", 19093),
                (112, "127.0.0.1", 19094)
            ]
        );
        assert_eq!(findings.brokers.len(), 3);
        assert!(findings.unmapped.is_empty());
    }
}

#[test]
fn under_sni_routing_each_broker_gets_its_host_name_and_the_advertised_port() {
    let response = MetadataResponse::default().with_brokers(vec![
        broker(111, "kafka-1.internal", 9092),
        broker(112, "kafka-2.internal", 9093),
    ]);
    for (format, expected) in [
        (
            HostFormat::PerCluster,
            [
                "broker-111.team-a.sluice.localhost",
                "broker-112.team-a.sluice.localhost",
            ],
        ),
        (
            HostFormat::Shared,
            [
                "broker-111-team-a.sluice.localhost",
                "broker-112-team-a.sluice.localhost",
            ],
        ),
    ] {
        let names = SniNames {
            label: "team-a".into(),
            suffix: ".sluice.localhost".into(),
            format,
            port: 9443,
        };
        let (out, _) = rewrite_with(
            ApiKey::Metadata as i16,
            12,
            frame(ApiKey::Metadata, 12, &response),
            Mapping::Sni(names),
        )
        .unwrap();
        assert!(!contains(&out, "internal"), "a backend host leaked");
        let got: MetadataResponse = body(ApiKey::Metadata, 12, out);
        let addrs: Vec<(&str, i32)> = got
            .brokers
            .iter()
            .map(|b| (b.host.as_str(), b.port))
            .collect();
        assert_eq!(addrs, [(expected[0], 9443), (expected[1], 9443)]);
    }
}

#[test]
fn a_broker_appearing_outside_the_mapping_is_dropped_and_named() {
    // Broker 114 joined; the listener only has ports for 111..=113.
    let response = MetadataResponse::default().with_brokers(vec![
        broker(111, "kafka-1.internal", 9092),
        broker(114, "kafka-4.internal", 9095),
    ]);
    let (out, findings) = rewrite(
        ApiKey::Metadata as i16,
        9,
        frame(ApiKey::Metadata, 9, &response),
        &mapping(),
    )
    .unwrap();
    let got: MetadataResponse = body(ApiKey::Metadata, 9, out.clone());
    assert_eq!(got.brokers.len(), 1);
    assert!(!contains(&out, "internal"));
    assert_eq!(findings.unmapped.len(), 1);
    assert!(
        findings.unmapped[0].contains("broker id 114")
            && findings.unmapped[0].contains("min_broker_id = 111"),
        "{}",
        findings.unmapped[0]
    );
    // A broker disappearing is simply absent from the next answer.
    let response =
        MetadataResponse::default().with_brokers(vec![broker(112, "kafka-2.internal", 9093)]);
    let (out, _) = rewrite(
        ApiKey::Metadata as i16,
        9,
        frame(ApiKey::Metadata, 9, &response),
        &mapping(),
    )
    .unwrap();
    let got: MetadataResponse = body(ApiKey::Metadata, 9, out);
    assert_eq!(
        got.brokers.iter().map(|b| b.node_id.0).collect::<Vec<_>>(),
        [112]
    );
}

#[test]
fn find_coordinator_old_single_and_new_batched() {
    let single = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(112))
        .with_host(StrBytes::from_string("kafka-2.internal".into()))
        .with_port(9093);
    for version in [0, 1, 2, 3] {
        let (out, _) = rewrite(
            ApiKey::FindCoordinator as i16,
            version,
            frame(ApiKey::FindCoordinator, version, &single),
            &mapping(),
        )
        .unwrap();
        let got: FindCoordinatorResponse = body(ApiKey::FindCoordinator, version, out);
        assert_eq!((got.host.as_str(), got.port), ("127.0.0.1", 19094));
    }
    let batched = FindCoordinatorResponse::default().with_coordinators(vec![
        Coordinator::default()
            .with_key(StrBytes::from_string("g1".into()))
            .with_node_id(BrokerId(113))
            .with_host(StrBytes::from_string("kafka-3.internal".into()))
            .with_port(9094),
        Coordinator::default()
            .with_key(StrBytes::from_string("g2".into()))
            .with_node_id(BrokerId(7))
            .with_host(StrBytes::from_string("kafka-7.internal".into()))
            .with_port(9099),
    ]);
    for version in [4, 5, 6] {
        let (out, findings) = rewrite(
            ApiKey::FindCoordinator as i16,
            version,
            frame(ApiKey::FindCoordinator, version, &batched),
            &mapping(),
        )
        .unwrap();
        assert!(!contains(&out, "internal"));
        let got: FindCoordinatorResponse = body(ApiKey::FindCoordinator, version, out);
        assert_eq!(
            (got.coordinators[0].host.as_str(), got.coordinators[0].port),
            ("127.0.0.1", 19095)
        );
        assert_eq!(
            got.coordinators[1].error_code, 15,
            "an unmapped coordinator is 'not available', never its address"
        );
        assert_eq!(findings.unmapped.len(), 1);
    }
}

#[test]
fn describe_cluster_brokers_are_rewritten() {
    let response = DescribeClusterResponse::default().with_brokers(vec![
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(111))
            .with_host(StrBytes::from_string("kafka-1.internal".into()))
            .with_port(9092),
    ]);
    let (out, _) = rewrite(
        ApiKey::DescribeCluster as i16,
        0,
        frame(ApiKey::DescribeCluster, 0, &response),
        &mapping(),
    )
    .unwrap();
    assert!(!contains(&out, "internal"));
    let got: DescribeClusterResponse = body(ApiKey::DescribeCluster, 0, out);
    assert_eq!(got.brokers[0].port, 19093);
}

#[test]
fn only_address_bearing_responses_are_decoded() {
    assert!(needs_rewrite(ApiKey::Metadata as i16, 1));
    assert!(
        !needs_rewrite(ApiKey::Produce as i16, 9),
        "the hot path stays raw"
    );
    assert!(needs_rewrite(ApiKey::Produce as i16, 10));
    assert!(!needs_rewrite(ApiKey::Fetch as i16, 15));
    assert!(!needs_rewrite(ApiKey::OffsetCommit as i16, 8));
    // Garbage never panics.
    assert!(
        rewrite(
            ApiKey::Metadata as i16,
            9,
            Bytes::from_static(&[0, 0, 0, 42, 0xff]),
            &mapping()
        )
        .is_err()
    );
    assert!(rewrite(999, 0, Bytes::from_static(&[0, 0, 0, 1]), &mapping()).is_err());
}

#[test]
fn an_unsupported_api_versions_version_is_answered_as_v0_and_passed_on() {
    use kafka_protocol::messages::{ApiVersionsResponse, api_versions_response::ApiVersion};
    // The client asked with v9; the broker knows v0..=3 and answers with a
    // v0 body carrying UNSUPPORTED_VERSION and the versions it has.
    let answer = ApiVersionsResponse::default()
        .with_error_code(35)
        .with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(0)
                .with_max_version(3),
        ]);
    let (out, _) = rewrite(
        ApiKey::ApiVersions as i16,
        9,
        frame(ApiKey::ApiVersions, 0, &answer),
        &mapping(),
    )
    .expect("the client can retry lower");
    let got: ApiVersionsResponse = body(ApiKey::ApiVersions, 0, out);
    assert_eq!(got.error_code, 35);
    assert_eq!(got.api_keys[0].max_version, 3);
}

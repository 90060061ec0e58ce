//! The pumps driven over in-memory pipes: this test plays both the
//! client and the broker, so ordering, short-circuits and drains are
//! checked byte for byte without processes.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, BrokerId, HeartbeatRequest, ListGroupsRequest, ListGroupsResponse, MetadataRequest,
        MetadataResponse, ProduceRequest, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
        metadata_response::MetadataResponseBroker,
    },
    protocol::{Decodable, Encodable, StrBytes},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{Binding, run};
use crate::{
    config::{
        Compiled, Config, ConfigStore,
        compiled::{base_filters, test_port, test_route},
    },
    filter::{Chain, Context, Filter, Interest, Verdict},
    hop::{HopError, Kind},
    kafka::frame::{FrameReader, MAX_FRAME},
    listener::routes::{Key, PortMap},
    node::Node,
    telemetry::Telemetry,
};

/// Long enough for anything here; a hang fails instead of stalling.
const WAIT: Duration = Duration::from_secs(5);

fn key() -> Key {
    ("127.0.0.1".into(), 19092)
}

fn mapping() -> PortMap {
    PortMap {
        advertised_host: "127.0.0.1".into(),
        brokers: BTreeMap::from([(111, 19093)]),
        min_broker_id: 111,
        max_broker_id: 111,
    }
}

fn config_with(chain: Chain) -> Config {
    let mut compiled = Compiled::default();
    compiled
        .ports
        .insert(key(), Arc::new(test_port(test_route(chain, mapping()))));
    Config::from_compiled(compiled)
}

/// A running connection: the test's client end, its broker end, and the
/// connection's result.
struct Harness {
    node: Arc<Node>,
    client: DuplexStream,
    broker: FrameReader<DuplexStream>,
    done: tokio::task::JoinHandle<Result<(), HopError>>,
}

fn start(filters: Vec<Arc<dyn Filter>>) -> Harness {
    start_over(config_with(Chain::new(filters)))
}

/// A connection over `config`, routed by its port [`key`].
fn start_over(config: Config) -> Harness {
    let store = Arc::new(ConfigStore::new(config));
    let node = Arc::new(Node::new(store.clone(), Arc::new(Telemetry::default())));
    let hello = crate::listener::handshake::Hello::plaintext("127.0.0.1:1".parse().unwrap());
    let seen = store.current();
    let route = seen.compiled().ports[&key()]
        .resolve(&hello)
        .expect("the port is routed");
    let session = crate::auth::Rules::default().without_sasl(&hello).unwrap();
    let binding = Binding::new(store, seen, key(), hello, route, session);
    let (client, proxy_client) = tokio::io::duplex(1 << 16);
    let (proxy_upstream, broker) = tokio::io::duplex(1 << 16);
    let running = node.clone();
    let done = tokio::spawn(async move {
        let (client_read, client_write) = tokio::io::split(proxy_client);
        let meter = crate::quota::Meter::new(
            running.quotas.clone(),
            running.telemetry.clone(),
            crate::quota::Who {
                principal: "User:ANONYMOUS".into(),
                listener: "listener".into(),
                virtual_cluster: "vc".into(),
            },
        );
        run(
            &running,
            binding,
            &meter,
            (FrameReader::new(client_read, MAX_FRAME), client_write),
            tokio::io::split(proxy_upstream),
        )
        .await
    });
    Harness {
        node,
        client,
        broker: FrameReader::new(broker, MAX_FRAME),
        done,
    }
}

fn request<T: Encodable>(key: ApiKey, version: i16, correlation: i32, body: &T) -> Bytes {
    let mut out = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("test")))
        .encode(&mut out, key.request_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    framed(&out)
}

fn response<T: Encodable>(key: ApiKey, version: i16, correlation: i32, body: &T) -> Bytes {
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation)
        .encode(&mut out, key.response_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    framed(&out)
}

fn framed(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out.freeze()
}

/// A response body with a made-up payload (opaque to the proxy).
fn opaque(correlation: i32, payload: &[u8]) -> Bytes {
    let mut body = correlation.to_be_bytes().to_vec();
    body.extend_from_slice(payload);
    framed(&body)
}

fn heartbeat(correlation: i32) -> Bytes {
    request(
        ApiKey::Heartbeat,
        0,
        correlation,
        &HeartbeatRequest::default(),
    )
}

fn produce(correlation: i32, acks: i16) -> Bytes {
    request(
        ApiKey::Produce,
        8,
        correlation,
        &ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(1000),
    )
}

impl Harness {
    async fn send(&mut self, frame: &[u8]) {
        self.client.write_all(frame).await.unwrap();
    }

    /// The next frame the client receives (prefix included).
    async fn receive(&mut self) -> Bytes {
        let mut len = [0u8; 4];
        tokio::time::timeout(WAIT, self.client.read_exact(&mut len))
            .await
            .expect("a response in time")
            .unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.client.read_exact(&mut body).await.unwrap();
        framed(&body)
    }

    /// The next frame the broker receives.
    async fn broker_receives(&mut self) -> Bytes {
        let frame = tokio::time::timeout(WAIT, self.broker.next())
            .await
            .expect("a request in time")
            .unwrap()
            .expect("a frame");
        Bytes::copy_from_slice(frame.wire())
    }

    async fn broker_sends(&mut self, frame: &[u8]) {
        // FrameReader owns the broker end; write through it.
        self.broker.get_mut().write_all(frame).await.unwrap();
    }

    async fn result(self) -> Result<(), HopError> {
        tokio::time::timeout(WAIT, self.done)
            .await
            .expect("the connection ends in time")
            .unwrap()
    }
}

/// The correlation id of a framed response.
fn correlation(frame: &[u8]) -> i32 {
    i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])
}

/// The correlation id of a framed request (after key and version).
fn request_correlation(frame: &[u8]) -> i32 {
    i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]])
}

#[tokio::test]
async fn pipelined_requests_pass_byte_for_byte_and_answers_keep_their_order() {
    let mut h = start(base_filters());
    let sent: Vec<Bytes> = (1..=3).map(heartbeat).collect();
    for frame in &sent {
        h.send(frame).await;
    }
    for frame in &sent {
        assert_eq!(&h.broker_receives().await, frame, "forwarded untouched");
    }
    for c in 1..=3 {
        h.broker_sends(&opaque(c, b"answer")).await;
    }
    for c in 1..=3 {
        let got = h.receive().await;
        assert_eq!(got, opaque(c, b"answer"), "passed back untouched, in order");
    }
    drop(h.client);
    h.done.abort();
}

/// Answers ListGroups itself, as an authorization filter would.
struct AnswerListGroups;

impl Filter for AnswerListGroups {
    fn name(&self) -> &'static str {
        "answer_list_groups"
    }

    fn interest(&self) -> Interest {
        Interest::new().requests(ApiKey::ListGroups, ..)
    }

    fn on_request(
        &self,
        _cx: &mut Context<'_>,
        _header: &mut RequestHeader,
        _body: &mut RequestKind,
    ) -> Verdict {
        Verdict::Respond(ResponseKind::ListGroups(
            ListGroupsResponse::default().with_error_code(29),
        ))
    }
}

#[tokio::test]
async fn a_filter_answers_without_the_broker_in_the_requests_turn() {
    let mut filters = base_filters();
    filters.push(Arc::new(AnswerListGroups));
    let mut h = start(filters);
    h.send(&heartbeat(1)).await;
    h.send(&request(
        ApiKey::ListGroups,
        3,
        2,
        &ListGroupsRequest::default(),
    ))
    .await;
    h.send(&heartbeat(3)).await;
    // The broker sees only the heartbeats.
    assert_eq!(request_correlation(&h.broker_receives().await), 1);
    assert_eq!(request_correlation(&h.broker_receives().await), 3);
    // Nothing reaches the client before the broker answers request 1,
    // though the filter's answer to 2 is ready.
    let mut early = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), h.client.read(&mut early))
            .await
            .is_err(),
        "the local answer waited for its turn"
    );
    h.broker_sends(&opaque(1, b"one")).await;
    h.broker_sends(&opaque(3, b"three")).await;
    assert_eq!(h.receive().await, opaque(1, b"one"));
    let local = h.receive().await;
    let mut body = local.slice(4..);
    let header = ResponseHeader::decode(&mut body, 1).unwrap();
    assert_eq!(header.correlation_id, 2);
    let answer = ListGroupsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(answer.error_code, 29, "the filter's answer, encoded at v3");
    assert_eq!(h.receive().await, opaque(3, b"three"));
    h.done.abort();
}

#[tokio::test]
async fn removing_the_port_drains_a_produce_in_flight_then_closes() {
    let mut h = start(base_filters());
    h.send(&produce(5, 1)).await;
    assert_eq!(request_correlation(&h.broker_receives().await), 5);
    // The port is removed while the produce is in flight.
    h.node.config.replace(Config::default());
    h.send(&heartbeat(6)).await;
    h.broker_sends(&opaque(5, b"produced")).await;
    assert_eq!(h.receive().await, opaque(5, b"produced"), "answered");
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, h.client.read_to_end(&mut rest))
        .await
        .expect("the connection closes")
        .unwrap();
    assert!(rest.is_empty(), "nothing after the drain");
    let after = tokio::time::timeout(WAIT, h.broker.next()).await.unwrap();
    assert!(
        matches!(after, Ok(None)),
        "the request after the removal never reached the broker"
    );
    assert!(h.result().await.is_ok());
}

fn metadata_answer(correlation: i32) -> Bytes {
    response(
        ApiKey::Metadata,
        9,
        correlation,
        &MetadataResponse::default().with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(111))
                .with_host(StrBytes::from_static_str("kafka-1.internal"))
                .with_port(9092),
        ]),
    )
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_reused_correlation_id_and_acks0_produce_never_leak_an_address() {
    let mut h = start(base_filters());
    let metadata = request(ApiKey::Metadata, 9, 7, &MetadataRequest::default());
    h.send(&metadata).await;
    h.send(&produce(8, 0)).await; // acks=0: no answer will come
    h.send(&metadata).await; // correlation id 7 again
    for _ in 0..3 {
        h.broker_receives().await;
    }
    h.broker_sends(&metadata_answer(7)).await;
    h.broker_sends(&metadata_answer(7)).await;
    for _ in 0..2 {
        let got = h.receive().await;
        assert_eq!(correlation(&got), 7);
        assert!(!contains(&got, "internal"), "a backend address leaked");
        assert!(contains(&got, "127.0.0.1"));
    }
    h.done.abort();
}

#[tokio::test]
async fn an_answer_to_the_wrong_request_ends_the_connection_at_the_backend_hop() {
    let mut h = start(base_filters());
    h.send(&heartbeat(1)).await;
    h.broker_receives().await;
    h.broker_sends(&opaque(99, b"stray")).await;
    let err = h.result().await.unwrap_err();
    assert_eq!(err.kind, Kind::OutOfOrderResponse);
    assert_eq!(err.entity, "backend");
}

/// The example from the issue: a filter that counts Produce requests is
/// one type and one line where the chain is built.
struct CountProduce(Arc<AtomicUsize>);

impl Filter for CountProduce {
    fn name(&self) -> &'static str {
        "count_produce"
    }

    fn interest(&self) -> Interest {
        Interest::new().requests(ApiKey::Produce, ..)
    }

    fn on_request(
        &self,
        _cx: &mut Context<'_>,
        _header: &mut RequestHeader,
        _body: &mut RequestKind,
    ) -> Verdict {
        self.0.fetch_add(1, Ordering::Relaxed);
        Verdict::Forward
    }
}

#[tokio::test]
async fn an_intercepting_filter_sees_only_its_api_and_forwards_an_equivalent_request() {
    let count = Arc::new(AtomicUsize::new(0));
    let mut filters = base_filters();
    filters.push(Arc::new(CountProduce(count.clone())));
    let mut h = start(filters);
    let sent = produce(1, 1);
    h.send(&sent).await;
    h.send(&heartbeat(2)).await;
    let forwarded = h.broker_receives().await;
    assert_eq!(forwarded, sent, "decoded and re-encoded to the same bytes");
    h.broker_receives().await;
    assert_eq!(
        count.load(Ordering::Relaxed),
        1,
        "the heartbeat was not decoded"
    );
    h.done.abort();
}

#[tokio::test]
async fn an_open_connection_is_closed_once_its_path_is_not_enforced() {
    let mut h = start(base_filters());
    h.send(&heartbeat(1)).await;
    h.broker_receives().await;
    h.broker_sends(&opaque(1, b"ok")).await;
    h.receive().await;
    // The virtual cluster gains something this node cannot enforce.
    let mut route = test_route(Chain::new(base_filters()), mapping());
    route.refused = Some(
        crate::config::NotEnforced {
            hop: crate::hop::Hop::VirtualCluster,
            entity: "vc".into(),
            feature: "acl_mode".into(),
        }
        .error(),
    );
    let mut compiled = Compiled::default();
    compiled.ports.insert(key(), Arc::new(test_port(route)));
    h.node.config.replace(Config::from_compiled(compiled));
    let err = h.result().await.unwrap_err();
    assert_eq!(err.kind, Kind::NotEnforced);
    assert!(err.to_string().contains("feature=acl_mode"), "{err}");
}

#[tokio::test]
async fn a_port_that_now_leads_to_another_backend_drains_the_connection() {
    let mut h = start(base_filters());
    h.send(&produce(5, 1)).await;
    h.broker_receives().await;
    // Same port, but its virtual cluster now points at another backend:
    // this upstream socket must not carry the port's traffic any more.
    let mut route = test_route(Chain::new(base_filters()), mapping());
    let mut vc = crate::config::VirtualCluster {
        id: "vc".into(),
        backend: route.virtual_cluster.backend.clone(),
        dns_label: "vc".into(),
        chain: Chain::new(base_filters()),
        auth: Default::default(),
        quotas: None,
        refused: None,
    };
    let mut other = (*vc.backend).clone();
    other.id = "another-backend".into();
    vc.backend = Arc::new(other);
    route.virtual_cluster = Arc::new(vc);
    let mut compiled = Compiled::default();
    compiled.ports.insert(key(), Arc::new(test_port(route)));
    h.node.config.replace(Config::from_compiled(compiled));
    h.broker_sends(&opaque(5, b"produced")).await;
    assert_eq!(
        h.receive().await,
        opaque(5, b"produced"),
        "in flight: answered"
    );
    assert!(h.result().await.is_ok(), "then closed");
}

#[tokio::test]
async fn a_produce_whose_acks_cannot_be_read_is_refused() {
    let mut h = start(base_filters());
    let mut bad = produce(1, 0).to_vec();
    // A client id of two bytes that are not UTF-8 in front of acks=0.
    let mut patched = bad[..12].to_vec();
    patched.extend_from_slice(&2i16.to_be_bytes());
    patched.extend_from_slice(&[0xff, 0xfe]);
    patched.extend_from_slice(&bad[18..]);
    let len = (patched.len() - 4) as i32;
    patched[..4].copy_from_slice(&len.to_be_bytes());
    bad = patched;
    h.send(&bad).await;
    let err = h.result().await.unwrap_err();
    assert_eq!(err.kind, Kind::BadFrame);
    assert!(err.message.contains("acks"), "{err}");
}

#[test]
fn a_revision_during_the_handshake_applies_from_the_first_request() {
    let store = Arc::new(ConfigStore::new(config_with(Chain::new(base_filters()))));
    let seen = store.current();
    let hello = crate::listener::handshake::Hello::plaintext("127.0.0.1:1".parse().unwrap());
    let route = seen.compiled().ports[&key()].resolve(&hello).unwrap();
    // The port is removed while the client's handshake runs.
    store.replace(Config::default());
    let session = crate::auth::Rules::default().without_sasl(&hello).unwrap();
    let mut binding = Binding::new(store, seen, key(), hello, route, session);
    assert!(binding.current().is_none(), "the removal is not missed");
}

/// The route of [`test_route`] over a backend with these settings.
fn route_over(backend: sluice_proto::admin::v1::BackendCluster) -> crate::listener::routes::Route {
    let mut route = test_route(Chain::new(base_filters()), mapping());
    let vc = crate::config::VirtualCluster {
        id: "vc".into(),
        backend: Arc::new(crate::backend::Backend::compile("backend", &backend)),
        dns_label: "vc".into(),
        chain: Chain::new(base_filters()),
        auth: Default::default(),
        quotas: None,
        refused: None,
    };
    route.virtual_cluster = Arc::new(vc);
    route
}

#[tokio::test]
async fn new_backend_credentials_drain_a_connection_new_bootstrap_servers_do_not() {
    use sluice_proto::admin::v1::{
        BackendAuthentication, BackendCluster, BackendSaslScram, ScramAlgorithm,
        backend_authentication::Method,
    };
    let mut h = start(base_filters());
    h.send(&heartbeat(1)).await;
    h.broker_receives().await;
    h.broker_sends(&opaque(1, b"ok")).await;
    h.receive().await;
    // Other bootstrap servers: the upstream socket is still as good.
    let moved = BackendCluster {
        bootstrap_servers: vec!["127.0.0.1:2".into()],
        ..Default::default()
    };
    let mut compiled = Compiled::default();
    compiled
        .ports
        .insert(key(), Arc::new(test_port(route_over(moved.clone()))));
    h.node.config.replace(Config::from_compiled(compiled));
    h.send(&heartbeat(2)).await;
    assert_eq!(request_correlation(&h.broker_receives().await), 2, "kept");
    h.broker_sends(&opaque(2, b"ok")).await;
    h.receive().await;
    // The backend now wants SASL: the socket authenticated without it
    // must not carry the port's traffic any more.
    let authenticated = BackendCluster {
        authentication: Some(BackendAuthentication {
            method: Some(Method::SaslScram(BackendSaslScram {
                algorithm: ScramAlgorithm::Sha512 as i32,
                username: "svc".into(),
                ..Default::default()
            })),
        }),
        ..moved
    };
    let mut compiled = Compiled::default();
    compiled
        .ports
        .insert(key(), Arc::new(test_port(route_over(authenticated))));
    h.node.config.replace(Config::from_compiled(compiled));
    h.send(&heartbeat(3)).await;
    let after = tokio::time::timeout(WAIT, h.broker.next()).await.unwrap();
    assert!(
        matches!(after, Ok(None)),
        "heartbeat 3 never reached the broker"
    );
    assert!(h.result().await.is_ok(), "drained and closed");
}

mod quotas;

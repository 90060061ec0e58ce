//! Real Kafka clients through a real `sluice-proxy` to a real tansu
//! broker: confluent-kafka and kafka-python produce and consume (consumer
//! group, committed offsets survive a reconnect); no response carries the
//! backend's address; configuration changes keep connections; malformed
//! frames close only their own connection.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest,
        FindCoordinatorResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    },
    protocol::{Decodable, Encodable, StrBytes},
};
use sluice_acceptance::stack::{Stack, expose, two_ports};
use sluice_proto::admin::v1::{
    Kind, ListEntitiesRequest, UpdateEntityRequest, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const WAIT: Duration = Duration::from_secs(30);

/// Sends one request and returns the raw response and its decoded body.
async fn call<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> (Bytes, Resp) {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    stream
        .write_all(&(body.len() as i32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&body).await.unwrap();
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut len))
        .await
        .expect("an answer in time")
        .unwrap();
    let mut raw = vec![0u8; i32::from_be_bytes(len) as usize];
    tokio::time::timeout(WAIT, stream.read_exact(&mut raw))
        .await
        .expect("the whole answer in time")
        .unwrap();
    let raw = Bytes::from(raw);
    let mut buf = raw.clone();
    let header = ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    (raw, Resp::decode(&mut buf, version).unwrap())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn python(script: &str, args: &[&str]) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/").to_string() + script;
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_clients_work_through_the_proxy() {
    let stack = Stack::start(&["confluent-orders", "python-orders"]).await;
    let Stack {
        proxy,
        mut admin,
        server,
        tansu,
        gateway: gw,
        backend,
        ports,
        dir: _dir,
        ..
    } = stack;
    let bootstrap = format!("127.0.0.1:{}", ports.0);

    // Real clients: produce, consume in a group, commit, reconnect.
    let out = python(
        "confluent_roundtrip.py",
        &[&bootstrap, "confluent-orders", "confluent-group"],
    );
    assert!(out.contains("\"second\": [\"after-commit\"]"), "{out}");
    let out = python(
        "kafka_python_roundtrip.py",
        &[&bootstrap, "python-orders", "python-group"],
    );
    assert!(out.contains("\"second\": [\"after-commit\"]"), "{out}");

    // Every address-bearing answer, on the bootstrap and the broker port,
    // names only the listener.
    for port in [ports.0, ports.1] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (raw, versions): (_, ApiVersionsResponse) = call(
            &mut s,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        )
        .await;
        assert!(!versions.api_keys.is_empty());
        assert!(!contains(&raw, "127.0.0.2"));
        for version in [1, 4, 9, 12] {
            let (raw, metadata): (_, MetadataResponse) = call(
                &mut s,
                ApiKey::Metadata,
                version,
                &MetadataRequest::default().with_topics(None),
            )
            .await;
            assert!(
                !contains(&raw, "127.0.0.2"),
                "metadata v{version} leaked the backend"
            );
            assert!(
                !contains(&raw, &tansu.address),
                "metadata v{version} leaked the backend"
            );
            let brokers: Vec<(i32, &str, i32)> = metadata
                .brokers
                .iter()
                .map(|b| (b.node_id.0, b.host.as_str(), b.port))
                .collect();
            assert_eq!(
                brokers,
                [(111, "127.0.0.1", i32::from(ports.1))],
                "v{version}"
            );
        }
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str("confluent-group"));
        let (raw, coordinator): (_, FindCoordinatorResponse) =
            call(&mut s, ApiKey::FindCoordinator, 2, &request).await;
        assert!(!contains(&raw, "127.0.0.2"));
        assert_eq!(
            (coordinator.host.as_str(), coordinator.port),
            ("127.0.0.1", i32::from(ports.1))
        );
    }

    // A configuration change keeps an open connection, and a new listener
    // accepts within a second.
    let mut kept = TcpStream::connect(("127.0.0.1", ports.0)).await.unwrap();
    let _: (_, ApiVersionsResponse) = call(
        &mut kept,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .await;
    let more = two_ports();
    let started = Instant::now();
    expose(&mut admin, &gw.id, &backend.id, "team-b", more).await;
    let mut accepted = None;
    while started.elapsed() < WAIT {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", more.0)).await {
            accepted = Some((s, started.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut fresh, took) = accepted.expect("the new listener never accepted");
    // How fast is a benchmark figure (README); here only that it happens.
    eprintln!("new listener accepting {took:?} after the admin write");
    let (_, metadata): (_, MetadataResponse) = call(
        &mut fresh,
        ApiKey::Metadata,
        9,
        &MetadataRequest::default().with_topics(None),
    )
    .await;
    assert_eq!(metadata.brokers[0].port, i32::from(more.1));
    let (_, metadata): (_, MetadataResponse) = call(
        &mut kept,
        ApiKey::Metadata,
        9,
        &MetadataRequest::default().with_topics(None),
    )
    .await;
    assert_eq!(
        metadata.brokers[0].port,
        i32::from(ports.1),
        "the old connection still works"
    );

    // A change to the very forward policy the kept connection came in
    // on applies to that same socket's next answer (a raw socket cannot
    // reconnect behind the test's back).
    let mut forward = admin
        .list_entities(ListEntitiesRequest {
            kind: Kind::ListenerPolicyForwardToVirtualCluster as i32,
            gateway_id: gw.id.clone(),
            name: "team-a".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entities
        .pop()
        .expect("team-a's forward policy");
    if let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &mut forward.spec
        && let Some(Forward::PortMapping(m)) = &mut f.config
    {
        m.advertised_host = "localhost".into();
    }
    admin
        .update_entity(UpdateEntityRequest {
            entity: Some(forward),
            ..Default::default()
        })
        .await
        .expect("update the forward policy");
    let mut renamed = false;
    for _ in 0..200 {
        let (_, metadata): (_, MetadataResponse) = call(
            &mut kept,
            ApiKey::Metadata,
            9,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
        if metadata.brokers[0].host.as_str() == "localhost" {
            assert_eq!(metadata.brokers[0].port, i32::from(ports.1));
            renamed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(renamed, "the kept socket never saw the new advertised host");

    // Malformed input closes only that connection.
    let logged_before = proxy.line_count();
    let mut oversize = TcpStream::connect(("127.0.0.1", ports.0)).await.unwrap();
    oversize.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        tokio::time::timeout(WAIT, oversize.read(&mut byte))
            .await
            .expect("closed in time")
            .unwrap_or(0),
        0,
        "an oversized frame closes the connection"
    );
    let mut cut = TcpStream::connect(("127.0.0.1", ports.0)).await.unwrap();
    cut.write_all(&[0, 0, 0, 50, 1, 2, 3]).await.unwrap();
    drop(cut);
    let mut garbage = TcpStream::connect(("127.0.0.1", ports.0)).await.unwrap();
    garbage.write_all(&[0, 0, 0, 2, 0xff, 0xff]).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, garbage.read(&mut byte))
            .await
            .expect("closed in time")
            .unwrap_or(0),
        0,
        "a frame shorter than a header closes the connection"
    );
    proxy
        .wait_for_after(logged_before, WAIT, |l| {
            (l.contains("hop=\"listener\"") || l.contains("hop=listener"))
                && l.contains("bad_frame")
        })
        .expect("the refusals are logged with their hop");
    let (_, versions): (_, ApiVersionsResponse) = call(
        &mut kept,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .await;
    assert!(!versions.api_keys.is_empty(), "the proxy still serves");

    // The node reports the refusals, by hop, to the control plane.
    let mut reported = false;
    for _ in 0..300 {
        let nodes = admin
            .list_data_plane_nodes(sluice_proto::admin::v1::ListDataPlaneNodesRequest {
                gateway_id: gw.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        if nodes
            .iter()
            .flat_map(|n| &n.errors)
            .any(|e| e.hop == "listener" && e.kind == "bad_frame" && e.count == 3)
        {
            reported = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reported,
        "the node's status never showed the listener-hop errors"
    );
    proxy.terminate();
    drop(admin);
    server.stop();
}

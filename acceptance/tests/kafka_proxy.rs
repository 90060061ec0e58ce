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
use sluice_acceptance::{
    broker::{Tansu, free_port},
    process::Process,
    server::{self, Admin, Server},
    workspace_bin,
};
use sluice_proto::admin::v1::{
    BackendCluster, CreateEntityRequest, Entity, Gateway, Listener,
    ListenerPolicyForwardToVirtualCluster, PortMapping, VirtualCluster, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const WAIT: Duration = Duration::from_secs(30);

async fn create(admin: &mut Admin, gateway_id: &str, name: &str, spec: Spec) -> Entity {
    let entity = Entity {
        gateway_id: gateway_id.into(),
        name: name.into(),
        spec: Some(spec),
        ..Default::default()
    };
    admin
        .create_entity(CreateEntityRequest {
            entity: Some(entity),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Two free loopback ports, ascending: bootstrap, then broker 111.
fn two_ports() -> (u16, u16) {
    let (a, b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    (a.min(b), a.max(b))
}

/// A virtual cluster on `backend` served by a new listener on `ports`.
async fn expose(
    admin: &mut Admin,
    gw: &str,
    backend: &str,
    name: &str,
    ports: (u16, u16),
) -> Entity {
    let vc = create(
        admin,
        gw,
        name,
        Spec::VirtualCluster(VirtualCluster {
            destination_id: backend.into(),
            dns_label: name.into(),
            ..Default::default()
        }),
    )
    .await;
    let listener = create(
        admin,
        gw,
        name,
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into()],
            ports: vec![ports.0.to_string(), ports.1.to_string()],
        }),
    )
    .await;
    create(
        admin,
        gw,
        name,
        Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
            listener_id: listener.id.clone(),
            config: Some(Config::PortMapping(PortMapping {
                destination_id: vc.id.clone(),
                advertised_host: "127.0.0.1".into(),
                bootstrap_port: 0,
                min_broker_id: 111,
            })),
        }),
    )
    .await
}

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
    stream.read_exact(&mut len).await.unwrap();
    let mut raw = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut raw).await.unwrap();
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
    // The broker lives on 127.0.0.2 so that any leak of its address shows.
    let tansu = Tansu::start("127.0.0.2");
    for topic in ["confluent-orders", "python-orders"] {
        tansu.create_topic(topic, 3);
    }
    let server_bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&server_bin, dir.path());
    let server = Server::start(&server_bin, dir.path(), &[]);
    let mut admin = server.client(Some(&token)).await;
    let gw = create(&mut admin, "", "edge", Spec::Gateway(Gateway::default())).await;
    let backend = create(
        &mut admin,
        &gw.id,
        "tansu",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec![tansu.address.clone()],
            ..Default::default()
        }),
    )
    .await;
    let ports = two_ports();
    expose(&mut admin, &gw.id, &backend.id, "team-a", ports).await;
    let certs = dir.path().join("node");
    server::run_cli(
        &server_bin,
        &[
            "dataplane-cert",
            "issue",
            "--gateway",
            "edge",
            "--out",
            certs.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    let mut command = Command::new(workspace_bin("sluice-proxy"));
    command
        .args(["run", "--control-plane", &server.sync_addr])
        .arg("--cert")
        .arg(certs.join("tls.crt"))
        .arg("--key")
        .arg(certs.join("tls.key"))
        .arg("--ca")
        .arg(certs.join("ca.crt"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"));
    let proxy = Process::spawn(command, "proxy");
    for port in [ports.0, ports.1] {
        proxy
            .wait_for(WAIT, |l| {
                l.contains(&format!("listening on 127.0.0.1:{port}"))
            })
            .unwrap_or_else(|| panic!("the proxy never listened on {port}"));
    }
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
    while started.elapsed() < Duration::from_secs(5) {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", more.0)).await {
            accepted = Some((s, started.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut fresh, took) = accepted.expect("the new listener never accepted");
    eprintln!("new listener accepting {took:?} after the admin write");
    assert!(took < Duration::from_secs(1), "took {took:?}");
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

    // Malformed input closes only that connection.
    let mut oversize = TcpStream::connect(("127.0.0.1", ports.0)).await.unwrap();
    oversize.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        oversize.read(&mut byte).await.unwrap_or(0),
        0,
        "an oversized frame closes the connection"
    );
    let mut cut = TcpStream::connect(("127.0.0.1", ports.0)).await.unwrap();
    cut.write_all(&[0, 0, 0, 50, 1, 2, 3]).await.unwrap();
    drop(cut);
    let mut garbage = TcpStream::connect(("127.0.0.1", ports.0)).await.unwrap();
    garbage.write_all(&[0, 0, 0, 2, 0xff, 0xff]).await.unwrap();
    assert_eq!(
        garbage.read(&mut byte).await.unwrap_or(0),
        0,
        "a frame shorter than a header closes the connection"
    );
    proxy
        .wait_for(WAIT, |l| {
            l.contains("hop=\"listener\"") || l.contains("hop=listener")
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

    proxy.terminate();
    drop(admin);
    server.stop();
}

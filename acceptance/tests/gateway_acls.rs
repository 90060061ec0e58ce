//! examples/gateway-acls end to end: `terraform apply` gives one virtual
//! cluster gateway-enforced ACLs (per principal, by condition), a proxy
//! joins, and real clients show what a user would notice: alice writes
//! where allowed and gets TOPIC_AUTHORIZATION_FAILED elsewhere, bob reads
//! but cannot write, groups are per principal, listings leave out what a
//! principal may not describe, one Produce is allowed for one topic and
//! refused for the other, the ACL admin APIs are answered by the gateway
//! (and forwarded where the backend decides), and a shadow policy is
//! reported without changing anything.

use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::{
    messages::{
        ApiKey, DescribeAclsRequest, DescribeAclsResponse, ProduceRequest, ProduceResponse,
        TopicName,
        produce_request::{PartitionProduceData, TopicProduceData},
    },
    protocol::StrBytes,
    records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType},
};
use serde_json::Value;
use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    clients::strings,
    example::Example,
    raw_client,
    server::gateways,
    stack::start_proxy_with,
};
use sluice_proto::admin::v1::ListDataPlaneNodesRequest;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// One tenant.py command as `login` (`user:password@` or empty).
fn client(login: &str, bootstrap: &str, args: &[&str]) -> Value {
    clients::tenant(&format!("{login}{bootstrap}"), args)
}

/// One record batch holding `value`.
fn batch(value: &'static str) -> bytes::Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(bytes::Bytes::from_static(value.as_bytes())),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encodes");
    buf.freeze()
}

const ALICE: &str = "alice:alice-secret-1@";
const BOB: &str = "bob:bob-secret-1@";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_decides_acls_per_principal_and_resource() {
    let tansu = Tansu::start("127.0.0.4");
    for topic in ["orders", "audit", "payroll", "orders-kp"] {
        tansu.create_topic(topic, 1);
    }
    let mut example = Example::prepare("gateway-acls");
    let port = |_| {
        let (a, b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        serde_json::json!([a.min(b), a.max(b)])
    };
    let (ports, open_ports) = (port(0), port(1));
    example.var("backend_bootstrap", &tansu.address);
    example.var("ports", &ports);
    example.var("passthrough_ports", &open_ports);
    example.apply();
    example.assert_no_changes();
    let (server, dir) = (&example.server, example.dir.path());
    let proxy = start_proxy_with(server, dir, "gateway-acls", &[]);
    let (boot, open) = (
        format!("127.0.0.1:{}", ports[0]),
        format!("127.0.0.1:{}", open_ports[0]),
    );
    for p in [&ports[0], &open_ports[0]] {
        proxy
            .wait_for(WAIT, |l| l.contains(&format!("listening on 127.0.0.1:{p}")))
            .unwrap_or_else(|| panic!("the proxy never listened on {p}"));
    }

    // alice writes orders, is refused audit (read only) per topic.
    let wrote = client(ALICE, &boot, &["produce", "orders", "2", "alice"]);
    assert_eq!(wrote["delivered"], 2, "{wrote}");
    let refused = client(ALICE, &boot, &["produce", "audit", "1", "alice"]);
    assert_eq!(
        (refused["delivered"].as_i64(), strings(&refused["errors"])),
        (Some(0), vec!["TOPIC_AUTHORIZATION_FAILED".to_string()]),
        "{refused}"
    );
    // Listings leave out what she may not describe.
    let topics = strings(&client(ALICE, &boot, &["topics"])["topics"]);
    assert_eq!(
        topics,
        ["audit", "orders", "orders-kp"],
        "payroll must not show"
    );
    // Her groups are alice-*; another group is refused.
    let got = client(ALICE, &boot, &["consume", "orders", "alice-app", "10"]);
    assert_eq!(strings(&got["values"]), ["alice-0", "alice-1"], "{got}");
    let got = client(ALICE, &boot, &["consume", "orders", "bob-app", "10"]);
    assert!(
        strings(&got["errors"]).contains(&"GROUP_AUTHORIZATION_FAILED".to_string()),
        "{got}"
    );

    // bob reads orders (a shadow policy would take it away: reported,
    // not applied) but cannot write it.
    let got = client(BOB, &boot, &["consume", "orders", "bob-app", "10"]);
    assert_eq!(strings(&got["values"]), ["alice-0", "alice-1"], "{got}");
    let refused = client(BOB, &boot, &["produce", "orders", "1", "bob"]);
    assert_eq!(
        strings(&refused["errors"]),
        ["TOPIC_AUTHORIZATION_FAILED"],
        "{refused}"
    );

    // kafka-python: alice round-trips through orders-kp in her own group;
    // bob's producer is refused by the gateway.
    let kafka_python = |user: &str, password: &str, group: &str| {
        clients::try_run(
            "python3",
            "kafka_python_sasl.py",
            &[
                "roundtrip",
                &boot,
                "PLAIN",
                user,
                password,
                "--topic",
                "orders-kp",
                "--group",
                group,
            ],
        )
    };
    let (ok, out) = kafka_python("alice", "alice-secret-1", "alice-kp");
    assert!(ok, "{out}");
    let (ok, out) = kafka_python("bob", "bob-secret-1", "bob-kp");
    assert!(
        !ok && out.contains("TopicAuthorizationFailed"),
        "bob may not write orders-kp: {out}"
    );

    // One Produce naming two topics (an anonymous client may write orders
    // and only read audit): written to one, refused for the other.
    let mut raw = TcpStream::connect(&boot).await.unwrap();
    let topic = |name: &'static str| {
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(name))),
            ])
    };
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![topic("orders"), topic("audit")]);
    let answer: ProduceResponse = raw_client::request(&mut raw, ApiKey::Produce, 9, &request)
        .await
        .unwrap();
    let mut codes: Vec<(String, i16)> = answer
        .responses
        .iter()
        .map(|t| (t.name.0.to_string(), t.partition_responses[0].error_code))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [("audit".to_string(), 29), ("orders".to_string(), 0)],
        "{answer:?}"
    );

    // The ACL admin APIs: answered by the gateway under enforce_on_gateway
    // (confluent-kafka) ...
    let described = client(ALICE, &boot, &["describe-acls"]);
    assert_eq!(described["error"], Value::Null, "{described}");
    let acls = strings(&described["acls"]);
    assert!(
        acls.contains(&"User:alice ALLOW WRITE TOPIC:PREFIXED:orders".to_string())
            && acls.contains(&"User:alice ALLOW READ TOPIC:LITERAL:audit".to_string()),
        "{acls:?}"
    );
    assert!(
        acls.iter().all(|a| a.starts_with("User:alice ")),
        "only the rules that apply to the asker: {acls:?}"
    );
    let created = client(ALICE, &boot, &["create-acls", "payroll"]);
    assert!(
        created["message"]
            .as_str()
            .is_some_and(|m| m.contains("sluice_cluster_policy_acls")),
        "{created}"
    );
    // bob may not describe the cluster: nothing of the rules is shown
    // (librdkafka reports the refusal as an empty answer) ...
    let described = client(BOB, &boot, &["describe-acls"]);
    assert!(
        described["error"] == "CLUSTER_AUTHORIZATION_FAILED"
            || described["acls"].as_array().is_some_and(Vec::is_empty),
        "{described}"
    );
    // ... and a raw client sees Kafka's error (anonymous clients may not
    // describe the cluster either).
    let mut raw = TcpStream::connect(&boot).await.unwrap();
    let any = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let answer: DescribeAclsResponse = raw_client::request(&mut raw, ApiKey::DescribeAcls, 1, &any)
        .await
        .expect("the gateway answers DescribeAcls itself");
    assert_eq!(
        (answer.error_code, answer.resources.len()),
        (31, 0),
        "{answer:?}"
    );
    // Where the backend decides (acl_mode = passthrough), the request is
    // forwarded: tansu has no ACL API, and whatever it does, the answer is
    // not the gateway's.
    let mut raw = TcpStream::connect(&open).await.unwrap();
    if let Ok(answer) =
        raw_client::request::<_, DescribeAclsResponse>(&mut raw, ApiKey::DescribeAcls, 1, &any)
            .await
    {
        assert_ne!(answer.error_code, 31, "passthrough answered by the gateway");
    }

    // Where the backend decides, ACL policies are only tried out: a write
    // their rules would refuse goes through, and is reported as shadow.
    let wrote = client("", &open, &["produce", "audit", "1", "trial"]);
    assert_eq!(wrote["delivered"], 1, "{wrote}");

    // The operator sees each denial at hop=policy: enforced ones by the
    // deciding policy or the virtual cluster (denied by default), shadow
    // ones by the shadow policy, with detail shadow.
    proxy
        .wait_for(WAIT, |l| {
            l.contains("acl_denied") && l.contains("User:alice Produce") && l.contains("\"audit\"")
        })
        .expect("alice's refused write is logged at kind=acl_denied");
    let mut admin = server.client(Some(&example.token)).await;
    let gateway = gateways(&mut admin).await[0].id.clone();
    let started = std::time::Instant::now();
    let shadow = loop {
        let nodes = admin
            .list_data_plane_nodes(ListDataPlaneNodesRequest {
                gateway_id: gateway.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        let found = nodes
            .iter()
            .flat_map(|n| &n.errors)
            .find(|e| {
                e.kind == "acl_denied"
                    && e.detail == "shadow"
                    && e.last_message.contains("User:bob")
            })
            .cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed() < WAIT,
            "no shadow denial in node status: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(shadow.hop, "policy");
    let open_vc = {
        let mut found = None;
        while found.is_none() {
            let nodes = admin
                .list_data_plane_nodes(ListDataPlaneNodesRequest {
                    gateway_id: gateway.clone(),
                })
                .await
                .unwrap()
                .into_inner()
                .nodes;
            found = nodes
                .iter()
                .flat_map(|n| &n.errors)
                .find(|e| {
                    e.detail == "shadow" && e.last_message.contains("write on topic \"audit\"")
                })
                .cloned();
            assert!(
                started.elapsed() < WAIT * 2,
                "no report of the trial: {nodes:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found.unwrap()
    };
    assert!(
        open_vc.last_message.contains("User:ANONYMOUS Produce")
            && open_vc.last_message.contains("in shadow"),
        "{open_vc:?}"
    );
    assert!(
        shadow.last_message.contains("User:bob") && shadow.last_message.contains("in shadow"),
        "{shadow:?}"
    );
    let entity_name = shadow.entity.clone();
    assert!(!entity_name.is_empty(), "the shadow policy is named");
}

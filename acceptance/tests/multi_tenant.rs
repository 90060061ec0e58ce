//! examples/multi-tenant end to end: `terraform apply` puts three tenants
//! on one tansu (team-a and team-b with hidden prefixes, audit with an
//! enforced one, a shared topic for all), a proxy joins, and real clients
//! (confluent-kafka, kafkajs) show that no tenant can list, produce to,
//! consume from, commit offsets for or delete another's topics and
//! groups; that transactional ids are the tenant's own; that an alias
//! reaches its topic; and that an API the namespace does not
//! police is refused.

use std::time::Duration;

use kafka_protocol::{
    messages::{
        ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, InitProducerIdRequest,
        InitProducerIdResponse, TransactionalId,
    },
    protocol::StrBytes,
};
use serde_json::Value;
use sluice_acceptance::{
    broker::{Tansu, free_port},
    clients,
    clients::{strings, tenant},
    example::Example,
    raw_client,
    stack::start_proxy_with,
};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_one_backend_cannot_see_or_touch_each_other() {
    let tansu = Tansu::start("127.0.0.3");
    tansu.create_topic("shared-events", 1);
    let mut example = Example::prepare("multi-tenant");
    let mut ports = serde_json::Map::new();
    for name in ["team-a", "team-b", "audit"] {
        let (a, b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        ports.insert(name.into(), serde_json::json!([a.min(b), a.max(b)]));
    }
    let bootstrap = |name: &str| format!("127.0.0.1:{}", ports[name][0]);
    example.var("backend_bootstrap", &tansu.address);
    example.var("ports", Value::Object(ports.clone()));
    example.apply();
    example.assert_no_changes();
    let (server, dir) = (&example.server, example.dir.path());

    let proxy = start_proxy_with(server, dir, "shared", &[]);
    for name in ["team-a", "team-b", "audit"] {
        let p = &ports[name][0];
        proxy
            .wait_for(WAIT, |l| l.contains(&format!("listening on 127.0.0.1:{p}")))
            .unwrap_or_else(|| panic!("the proxy never listened on {name}'s port {p}"));
    }
    let (a, b, audit) = (bootstrap("team-a"), bootstrap("team-b"), bootstrap("audit"));

    // Both teams create "orders": two different topics on the broker.
    for (boot, tag) in [(&a, "a"), (&b, "b")] {
        assert_eq!(
            tenant(boot, &["create", "orders"])["error"],
            Value::Null,
            "{tag}"
        );
    }
    let produced = tenant(&a, &["produce", "orders-v2", "2", "a"]);
    assert_eq!(
        produced["delivered"], 2,
        "team-a through its alias: {produced}"
    );
    assert_eq!(tenant(&b, &["produce", "orders", "1", "b"])["delivered"], 1);

    // Each lists only its own topics (unprefixed) and the shared one.
    for boot in [&a, &b] {
        let topics = strings(&tenant(boot, &["topics"])["topics"]);
        assert!(topics.contains(&"orders".to_string()), "{topics:?}");
        assert!(topics.contains(&"shared-events".to_string()), "{topics:?}");
        assert!(
            topics.iter().all(|t| !t.starts_with("team-")),
            "a prefix or another tenant's topic shows: {topics:?}"
        );
    }

    // Each consumes only its own records, in its own group.
    let got = tenant(&a, &["consume", "orders", "app", "10"]);
    assert_eq!(strings(&got["values"]), ["a-0", "a-1"], "{got}");
    let got = tenant(&b, &["consume", "orders", "app", "10"]);
    assert_eq!(strings(&got["values"]), ["b-0"], "{got}");
    // Naming the other's backend topic gets a topic of one's own, never
    // the other's records.
    let got = tenant(&b, &["consume", "team-a.orders", "peek", "10"]);
    assert!(
        strings(&got["values"]).iter().all(|v| !v.starts_with("a-")),
        "team-b read team-a's records: {got}"
    );

    // Groups and their offsets: each sees and reads only its own.
    let groups_a = strings(&tenant(&a, &["groups"])["groups"]);
    assert!(groups_a.contains(&"app".to_string()), "{groups_a:?}");
    assert!(
        groups_a.iter().all(|g| !g.starts_with("team-")),
        "{groups_a:?}"
    );
    let committed = tenant(&a, &["offsets", "app", "orders"]);
    assert_eq!(committed["offset"], 2, "{committed}");
    let committed = tenant(&b, &["offsets", "app", "orders"]);
    assert_eq!(
        committed["offset"], 1,
        "team-b's app group is its own: {committed}"
    );

    // kafkajs in a consumer group of team-b: served, and invisible to team-a.
    assert_eq!(tenant(&b, &["create", "kjs-orders"])["error"], Value::Null);
    let out = clients::run(
        "node",
        "kafkajs_roundtrip.js",
        &[&b, "kjs-orders", "kjs-group"],
    );
    assert!(out.contains("kafkajs-2"), "{out}");
    let groups_a = strings(&tenant(&a, &["groups"])["groups"]);
    assert!(!groups_a.contains(&"kjs-group".to_string()), "{groups_a:?}");
    let topics_a = strings(&tenant(&a, &["topics"])["topics"]);
    assert!(
        !topics_a.contains(&"kjs-orders".to_string()),
        "{topics_a:?}"
    );

    // Deleting "orders" in team-b deletes team-b's; team-a's records stay.
    assert_eq!(tenant(&b, &["delete", "orders"])["error"], Value::Null);
    assert_eq!(tenant(&b, &["delete-group", "app"])["error"], Value::Null);
    let got = tenant(&a, &["consume", "orders", "after-delete", "10"]);
    assert_eq!(strings(&got["values"]), ["a-0", "a-1"], "{got}");

    // The shared topic: written by one tenant, read by another.
    assert_eq!(
        tenant(&a, &["produce", "shared-events", "1", "shared"])["delivered"],
        1
    );
    let got = tenant(&b, &["consume", "shared-events", "shared-reader", "10"]);
    assert_eq!(strings(&got["values"]), ["shared-0"], "{got}");
    // Shared means used, not owned: no tenant may delete it for the others.
    assert_eq!(
        tenant(&b, &["delete", "shared-events"])["error"],
        "TOPIC_AUTHORIZATION_FAILED"
    );
    // The operator can tell why: the test's first refusal is logged (and
    // counted in node status) at the policy hop, naming the topic.
    proxy
        .wait_for(WAIT, |l| {
            l.contains("outside_namespace")
                && l.contains("DeleteTopics: refused topic \"shared-events\"")
        })
        .expect("the refusal is logged at hop=policy kind=outside_namespace");

    // Transactional ids: tansu 0.6 does not offer EndTxn, so no Kafka
    // client will run a transaction against it; its InitProducerId is
    // asked directly. Inside a namespace the id is the tenant's; outside
    // an enforced prefix it is refused with Kafka's own error.
    let init = |id: &'static str| {
        InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(id))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1)
    };
    let mut raw = TcpStream::connect(&a).await.unwrap();
    let answer: InitProducerIdResponse =
        raw_client::request(&mut raw, ApiKey::InitProducerId, 4, &init("payments-tx"))
            .await
            .unwrap();
    assert_eq!(answer.error_code, 0, "{answer:?}");
    let mut raw = TcpStream::connect(&audit).await.unwrap();
    let answer: InitProducerIdResponse =
        raw_client::request(&mut raw, ApiKey::InitProducerId, 4, &init("payments-tx"))
            .await
            .unwrap();
    assert_eq!(
        answer.error_code, 53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED: {answer:?}"
    );

    // enforce_prefix: full names, and only its own.
    let topics = strings(&tenant(&audit, &["topics"])["topics"]);
    assert_eq!(topics, ["shared-events"], "{topics:?}");
    assert_eq!(
        tenant(&audit, &["create", "audit.log"])["error"],
        Value::Null
    );
    assert_eq!(
        tenant(&audit, &["create", "log"])["error"],
        "TOPIC_AUTHORIZATION_FAILED"
    );
    let refused = tenant(&audit, &["produce", "team-a.orders", "1", "x"]);
    assert_eq!(refused["delivered"], 0, "{refused}");
    assert_eq!(strings(&refused["errors"]), ["TOPIC_AUTHORIZATION_FAILED"]);
    assert_eq!(
        tenant(&audit, &["produce", "audit.log", "1", "ok"])["delivered"],
        1
    );

    // An API the namespace does not police (DescribeLogDirs names every
    // topic on a broker): refused with its own error, never forwarded, the
    // hop named.
    let mut raw = TcpStream::connect(&a).await.unwrap();
    let answer: DescribeLogDirsResponse = raw_client::request(
        &mut raw,
        ApiKey::DescribeLogDirs,
        4,
        &DescribeLogDirsRequest::default(),
    )
    .await
    .expect("DescribeLogDirs was not answered");
    assert_eq!(
        answer.error_code, 31,
        "CLUSTER_AUTHORIZATION_FAILED: {answer:?}"
    );
    assert!(answer.results.is_empty(), "{answer:?}");
    proxy
        .wait_for(WAIT, |l| {
            l.contains("unpoliced_api") && l.contains("DescribeLogDirs")
        })
        .expect("the refusal is logged at hop=policy kind=unpoliced_api");
    example.server.stop();
}

//! Event hooks against a real HTTP receiver on loopback: one signed event
//! per change in order, nothing lost across a receiver outage and a server
//! restart, writes never wait on receivers, ping/test/sources, dead
//! letters, data-plane events with snoozing, and the log handler.

mod common;

use common::{create, deliveries, fixtures::hook, wait_deliveries};

use std::time::{Duration, Instant};

use common::{
    fixtures,
    receiver::{Behaviour, Receiver},
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_acceptance::node::{self, Node};
use sluice_proto::{
    admin::v1::{
        DeleteEntityRequest, Entity, EventHandler, EventSource, Kind, ListEventSourcesRequest,
        PingEventHookRequest, TestEventHookRequest, UpdateEntityRequest, entity::Spec,
    },
    dataplane::v1::DataPlaneEvent,
};
use tonic::Code;

const FAST_RETRIES: &[&str] = &["--event-retry-base-ms", "50", "--event-retry-max-ms", "200"];

fn verify_signature(secret: &str, received: &common::receiver::Received) {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&received.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(received.headers.get("x-sluice-signature"), Some(&expected));
}

#[tokio::test]
async fn each_change_arrives_once_in_order_and_signed() {
    let (_dir, _server, mut admin, _) = common::start().await;
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = create(&mut admin, fixtures::gateway("hooks")).await;
    let h = create(
        &mut admin,
        hook(
            &gw.id,
            "all",
            EventSource::Crud,
            "",
            EventHandler::Webhook,
            &receiver.url(),
            "s3cret",
        ),
    )
    .await;

    let ping = receiver.next().await;
    verify_signature("s3cret", &ping);
    assert_eq!(ping.json()["event"], "ping");

    let backend = create(
        &mut admin,
        fixtures::backend(&gw.id, "kafka", "backend-pw-123"),
    )
    .await;
    let mut changed = backend.clone();
    changed.description = "changed".into();
    let changed = admin
        .update_entity(UpdateEntityRequest {
            entity: Some(changed),
            expected_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let deleted = admin
        .delete_entity(DeleteEntityRequest {
            kind: Kind::BackendCluster as i32,
            id: backend.id.clone(),
            expected_revision: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let mut seen = Vec::new();
    for (operation, revision) in [
        ("create", backend.revision),
        ("update", changed.revision),
        ("delete", deleted.revision),
    ] {
        let r = receiver.next().await;
        verify_signature("s3cret", &r);
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let p = r.json();
        assert_eq!(
            r.headers.get("x-sluice-event-id"),
            p["id"].as_str().map(str::to_string).as_ref()
        );
        assert_eq!(
            (
                p["source"].as_str(),
                p["event"].as_str(),
                p["operation"].as_str()
            ),
            (Some("crud"), Some("backend_cluster"), Some(operation))
        );
        assert_eq!(p["revision"], revision);
        assert_eq!(p["gateway_id"], gw.id.as_str());
        assert!(p["timestamp"].as_str().is_some_and(|t| t.contains('T')));
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(
            !body.contains("backend-pw-123"),
            "a secret leaked into a payload"
        );
        match operation {
            "create" => assert!(p["old_entity"].is_null() && p["entity"]["name"] == "kafka"),
            "update" => assert!(p["old_entity"]["description"] != p["entity"]["description"]),
            _ => assert!(p["entity"].is_null() && p["old_entity"]["id"] == backend.id.as_str()),
        }
        seen.push(p["id"].as_str().unwrap().to_string());
    }
    // Exactly one delivery each: the ping and three changes, all delivered.
    let list = wait_deliveries(&mut admin, &gw.id, &h.id, |l| {
        l.iter().all(|d| d.status == "delivered")
    })
    .await;
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|d| d.attempts == 1));
}

#[tokio::test]
async fn nothing_is_lost_while_the_receiver_is_down_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let mut args = FAST_RETRIES.to_vec();
    args.extend(["--event-max-attempts", "100000"]);
    let server = common::start_server(dir.path(), &args);
    let mut admin = server.client(Some(&token)).await;
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let gw = create(&mut admin, fixtures::gateway("outage")).await;
    let h = create(
        &mut admin,
        hook(
            &gw.id,
            "all",
            EventSource::Crud,
            "",
            EventHandler::Webhook,
            &url,
            "",
        ),
    )
    .await;
    let mut revisions = Vec::new();
    for i in 0..5 {
        revisions.push(
            create(
                &mut admin,
                fixtures::backend(&gw.id, &format!("b{i}"), "pw-123456"),
            )
            .await
            .revision,
        );
    }
    // Failed attempts are recorded and retried.
    wait_deliveries(&mut admin, &gw.id, &h.id, |l| {
        l.iter()
            .any(|d| d.attempts >= 2 && d.last_error.contains("connect"))
    })
    .await;
    drop(admin);
    server.stop();

    let server = common::start_server(dir.path(), &args);
    let mut admin = server.client(Some(&token)).await;
    let mut receiver = Receiver::start(&format!("127.0.0.1:{port}"), Behaviour::Ok).await;
    // At least once: dedupe by event id; the order per hook holds.
    let mut ids: Vec<String> = Vec::new();
    let mut got = Vec::new();
    while got.len() < 6 {
        let p = receiver.next().await.json();
        let id = p["id"].as_str().unwrap().to_string();
        if !ids.contains(&id) {
            ids.push(id);
            got.push(p);
        }
    }
    assert_eq!(got[0]["event"], "ping");
    let delivered: Vec<i64> = got[1..]
        .iter()
        .map(|p| p["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, revisions, "every event, in order");
    let list = wait_deliveries(&mut admin, &gw.id, &h.id, |l| {
        l.iter().all(|d| d.status == "delivered")
    })
    .await;
    assert_eq!(list.len(), 6);
    drop(admin);
    server.stop();
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_admin_writes() {
    let (_dir, _server, mut admin, _) = common::start().await;
    let receiver = Receiver::start("127.0.0.1:0", Behaviour::Hang).await;
    let gw = create(&mut admin, fixtures::gateway("slow")).await;
    let mut target = create(&mut admin, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    // The receiver never answers and the hook waits up to 300 s for it, so
    // a write that waited on a delivery would take 300 s: each write gets
    // 30 s, which no healthy write on a loaded machine comes near.
    // Latencies are printed, not asserted.
    let time_writes = async |admin: &mut common::Admin, target: &mut Entity| {
        let mut times = Vec::new();
        for i in 0..20 {
            target.description = format!("write {i}");
            let start = Instant::now();
            let write = admin.update_entity(UpdateEntityRequest {
                entity: Some(target.clone()),
                expected_revision: 0,
            });
            *target = tokio::time::timeout(Duration::from_secs(30), write)
                .await
                .unwrap_or_else(|_| panic!("write {i} waited on the hanging receiver"))
                .unwrap()
                .into_inner();
            times.push(start.elapsed());
        }
        times.sort();
        times
    };
    let without = time_writes(&mut admin, &mut target).await;
    let mut hangs = hook(
        &gw.id,
        "hangs",
        EventSource::Crud,
        "",
        EventHandler::Webhook,
        &receiver.url(),
        "",
    );
    if let Some(Spec::EventHook(h)) = hangs.spec.as_mut() {
        h.config.as_mut().unwrap().timeout = 300;
    }
    create(&mut admin, hangs).await;
    // A delivery (the creation ping) is being held before the writes start.
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.every().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no delivery reached the receiver"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let with = time_writes(&mut admin, &mut target).await;
    eprintln!(
        "admin write latency p50/max: without a hook {:?}/{:?}, with a hanging receiver {:?}/{:?}",
        without[10], without[19], with[10], with[19]
    );
}

#[tokio::test]
async fn ping_test_sources_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let mut args = FAST_RETRIES.to_vec();
    args.extend(["--event-max-attempts", "3"]);
    let server = common::start_server(dir.path(), &args);
    let mut admin = server.client(Some(&token)).await;
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Status(500)).await;
    let gw = create(&mut admin, fixtures::gateway("dead")).await;
    let h = create(
        &mut admin,
        hook(
            &gw.id,
            "h",
            EventSource::Crud,
            "virtual_cluster",
            EventHandler::Webhook,
            &receiver.url(),
            "",
        ),
    )
    .await;

    // The creation ping fails three times and is dead, still listed.
    let list = wait_deliveries(&mut admin, &gw.id, &h.id, |l| {
        l.first().is_some_and(|d| d.status == "dead")
    })
    .await;
    let dead = list[0].clone();
    let dead_at = tokio::time::Instant::now();
    assert_eq!(dead.attempts, 3);
    assert!(dead.last_error.contains("HTTP 500"), "{}", dead.last_error);
    assert_eq!(receiver.tries_of(&dead.event_id), 3);

    // A ping by hand is a new event: what arrives is it, not the dead one
    // sent again now that the receiver answers.
    receiver.set(Behaviour::Ok);
    let ping = admin
        .ping_event_hook(PingEventHookRequest { id: h.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ping.event, "ping");
    assert_ne!(ping.event_id, dead.event_id);
    let got = receiver.next().await.json();
    assert_eq!(
        (got["event"].as_str(), got["id"].as_str()),
        (Some("ping"), Some(ping.event_id.as_str()))
    );
    admin
        .test_event_hook(TestEventHookRequest {
            id: h.id.clone(),
            sample_json: r#"{"hello":"world"}"#.into(),
        })
        .await
        .unwrap();
    let test = receiver.next().await.json();
    assert_eq!(
        (test["source"].as_str(), test["entity"]["hello"].as_str()),
        (Some("test"), Some("world"))
    );
    let err = admin
        .test_event_hook(TestEventHookRequest {
            id: h.id.clone(),
            sample_json: "{not json".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // The hook listens to virtual clusters only: a backend is not sent.
    let backend = create(&mut admin, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let vc = create(
        &mut admin,
        fixtures::virtual_cluster(&gw.id, "vc", &backend.id, "vc"),
    )
    .await;
    let p = receiver.next().await.json();
    assert_eq!(
        (p["event"].as_str(), p["entity"]["id"].as_str()),
        (Some("virtual_cluster"), Some(vc.id.as_str()))
    );

    let sources = admin
        .list_event_sources(ListEventSourcesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sources;
    let crud = sources.iter().find(|s| s.name == "crud").unwrap();
    assert!(crud.events.iter().any(|e| e.name == "virtual_cluster"));
    assert!(crud.payload_fields.iter().any(|f| f == "old_entity"));
    let dp = sources.iter().find(|s| s.name == "dataplane").unwrap();
    assert!(dp.events.iter().any(|e| e.name == "acl_denied"));

    // Dead stays dead: two seconds on (ten times the longest retry delay,
    // 200 ms) the dead ping was neither tried again nor resent.
    tokio::time::sleep_until(dead_at + Duration::from_secs(2)).await;
    let after = deliveries(&mut admin, &gw.id, &h.id).await;
    let after = after.iter().find(|d| d.id == dead.id).unwrap();
    assert_eq!((after.status.as_str(), after.attempts), ("dead", 3));
    assert_eq!(receiver.tries_of(&dead.event_id), 3);
    drop(admin);
    server.stop();
}

#[tokio::test]
async fn data_plane_events_reach_hooks_and_repeats_are_snoozed() {
    let (dir, server, mut admin, _) = common::start().await;
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = create(&mut admin, fixtures::gateway("dp")).await;
    let mut denied = hook(
        &gw.id,
        "denied",
        EventSource::Dataplane,
        "acl_denied",
        EventHandler::Webhook,
        &receiver.url(),
        "",
    );
    if let Some(Spec::EventHook(h)) = denied.spec.as_mut() {
        h.snooze_seconds = 3600;
    }
    create(&mut admin, denied).await;
    assert_eq!(receiver.next().await.json()["event"], "ping");
    let certs = node::issue(common::bin(), dir.path(), "dp", &dir.path().join("node"));
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    let denial = |key: &str, count| DataPlaneEvent {
        event: "acl_denied".into(),
        key: key.into(),
        count,
        hop: "policy".into(),
        entity_id: "acl-1".into(),
        message: "denied WRITE".into(),
        shadow: true,
    };
    n.send_events(vec![denial("alice/topic:orders", 1)]).await;
    n.send_events(vec![denial("alice/topic:orders", 40)]).await;
    // A fence: an event with another key, sent after the repeat. Events of
    // one stream are queued in the order they come, so once the fence is
    // delivered, a repeat that had been queued would be in the list too.
    n.send_events(vec![denial("bob/topic:payments", 2)]).await;
    let p = receiver.next().await.json();
    assert_eq!(
        (
            p["source"].as_str(),
            p["event"].as_str(),
            p["node_id"].as_str()
        ),
        (Some("dataplane"), Some("acl_denied"), Some("n1"))
    );
    assert_eq!(
        (p["entity"]["key"].as_str(), p["entity"]["count"].as_i64()),
        (Some("alice/topic:orders"), Some(1))
    );
    assert_eq!(
        p["entity"]["shadow"].as_bool(),
        Some(true),
        "a shadow decision says so"
    );
    let fence = receiver.next().await.json();
    assert_eq!(
        fence["entity"]["key"].as_str(),
        Some("bob/topic:payments"),
        "the repeat within the snooze window was sent: {fence}"
    );
    let hook_id = deliveries(&mut admin, &gw.id, "").await[0].hook_id.clone();
    let list = wait_deliveries(&mut admin, &gw.id, &hook_id, |l| {
        l.iter().all(|d| d.status == "delivered")
    })
    .await;
    assert_eq!(
        list.iter().filter(|d| d.event == "acl_denied").count(),
        2,
        "the alice denial and the fence, no repeat: {list:?}"
    );
    assert!(receiver.try_next().is_none());
}

#[tokio::test]
async fn the_log_handler_writes_one_line_per_event() {
    let (_dir, server, mut admin, _) = common::start().await;
    let gw = create(&mut admin, fixtures::gateway("logs")).await;
    create(
        &mut admin,
        hook(
            &gw.id,
            "log",
            EventSource::Crud,
            "backend_cluster",
            EventHandler::Log,
            "",
            "",
        ),
    )
    .await;
    let backend = create(
        &mut admin,
        fixtures::backend(&gw.id, "logged-backend", "pw-123456"),
    )
    .await;
    let line = server
        .wait_for_log(Duration::from_secs(20), |l| {
            l.contains("sluice_server::events") && l.contains(&backend.id)
        })
        .expect("an event line in the server log");
    assert!(line.contains("\"operation\":\"create\""), "{line}");
}

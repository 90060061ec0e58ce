//! What a hook's receiver gets: the hook's custom headers exactly as
//! written, and the node lifecycle events (node_connected,
//! config_rejected, node_disconnected) of a real sync stream, each once,
//! to the hooks subscribed to them.

mod common;

use std::collections::HashMap;

use common::{
    create, deliveries, fixtures,
    receiver::{Behaviour, Receiver},
    wait_deliveries,
};
use sluice_acceptance::node::{self, Node};
use sluice_proto::admin::v1::{EventHandler, EventSource, entity::Spec};

#[tokio::test]
async fn custom_headers_arrive_exactly_as_written() {
    let (_dir, _server, mut admin, _) = common::start().await;
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = create(&mut admin, fixtures::gateway("headers")).await;
    let headers = [
        ("X-Team", "platform"),
        ("x-trace-context", "00-4bf92f35-01;  rojo=1 , congo=2"),
        ("X-Api-Key", "key with spaces\tand a tab"),
        ("Accept-Language", "de-CH, en;q=0.5"),
    ];
    let mut h = fixtures::hook(
        &gw.id,
        "headers",
        EventSource::Crud,
        "backend_cluster",
        EventHandler::Webhook,
        &receiver.url(),
        "",
    );
    if let Some(Spec::EventHook(spec)) = h.spec.as_mut() {
        spec.config.as_mut().unwrap().headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), fixtures::secret(v).unwrap()))
            .collect::<HashMap<_, _>>();
    }
    create(&mut admin, h).await;
    let ping = receiver.next().await;
    create(&mut admin, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let change = receiver.next().await;
    assert_eq!(change.json()["event"], "backend_cluster");
    for got in [ping, change] {
        for (name, value) in headers {
            // Header names are case-insensitive (the receiver lower-cases
            // them); values arrive byte for byte.
            assert_eq!(
                got.headers
                    .get(&name.to_ascii_lowercase())
                    .map(String::as_str),
                Some(value),
                "header {name} in {:?}",
                got.headers
            );
        }
        // The server's own headers are still there beside them.
        assert_eq!(
            got.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert!(got.headers.contains_key("x-sluice-event-id"));
    }
}

#[tokio::test]
async fn node_lifecycle_events_reach_the_hooks_subscribed_to_them() {
    let (dir, server, mut admin, _) = common::start().await;
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = create(&mut admin, fixtures::gateway("lifecycle")).await;
    let events = ["node_connected", "config_rejected", "node_disconnected"];
    let mut hook_of = HashMap::new();
    for event in events {
        let h = create(
            &mut admin,
            fixtures::hook(
                &gw.id,
                event,
                EventSource::Dataplane,
                event,
                EventHandler::Webhook,
                &receiver.url(),
                "",
            ),
        )
        .await;
        hook_of.insert(h.id, event);
    }
    // The hooks' creation pings.
    for _ in events {
        assert_eq!(receiver.next().await.json()["event"], "ping");
    }

    // A node connects, takes its snapshot, refuses the next update and
    // goes away.
    let certs = node::issue(
        common::bin(),
        dir.path(),
        "lifecycle",
        &dir.path().join("node"),
    );
    let mut n = Node::connect(&server.sync_addr, &certs, node::hello("n1", 0))
        .await
        .unwrap();
    let snapshot = n.update().await;
    n.ack(&snapshot).await;
    create(&mut admin, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let update = n.update().await;
    n.nack(&update, "backend_cluster rejected: cannot resolve host")
        .await;
    // The NACK is read before the stream ends: the next update (if any)
    // would follow it, and the rejection is listed once it is in.
    common::wait_nodes(&mut admin, &gw.id, |l| {
        l.first().is_some_and(|n| n.rejected.is_some())
    })
    .await;
    drop(n);

    let mut got: HashMap<String, serde_json::Value> = HashMap::new();
    while got.len() < events.len() {
        let p = receiver.next().await.json();
        let event = p["event"].as_str().unwrap().to_string();
        assert!(
            got.insert(event.clone(), p).is_none(),
            "{event} arrived twice"
        );
    }
    for (event, p) in &got {
        assert_eq!(
            (
                p["source"].as_str(),
                p["node_id"].as_str(),
                p["gateway_id"].as_str()
            ),
            (Some("dataplane"), Some("n1"), Some(gw.id.as_str())),
            "{event}: {p}"
        );
    }
    assert_eq!(got["node_connected"]["entity"]["hostname"], "test-host");
    assert_eq!(
        got["config_rejected"]["entity"]["revision"],
        update.revision
    );
    assert_eq!(
        got["config_rejected"]["entity"]["reason"],
        "backend_cluster rejected: cannot resolve host"
    );
    assert_eq!(
        got["node_disconnected"]["entity"]["applied_revision"],
        snapshot.revision
    );

    // Each hook got its ping and its own event, once; nothing else.
    let list = wait_deliveries(&mut admin, &gw.id, "", |l| {
        l.len() >= 6 && l.iter().all(|d| d.status == "delivered")
    })
    .await;
    let mut per_hook: Vec<(&str, String)> = list
        .iter()
        .filter(|d| d.event != "ping")
        .map(|d| (hook_of[&d.hook_id], d.event.clone()))
        .collect();
    per_hook.sort();
    let mut expected: Vec<(&str, String)> = events.iter().map(|e| (*e, e.to_string())).collect();
    expected.sort();
    assert_eq!(per_hook, expected, "{list:?}");
    assert_eq!(deliveries(&mut admin, &gw.id, "").await.len(), 6);
    assert!(receiver.try_next().is_none());
}

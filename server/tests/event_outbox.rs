//! The outbox under a misbehaving database and over time: an attempt whose
//! outcome cannot be written is not sent again in a loop, and finished
//! deliveries are pruned after their retention while pending ones stay.

mod common;

use common::{create, deliveries, wait_deliveries};

use std::time::Duration;

use common::{
    db, fixtures,
    receiver::{Behaviour, Receiver},
};
use sluice_proto::admin::v1::{Entity, EventHandler, EventSource, entity::Spec};

const FAST_RETRIES: &[&str] = &["--event-retry-base-ms", "50", "--event-retry-max-ms", "200"];

fn webhook(gw: &str, name: &str, url: &str) -> Entity {
    fixtures::hook(
        gw,
        name,
        EventSource::Crud,
        "",
        EventHandler::Webhook,
        url,
        "",
    )
}

/// A closed loopback port.
fn nobody_listens() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/hook")
}

#[tokio::test]
async fn an_attempt_that_cannot_be_recorded_is_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let server = common::start_server(dir.path(), FAST_RETRIES);
    let mut admin = server.client(Some(&token)).await;
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = create(&mut admin, fixtures::gateway("full-disk")).await;
    let h = create(&mut admin, webhook(&gw.id, "h", &receiver.url())).await;
    assert_eq!(receiver.next().await.json()["event"], "ping");
    wait_deliveries(&mut admin, &gw.id, &h.id, |l| {
        l.len() == 1 && l[0].status == "delivered"
    })
    .await;

    // Outcomes cannot be written (as on a full disk); events still queue.
    let mut conn = db::open(dir.path()).await;
    db::fail(&mut conn, "event_deliveries", "UPDATE").await;
    let backend = create(&mut admin, fixtures::backend(&gw.id, "kafka", "pw-123456")).await;
    let first = receiver.next().await.json();
    assert_eq!(first["entity"]["id"], backend.id.as_str());
    // Recording failed twice: the event was still sent only once.
    let failed_to_record = |l: &str| l.contains("could not record an event delivery");
    for _ in 0..400 {
        if server.count_log(failed_to_record) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        server.count_log(failed_to_record) >= 2,
        "recording was not retried"
    );
    assert!(
        receiver.try_next().is_none(),
        "the event was sent again while its outcome could not be written"
    );

    // Once the database takes writes, the delivery is recorded, not resent.
    db::heal(&mut conn, "event_deliveries", "UPDATE").await;
    wait_deliveries(&mut admin, &gw.id, &h.id, |l| {
        l.len() == 2 && l.iter().all(|d| d.status == "delivered")
    })
    .await;
    assert!(receiver.try_next().is_none(), "sent again after recording");
    drop(admin);
    server.stop();
}

#[tokio::test]
async fn finished_deliveries_are_pruned_and_pending_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let mut args = FAST_RETRIES.to_vec();
    args.extend([
        "--event-max-attempts",
        "2",
        "--event-delivery-retention",
        "1s",
    ]);
    let server = common::start_server(dir.path(), &args);
    let mut admin = server.client(Some(&token)).await;
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = create(&mut admin, fixtures::gateway("retention")).await;
    let delivered = create(&mut admin, webhook(&gw.id, "ok", &receiver.url())).await;
    let dead = create(&mut admin, webhook(&gw.id, "dead", &nobody_listens())).await;
    assert_eq!(receiver.next().await.json()["event"], "ping");
    wait_deliveries(&mut admin, &gw.id, &dead.id, |l| {
        l.len() == 1 && l[0].status == "dead"
    })
    .await;
    // A third hook's ping hangs at its receiver: pending all along.
    let hanging = Receiver::start("127.0.0.1:0", Behaviour::Hang).await;
    let mut slow = webhook(&gw.id, "pending", &hanging.url());
    if let Some(Spec::EventHook(h)) = slow.spec.as_mut() {
        h.config.as_mut().unwrap().timeout = 300;
    }
    let pending = create(&mut admin, slow).await;

    // Delivered and dead ones go once the retention has passed.
    wait_deliveries(&mut admin, &gw.id, &delivered.id, |l| l.is_empty()).await;
    wait_deliveries(&mut admin, &gw.id, &dead.id, |l| l.is_empty()).await;
    assert!(server.count_log(|l| l.contains("pruned finished event deliveries")) > 0);
    let left = deliveries(&mut admin, &gw.id, &pending.id).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, "pending");
    drop(admin);
    server.stop();
}

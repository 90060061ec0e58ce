//! An event hook's credentials stay with that hook: header values are
//! write-only secrets (fingerprints in every read, payload and log entry,
//! the real value only in the hook's own requests), and a URL's query is
//! redacted from event payloads, the revision log, delivery errors and the
//! server log.

mod common;

use common::create;

use std::collections::HashMap;
use std::time::Duration;

use common::{
    fixtures,
    receiver::{Behaviour, Receiver},
};
use prost::Message;
use sluice_proto::admin::v1::{
    Entity, EventDelivery, EventHandler, EventHook, EventHookConfig, EventSource, GetEntityRequest,
    Kind, ListEventDeliveriesRequest, ListRevisionsRequest, PingEventHookRequest, Secret,
    UpdateEntityRequest, entity::Spec,
};

const HEADER_TOKEN: &str = "Bearer header-token-4711";
const URL_TOKEN: &str = "url-token-0815";
const DEAD_URL_TOKEN: &str = "dead-url-token-2342";

fn hook(gw: &str, name: &str, url: &str, headers: &[(&str, &str)]) -> Entity {
    fixtures::entity(
        gw,
        name,
        Spec::EventHook(EventHook {
            source: EventSource::Crud as i32,
            event: String::new(),
            handler: EventHandler::Webhook as i32,
            config: Some(EventHookConfig {
                url: url.into(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            Secret {
                                value: v.to_string(),
                                fingerprint: String::new(),
                            },
                        )
                    })
                    .collect::<HashMap<_, _>>(),
                timeout: 5,
                ..Default::default()
            }),
            snooze_seconds: 0,
        }),
    )
}

fn leaks(text: &str) -> Vec<&'static str> {
    [HEADER_TOKEN, "header-token-4711", URL_TOKEN, DEAD_URL_TOKEN]
        .into_iter()
        .filter(|s| text.contains(s))
        .collect()
}

fn header_of(e: &Entity) -> Secret {
    let Some(Spec::EventHook(h)) = &e.spec else {
        panic!("not a hook")
    };
    h.config.as_ref().unwrap().headers["Authorization"].clone()
}

async fn failed_delivery(admin: &mut common::Admin, gw: &str, hook: &str) -> EventDelivery {
    for _ in 0..400 {
        let list = admin
            .list_event_deliveries(ListEventDeliveriesRequest {
                gateway_id: gw.into(),
                hook_id: hook.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deliveries;
        if let Some(d) = list.into_iter().find(|d| !d.last_error.is_empty()) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no failed attempt within 20 s");
}

#[tokio::test]
async fn webhook_headers_and_url_credentials_stay_with_their_hook() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let server = common::start_server(
        dir.path(),
        &["--event-retry-base-ms", "50", "--event-retry-max-ms", "200"],
    );
    let mut admin = server.client(Some(&token)).await;
    let mut observer = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let mut target = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = create(&mut admin, fixtures::gateway("creds")).await;
    create(&mut admin, hook(&gw.id, "observer", &observer.url(), &[])).await;
    assert_eq!(observer.next().await.json()["event"], "ping");

    let url = format!("{}?token={URL_TOKEN}", target.url());
    let h = create(
        &mut admin,
        hook(&gw.id, "target", &url, &[("Authorization", HEADER_TOKEN)]),
    )
    .await;
    // The create reply: the header as a keyed fingerprint; the owner's own
    // read keeps the whole URL (Terraform compares it).
    let header = header_of(&h);
    assert_eq!(header.value, "");
    assert!(header.fingerprint.starts_with("hmac-sha256:"), "{header:?}");
    let Some(Spec::EventHook(spec)) = &h.spec else {
        panic!()
    };
    assert_eq!(spec.config.as_ref().unwrap().url, url);

    // The hook's own requests carry the real header value.
    let ping = target.next().await;
    assert_eq!(
        ping.headers.get("authorization").map(String::as_str),
        Some(HEADER_TOKEN)
    );
    assert!(leaks(&String::from_utf8_lossy(&ping.body)).is_empty());

    // Another hook hears about this one without its credentials.
    let seen = observer.next().await;
    let body = String::from_utf8_lossy(&seen.body).to_string();
    assert!(leaks(&body).is_empty(), "{:?} in {body}", leaks(&body));
    let p = seen.json();
    assert_eq!(p["entity"]["id"], h.id.as_str());
    assert_eq!(
        p["entity"]["event_hook"]["config"]["url"],
        format!("http://{}/redacted?redacted", target.addr).as_str()
    );
    assert_eq!(
        p["entity"]["event_hook"]["config"]["headers"]["Authorization"]["fingerprint"],
        header.fingerprint.as_str()
    );

    // An update that sends the header without a value keeps it.
    let mut keep = h.clone();
    keep.description = "kept".into();
    let kept = admin
        .update_entity(UpdateEntityRequest {
            entity: Some(keep),
            expected_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(header_of(&kept).fingerprint, header.fingerprint);
    let update = observer.next().await;
    assert!(leaks(&String::from_utf8_lossy(&update.body)).is_empty());
    admin
        .ping_event_hook(PingEventHookRequest { id: h.id.clone() })
        .await
        .unwrap();
    assert_eq!(
        target
            .next()
            .await
            .headers
            .get("authorization")
            .map(String::as_str),
        Some(HEADER_TOKEN)
    );

    // Delivery errors name the URL without its query.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = create(
        &mut admin,
        hook(
            &gw.id,
            "dead",
            &format!("http://127.0.0.1:{closed}/hook?token={DEAD_URL_TOKEN}"),
            &[],
        ),
    )
    .await;
    let failed = failed_delivery(&mut admin, &gw.id, &dead.id).await;
    assert!(
        failed
            .last_error
            .contains(&format!("127.0.0.1:{closed}/redacted?redacted")),
        "{}",
        failed.last_error
    );
    assert!(
        leaks(&failed.last_error).is_empty(),
        "{}",
        failed.last_error
    );

    // Reads of the log, and the server's own log, hold none of it.
    let log = admin
        .list_revisions(ListRevisionsRequest {
            gateway_id: gw.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(log.revisions.iter().any(|r| r.entity_id == h.id));
    let bytes = log.encode_to_vec();
    assert!(leaks(&String::from_utf8_lossy(&bytes)).is_empty());
    let got = admin
        .get_entity(GetEntityRequest {
            kind: Kind::EventHook as i32,
            id: h.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(header_of(&got).value, "");
    assert_eq!(server.count_log(|l| !leaks(l).is_empty()), 0);

    // At rest, the header value is sealed.
    drop(admin);
    server.stop();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("sluice.db") {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("header-token-4711"), "{}", path.display());
        }
    }
}

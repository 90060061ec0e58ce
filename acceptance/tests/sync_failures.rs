//! What a real `sluice-proxy` does when sync goes wrong: an update it
//! cannot apply is NACKed, never applied, shown in node status and sent
//! to the `config_rejected` hook while Kafka keeps flowing on what was
//! applied before; a node whose stream stalls while more changes than the
//! server's broadcast buffer holds go by gets a snapshot and converges.

use std::time::Duration;

use sluice_acceptance::{
    clients::roundtrip,
    relay::Relay,
    server::{self, Admin, Server},
    stack::{Stack, create, start_proxy_via},
    webhook::{Behaviour, Receiver},
    workspace_bin,
};
use sluice_proto::admin::v1::{
    BackendCluster, DataPlaneNode, EventHandler, EventHook, EventHookConfig, EventSource, Gateway,
    ListDataPlaneNodesRequest, ListRevisionsRequest, TlsTrustBundle, entity::Spec,
};
use sqlx::{Connection, Executor, SqliteConnection, sqlite::SqliteConnectOptions};

const WAIT: Duration = Duration::from_secs(60);

/// The gateway's nodes once one satisfies `wanted` (polling up to `WAIT`).
async fn node_where(
    admin: &mut Admin,
    gateway: &str,
    wanted: impl Fn(&DataPlaneNode) -> bool,
) -> DataPlaneNode {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let nodes = admin
            .list_data_plane_nodes(ListDataPlaneNodesRequest {
                gateway_id: gateway.into(),
            })
            .await
            .expect("list nodes")
            .into_inner()
            .nodes;
        if let Some(node) = nodes.iter().find(|n| wanted(n)) {
            return node.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no node as wanted within {WAIT:?}: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn latest_revision(admin: &mut Admin, gateway: &str, after: i64) -> i64 {
    admin
        .list_revisions(ListRevisionsRequest {
            gateway_id: gateway.into(),
            after_revision: after,
            ..Default::default()
        })
        .await
        .expect("list revisions")
        .into_inner()
        .latest_revision
}

fn backend(address: &str) -> Spec {
    Spec::BackendCluster(BackendCluster {
        bootstrap_servers: vec![address.into()],
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_the_proxy_cannot_apply_is_nacked_reported_and_never_applied() {
    let mut stack = Stack::start(&["before-nack", "after-nack"]).await;
    let gateway = stack.gateway.id.clone();
    let mut hook_receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    create(
        &mut stack.admin,
        &gateway,
        "rejections",
        Spec::EventHook(EventHook {
            source: EventSource::Dataplane as i32,
            event: "config_rejected".into(),
            handler: EventHandler::Webhook as i32,
            config: Some(EventHookConfig {
                url: hook_receiver.url(),
                timeout: 5,
                ..Default::default()
            }),
            snooze_seconds: 0,
        }),
    )
    .await;
    let bootstrap = stack.bootstrap();
    roundtrip("confluent_roundtrip.py", &bootstrap, "before-nack", "g1");
    // The hook is no data-plane configuration: the node stays at the
    // revision of the stack's last listener change.
    let good = node_where(&mut stack.admin, &gateway, |n| n.applied_revision > 0)
        .await
        .applied_revision;

    // A store the server cannot vouch for (edited by hand, restored from
    // elsewhere): while the server is down, the backend the virtual
    // cluster routes to is deleted without its references, and the
    // deletion is in the revision log.
    let Stack {
        proxy,
        admin,
        server,
        tansu,
        backend,
        dir,
        token,
        ..
    } = stack;
    let sync_addr = server.sync_addr.clone();
    drop(admin);
    server.stop();
    let backend_id = backend.id.clone();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("sluice.db"))
        .foreign_keys(false);
    let mut db = SqliteConnection::connect_with(&options)
        .await
        .expect("open the server's database");
    db.execute(
        sqlx::query(
            "INSERT INTO revisions (gateway_id, kind, entity_id, operation, body, secrets, created_at) \
             SELECT gateway_id, kind, id, 'delete', body, '{}', 0 FROM entities WHERE id = ?",
        )
        .bind(&backend_id),
    )
    .await
    .expect("log the deletion");
    db.execute(sqlx::query("DELETE FROM entities WHERE id = ?").bind(&backend_id))
        .await
        .expect("delete the backend");
    db.close().await.expect("close the database");
    // The proxy resumes from its revision and gets the log after it.
    let server = Server::start(
        &workspace_bin("sluice-server"),
        dir.path(),
        &["--sync-listen", &sync_addr],
    );
    let mut admin = server.client(Some(&token)).await;
    let tampered = latest_revision(&mut admin, &gateway, i64::MAX).await;

    let line = proxy
        .wait_for(WAIT, |l| l.contains("rejected a config update"))
        .expect("the proxy NACKs the update");
    assert!(
        line.contains(&backend_id),
        "the reason names the backend: {line}"
    );
    let node = node_where(&mut admin, &gateway, |n| n.rejected.is_some()).await;
    let rejected = node.rejected.clone().unwrap_or_default();
    assert_eq!(rejected.revision, tampered, "{node:?}");
    assert!(
        rejected.reason.contains(&backend_id) && rejected.reason.contains("does not have"),
        "node status says why: {rejected:?}"
    );
    assert_eq!(
        node.applied_revision, good,
        "nothing after the NACK applied"
    );
    // (A new hook is pinged first.)
    let mut webhook = hook_receiver.next().await.json();
    while webhook["event"] == "ping" {
        webhook = hook_receiver.next().await.json();
    }
    assert_eq!(webhook["event"], "config_rejected", "{webhook}");
    assert!(
        webhook.to_string().contains(&backend_id),
        "the hook says why: {webhook}"
    );

    // Kafka keeps flowing on the configuration the node applied before.
    let out = roundtrip("kafka_python_roundtrip.py", &bootstrap, "after-nack", "g2");
    assert!(out.contains("\"second\": [\"after-commit\"]"), "{out}");
    assert_eq!(
        proxy.count_matching(
            |l| l.contains("applied") && l.contains(&format!("revision={tampered}"))
        ),
        0,
        "the refused revision was never applied"
    );
    proxy.terminate();
    server.stop();
    drop(tansu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stalled_past_the_broadcast_buffer_gets_a_snapshot_and_converges() {
    let server_bin = workspace_bin("sluice-server");
    let dir = tempfile::tempdir().unwrap();
    let token = server::create_token(&server_bin, dir.path());
    let server = Server::start(&server_bin, dir.path(), &[]);
    let mut admin = server.client(Some(&token)).await;
    let gateway = create(&mut admin, "", "slow", Spec::Gateway(Gateway::default())).await;
    // A snapshot of about 20 MiB: more than the session's outbound buffer,
    // HTTP/2's window and the relay's stall point together, so the session
    // blocks mid-snapshot while the relay holds the bytes.
    let pem = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap()
        .cert
        .pem();
    let bundle = pem.repeat(2_500_000 / pem.len());
    for i in 0..8 {
        create(
            &mut admin,
            &gateway.id,
            &format!("bundle-{i}"),
            Spec::TlsTrustBundle(TlsTrustBundle {
                trusted_ca: bundle.clone(),
            }),
        )
        .await;
    }
    let mut relay = Relay::start(&server.sync_addr, 2 << 20).await;
    let proxy = start_proxy_via(&relay.addr, dir.path(), "slow", &[]);
    assert!(
        relay.wait_stalled(WAIT).await,
        "the snapshot never started flowing"
    );

    // More changes than the broadcast buffer (1,024) while the stream is
    // stalled, from four clients at once.
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut admin = admin.clone();
        let gateway = gateway.id.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..275 {
                create(
                    &mut admin,
                    &gateway,
                    &format!("b-{w}-{i}"),
                    backend("127.0.0.1:9"),
                )
                .await;
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let latest = latest_revision(&mut admin, &gateway.id, i64::MAX).await;
    relay.release();

    let needle = format!("revision={latest}");
    let line = proxy
        .wait_for(WAIT, |l| {
            l.contains("applied snapshot") && l.contains(&needle)
        })
        .unwrap_or_else(|| panic!("the stalled node never converged on {latest}"));
    assert!(line.contains("upserted=1109"), "every entity: {line}");
    assert!(
        server
            .wait_for_log(WAIT, |l| l.contains("node fell behind; it gets a snapshot"))
            .is_some(),
        "the server saw the node fall behind"
    );
    node_where(&mut admin, &gateway.id, |n| n.applied_revision == latest).await;
    proxy.terminate();
    server.stop();
}

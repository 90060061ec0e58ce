//! A store written the way format 1 wrote it (unkeyed fingerprints,
//! positional paths, webhook headers in clear) comes out of a restart in
//! format 2 with every secret intact.

use prost::Message;
use sha2::{Digest, Sha256};
use sluice_proto::admin::v1::{
    BackendCluster, Entity, EventHandler, EventHook, EventHookConfig, EventSource, Gateway,
    Principal, Secret, VirtualCluster, VirtualClusterAuthentication, VirtualSaslPlain,
    entity::Spec, virtual_cluster_authentication,
};
use sqlx::Row;

use super::{LegacyConfig, LegacyEntity, LegacyHook};
use crate::{
    secrets::{self, MasterKey, Naming, SealedSecret, SealedSecrets},
    store::{Mode, Store},
};

fn unkeyed(value: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(value.as_bytes())))
}

fn secret(value: &str) -> Option<Secret> {
    Some(Secret {
        value: value.into(),
        fingerprint: String::new(),
    })
}

fn spec(gateway_id: &str, name: &str, spec: Spec) -> Entity {
    Entity {
        gateway_id: gateway_id.into(),
        name: name.into(),
        spec: Some(spec),
        ..Default::default()
    }
}

/// Rewrites a stored body and its secrets as format 1 stored them.
fn to_legacy(body: &[u8], sealed: &str, key: &MasterKey) -> (Vec<u8>, String) {
    let mut entity = Entity::decode(body).unwrap();
    let stable: SealedSecrets = serde_json::from_str(sealed).unwrap();
    secrets::open(&mut entity, &stable, key).unwrap();
    let mut headers = std::collections::HashMap::new();
    if let Some(Spec::EventHook(h)) = entity.spec.as_mut() {
        let config = h.config.as_mut().unwrap();
        for (name, value) in std::mem::take(&mut config.headers) {
            headers.insert(name, value.value);
        }
    }
    let mut legacy = SealedSecrets::new();
    secrets::for_each_secret(&mut entity, Naming::Position, |path, s| {
        let value = std::mem::take(&mut s.value);
        s.fingerprint = unkeyed(&value);
        legacy.insert(
            path.to_string(),
            SealedSecret {
                fingerprint: unkeyed(&value),
                sealed: key.seal(&value),
            },
        );
    })
    .unwrap();
    let mut bytes = entity.encode_to_vec();
    if !headers.is_empty() {
        // Field 3 of the config, merged into the body as format 1 wrote it.
        let old = LegacyEntity {
            event_hook: Some(LegacyHook {
                config: Some(LegacyConfig { headers }),
            }),
        };
        bytes.extend(old.encode_to_vec());
    }
    (bytes, serde_json::to_string(&legacy).unwrap())
}

#[tokio::test]
async fn a_format_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::random();
    let store = Store::open(dir.path(), key.clone()).await.unwrap();
    let gw = store
        .create(
            spec("", "gw", Spec::Gateway(Gateway::default())),
            Mode::Commit,
        )
        .await
        .unwrap();
    let backend = store
        .create(
            spec(
                &gw.id,
                "kafka",
                Spec::BackendCluster(BackendCluster {
                    bootstrap_servers: vec!["127.0.0.1:9092".into()],
                    ..Default::default()
                }),
            ),
            Mode::Commit,
        )
        .await
        .unwrap();
    let principal = |u: &str, p: &str| Principal {
        username: u.into(),
        password: secret(p),
        ..Default::default()
    };
    let vc = store
        .create(
            spec(
                &gw.id,
                "vc",
                Spec::VirtualCluster(VirtualCluster {
                    destination_id: backend.id.clone(),
                    dns_label: "vc".into(),
                    authentication: vec![VirtualClusterAuthentication {
                        method: Some(virtual_cluster_authentication::Method::SaslPlain(
                            VirtualSaslPlain {
                                mediation: sluice_proto::admin::v1::Mediation::Terminate as i32,
                                principals: vec![
                                    principal("alice", "alice-pw-123"),
                                    principal("bob", "bob-pw-456"),
                                ],
                            },
                        )),
                    }],
                    ..Default::default()
                }),
            ),
            Mode::Commit,
        )
        .await
        .unwrap();
    let hook = store
        .create(
            spec(
                &gw.id,
                "hook",
                Spec::EventHook(EventHook {
                    source: EventSource::Crud as i32,
                    handler: EventHandler::Webhook as i32,
                    config: Some(EventHookConfig {
                        url: "https://hooks.example.com/h?token=url-token".into(),
                        secret: secret("hook-secret-123"),
                        headers: [(
                            "Authorization".to_string(),
                            Secret {
                                value: "Bearer header-token".into(),
                                fingerprint: String::new(),
                            },
                        )]
                        .into(),
                        timeout: 5,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            ),
            Mode::Commit,
        )
        .await
        .unwrap();

    // Back to format 1: entities, the log and a queued payload.
    let pool = store.pool.clone();
    for (table, id) in [("entities", "seq"), ("revisions", "revision")] {
        let rows = sqlx::query(&format!("SELECT {id} AS n, body, secrets FROM {table}"))
            .fetch_all(&pool)
            .await
            .unwrap();
        for row in rows {
            let (body, sealed) = to_legacy(row.get("body"), row.get("secrets"), &key);
            sqlx::query(&format!(
                "UPDATE {table} SET body = ?, secrets = ? WHERE {id} = ?"
            ))
            .bind(body)
            .bind(sealed)
            .bind(row.get::<i64, _>("n"))
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    let legacy_payload = serde_json::json!({
        "entity": {"event_hook": {"config": {
            "url": "https://hooks.example.com/h?token=url-token",
            "secret": {"fingerprint": unkeyed("hook-secret-123")},
            "headers": {"Authorization": "Bearer header-token"},
        }}},
    });
    sqlx::query("UPDATE event_deliveries SET payload = ?")
        .bind(legacy_payload.to_string())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE store_meta SET value = 1 WHERE key = 'secrets_format'")
        .execute(&pool)
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(dir.path(), key.clone()).await.unwrap();
    let pool = store.pool.clone();
    let format: i64 =
        sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'secrets_format'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(format, 2);

    // Every stored fingerprint is keyed, in bodies and in sealed secrets.
    for table in ["entities", "revisions"] {
        for row in sqlx::query(&format!("SELECT body, secrets FROM {table}"))
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            let body: Vec<u8> = row.get("body");
            let sealed: String = row.get("secrets");
            assert!(!sealed.contains("\"sha256:"), "{table}: {sealed}");
            assert!(!sealed.contains("[0]"), "positional paths left: {sealed}");
            let mut entity = Entity::decode(body.as_slice()).unwrap();
            secrets::for_each_secret(&mut entity, Naming::Stable, |path, s| {
                assert!(
                    s.fingerprint.starts_with(secrets::FINGERPRINT_PREFIX),
                    "{table} {path}: {}",
                    s.fingerprint
                );
            })
            .unwrap();
            assert!(super::legacy_headers(&body).is_empty(), "headers in clear");
        }
    }

    // Secrets open under their stable paths, each principal its own.
    let (_, plain) = store.snapshot(&gw.id).await.unwrap();
    let vc = plain.iter().find(|e| e.id == vc.id).unwrap();
    let Some(Spec::VirtualCluster(v)) = &vc.spec else {
        panic!()
    };
    let Some(virtual_cluster_authentication::Method::SaslPlain(p)) =
        v.authentication[0].method.clone()
    else {
        panic!()
    };
    // (as data planes get them: hashes of each principal's own password)
    let users: Vec<(String, bool)> = p
        .principals
        .iter()
        .map(|p| {
            use argon2::{PasswordHash, PasswordVerifier};
            let own = if p.username == "alice" {
                "alice-pw-123"
            } else {
                "bob-pw-456"
            };
            let hash = PasswordHash::new(&p.password_hash).unwrap();
            let ok = argon2::Argon2::default()
                .verify_password(own.as_bytes(), &hash)
                .is_ok();
            (p.username.clone(), ok)
        })
        .collect();
    assert_eq!(users, [("alice".to_string(), true), ("bob".into(), true)]);
    let opened = store.hook_for_delivery(&hook.id).await.unwrap().unwrap();
    let config = opened.config.unwrap();
    assert_eq!(config.headers["Authorization"].value, "Bearer header-token");
    assert_eq!(config.secret.unwrap().value, "hook-secret-123");
    let read = store
        .get(sluice_proto::admin::v1::Kind::EventHook, &hook.id)
        .await
        .unwrap();
    let Some(Spec::EventHook(h)) = read.spec else {
        panic!()
    };
    let header = &h.config.unwrap().headers["Authorization"];
    assert_eq!(
        (header.value.as_str(), header.fingerprint.clone()),
        ("", key.fingerprint("Bearer header-token"))
    );

    // Queued payloads lost the header, the URL's credentials and the
    // unkeyed fingerprint.
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM event_deliveries")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!payloads.is_empty());
    for p in payloads {
        for leak in ["header-token", "url-token", "\"sha256:"] {
            assert!(!p.contains(leak), "{leak} in {p}");
        }
        assert!(p.contains(&key.fingerprint("hook-secret-123")), "{p}");
    }
}

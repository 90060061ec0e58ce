//! One-time rewrites of stored secrets, run at start after the schema
//! migrations (they need the master key, which SQL migrations do not
//! have). `store_meta.secrets_format` records how far a store is:
//!
//! 2. Fingerprints are keyed (`hmac-sha256:`, [`MasterKey::fingerprint`])
//!    instead of bare SHA-256, which anyone could test guesses against;
//!    secrets of list items are stored under stable paths (by username,
//!    certificate, method) instead of positions; an event hook's headers,
//!    held in clear in field 3 of its config, become sealed secrets. Every
//!    entity and revision row is opened the old way and sealed again the
//!    new way, and queued event payloads lose the headers and URL
//!    credentials they carried.

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use serde_json::Value;
use sluice_proto::admin::v1::{Entity, Secret, entity::Spec};
use sqlx::{Row, SqliteConnection};

use super::read;
use crate::{
    error::ApiError,
    events::redact,
    secrets::{self, FINGERPRINT_PREFIX, MasterKey, Naming, SealedSecrets},
};

/// The newest format.
const CURRENT: i64 = 2;
/// Rows read per query.
const PAGE: i64 = 500;

/// An entity as stored before format 2, read only for an event hook's
/// headers (`Entity.event_hook = 37`, `EventHook.config = 4`,
/// `EventHookConfig.headers = 3`, then a `map<string, string>`).
#[derive(Clone, PartialEq, Message)]
struct LegacyEntity {
    #[prost(message, optional, tag = "37")]
    event_hook: Option<LegacyHook>,
}

#[derive(Clone, PartialEq, Message)]
struct LegacyHook {
    #[prost(message, optional, tag = "4")]
    config: Option<LegacyConfig>,
}

#[derive(Clone, PartialEq, Message)]
struct LegacyConfig {
    #[prost(map = "string, string", tag = "3")]
    headers: HashMap<String, String>,
}

/// Brings the store's secrets to the newest format (no-op when they are).
pub(super) async fn run(pool: &sqlx::SqlitePool, key: &MasterKey) -> anyhow::Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let format: i64 =
        sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'secrets_format'")
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(1);
    if format >= CURRENT {
        return Ok(());
    }
    let mut prints = BTreeMap::new();
    let entities = rewrite(&mut tx, key, "entities", "seq", &mut prints).await?;
    let revisions = rewrite(&mut tx, key, "revisions", "revision", &mut prints).await?;
    let deliveries = scrub_payloads(&mut tx, key, &prints).await?;
    sqlx::query("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('secrets_format', ?)")
        .bind(CURRENT)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(
        entities,
        revisions,
        deliveries,
        "stored secrets upgraded: keyed fingerprints, stable paths, webhook headers sealed"
    );
    Ok(())
}

/// An event hook's headers from a body written before format 2.
fn legacy_headers(body: &[u8]) -> HashMap<String, String> {
    LegacyEntity::decode(body)
        .ok()
        .and_then(|e| e.event_hook?.config)
        .map(|c| c.headers)
        .unwrap_or_default()
}

/// Opens a row's secrets the old way and seals them the new way; returns
/// the new body and secrets, or None when the row holds no secret.
/// `prints` learns each old fingerprint's new one.
fn upgrade_row(
    body: &[u8],
    sealed_json: &str,
    key: &MasterKey,
    prints: &mut BTreeMap<String, String>,
) -> Result<Option<(Entity, SealedSecrets)>, ApiError> {
    let legacy: SealedSecrets = serde_json::from_str(sealed_json).map_err(anyhow::Error::from)?;
    let headers = legacy_headers(body);
    if legacy.is_empty() && headers.is_empty() {
        return Ok(None);
    }
    let mut entity = read::decode(body)?;
    secrets::open_named(&mut entity, &legacy, key, Naming::Position)?;
    if let Some(Spec::EventHook(hook)) = entity.spec.as_mut()
        && let Some(config) = hook.config.as_mut()
    {
        for (name, value) in headers {
            config.headers.insert(
                name,
                Secret {
                    value,
                    fingerprint: String::new(),
                },
            );
        }
    }
    let mut old_prints = HashMap::new();
    secrets::for_each_secret(&mut entity, Naming::Stable, |path, s| {
        old_prints.insert(path.to_string(), std::mem::take(&mut s.fingerprint));
    })?;
    let sealed = secrets::seal(&mut entity, &SealedSecrets::new(), key)?;
    for (path, new) in &sealed {
        if let Some(old) = old_prints.get(path).filter(|o| !o.is_empty()) {
            prints.insert(old.clone(), new.fingerprint.clone());
        }
    }
    Ok(Some((entity, sealed)))
}

/// Upgrades every row of `table` (`entities` or `revisions`, paged by
/// `order`); returns how many changed.
async fn rewrite(
    tx: &mut SqliteConnection,
    key: &MasterKey,
    table: &str,
    order: &str,
    prints: &mut BTreeMap<String, String>,
) -> Result<u64, ApiError> {
    let mut after = i64::MIN;
    let mut changed = 0;
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {order} AS n, body, secrets FROM {table} WHERE {order} > ? ORDER BY {order} LIMIT ?"
        ))
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(changed);
        };
        after = last.get("n");
        for row in &rows {
            let n: i64 = row.get("n");
            let body: Vec<u8> = row.get("body");
            if body.is_empty() {
                continue;
            }
            let Some((entity, sealed)) = upgrade_row(&body, row.get("secrets"), key, prints)?
            else {
                continue;
            };
            sqlx::query(&format!(
                "UPDATE {table} SET body = ?, secrets = ? WHERE {order} = ?"
            ))
            .bind(entity.encode_to_vec())
            .bind(serde_json::to_string(&sealed).map_err(anyhow::Error::from)?)
            .bind(n)
            .execute(&mut *tx)
            .await?;
            changed += 1;
        }
    }
}

/// Rewrites queued and kept event payloads: an event hook in them shows its
/// URL redacted and its headers as fingerprints, and an unkeyed fingerprint
/// becomes its keyed one (or empty when its secret is gone).
async fn scrub_payloads(
    tx: &mut SqliteConnection,
    key: &MasterKey,
    prints: &BTreeMap<String, String>,
) -> Result<u64, ApiError> {
    let mut after = i64::MIN;
    let mut changed = 0;
    loop {
        let rows = sqlx::query(
            "SELECT seq, payload FROM event_deliveries WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(changed);
        };
        after = last.get("seq");
        for row in &rows {
            let Ok(mut payload) = serde_json::from_str::<Value>(row.get("payload")) else {
                continue;
            };
            if scrub(&mut payload, key, prints) {
                sqlx::query("UPDATE event_deliveries SET payload = ? WHERE seq = ?")
                    .bind(payload.to_string())
                    .bind(row.get::<i64, _>("seq"))
                    .execute(&mut *tx)
                    .await?;
                changed += 1;
            }
        }
    }
}

/// Scrubs one JSON value in place; returns whether anything changed.
fn scrub(value: &mut Value, key: &MasterKey, prints: &BTreeMap<String, String>) -> bool {
    let mut changed = false;
    match value {
        Value::Object(object) => {
            // A `Secret` serializes as `{"fingerprint": "..."}` alone.
            if object.len() == 1
                && let Some(Value::String(print)) = object.get_mut("fingerprint")
                && !print.starts_with(FINGERPRINT_PREFIX)
            {
                *print = prints.get(print.as_str()).cloned().unwrap_or_default();
                return true;
            }
            if let Some(Value::Object(hook)) = object.get_mut("event_hook")
                && let Some(Value::Object(config)) = hook.get_mut("config")
            {
                if let Some(Value::String(url)) = config.get_mut("url") {
                    let shown = redact::url(url);
                    changed |= shown != *url;
                    *url = shown;
                }
                if let Some(Value::Object(headers)) = config.get_mut("headers") {
                    for header in headers.values_mut() {
                        if let Value::String(plain) = header {
                            *header = serde_json::json!({"fingerprint": key.fingerprint(plain)});
                            changed = true;
                        }
                    }
                }
            }
            for child in object.values_mut() {
                changed |= scrub(child, key, prints);
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= scrub(item, key, prints);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests;

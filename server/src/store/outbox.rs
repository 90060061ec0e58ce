//! The event outbox: events are queued in the same transaction as the
//! change that caused them and leave only when delivered or dead.

use sluice_proto::admin::v1::{Entity, EventDelivery, EventHook, Kind, entity::Spec};
use sqlx::{Row, SqliteConnection};

use super::{Store, now_millis, read};
use crate::{error::ApiError, events::Event};

/// A delivery the dispatcher may attempt now.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery's id.
    pub id: String,
    /// The event's id.
    pub event_id: String,
    /// The hook it goes to.
    pub hook_id: String,
    /// The JSON body.
    pub payload: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Delivered.
    Delivered,
    /// Failed; try again at this unix-ms time.
    Retry {
        /// Why it failed (kept as the delivery's last error).
        error: String,
        /// When to try again, unix ms.
        at: i64,
    },
    /// Failed for the last time.
    Dead {
        /// Why it failed (kept as the delivery's last error).
        error: String,
    },
}

fn ts(millis: i64) -> Option<prost_types::Timestamp> {
    (millis > 0).then(|| prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    })
}

impl Store {
    /// The event hooks of a gateway (as stored).
    pub(super) async fn hooks(
        conn: &mut SqliteConnection,
        gateway_id: &str,
    ) -> Result<Vec<Entity>, ApiError> {
        let rows =
            sqlx::query("SELECT body FROM entities WHERE kind = 'event_hook' AND gateway_id = ?")
                .bind(gateway_id)
                .fetch_all(conn)
                .await?;
        rows.iter().map(|r| read::decode(r.get("body"))).collect()
    }

    /// Queues `event` for `hook` inside the caller's transaction.
    pub(super) async fn enqueue(
        conn: &mut SqliteConnection,
        hook: &Entity,
        event: &Event,
    ) -> Result<(), ApiError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO event_deliveries (id, event_id, hook_id, gateway_id, source, event, payload, next_attempt_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&event.id)
        .bind(&hook.id)
        .bind(&hook.gateway_id)
        .bind(event.source)
        .bind(&event.event)
        .bind(event.payload.to_string())
        .bind(now)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Queues `event` for every hook of the gateway that listens to it
    /// (inside the caller's transaction); returns how many.
    pub(super) async fn enqueue_matching(
        &self,
        conn: &mut SqliteConnection,
        gateway_id: &str,
        event: &Event,
        skip_hook: Option<&str>,
    ) -> Result<usize, ApiError> {
        let mut queued = 0;
        for hook in Self::hooks(conn, gateway_id).await? {
            if Some(hook.id.as_str()) == skip_hook {
                continue;
            }
            let Some(Spec::EventHook(spec)) = &hook.spec else {
                continue;
            };
            if event.matches(spec) && self.not_snoozed(&hook.id, spec, event) {
                Self::enqueue(conn, &hook, event).await?;
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Whether a snoozed repeat should be suppressed (false) or sent; a
    /// sent one starts the hook's window again.
    fn not_snoozed(&self, hook_id: &str, hook: &EventHook, event: &Event) -> bool {
        match &event.snooze_key {
            Some(key) => self.snoozer.admit(hook_id, key, hook.snooze_seconds),
            None => true,
        }
    }

    /// Whether some hook of the gateway would take `event` now (read only).
    async fn anyone_listens(&self, gateway_id: &str, event: &Event) -> Result<bool, ApiError> {
        let mut conn = self.pool.acquire().await?;
        Ok(Self::hooks(&mut conn, gateway_id)
            .await?
            .iter()
            .any(|hook| match &hook.spec {
                Some(Spec::EventHook(spec)) => {
                    event.matches(spec)
                        && event.snooze_key.as_ref().is_none_or(|key| {
                            self.snoozer.would_admit(&hook.id, key, spec.snooze_seconds)
                        })
                }
                _ => false,
            }))
    }

    /// Queues a data-plane event for the hooks that listen to it. Most
    /// node events match no hook, or only a snoozed one: those cost a read
    /// and no write transaction.
    pub async fn emit(&self, gateway_id: &str, event: Event) -> Result<(), ApiError> {
        if !self.anyone_listens(gateway_id, &event).await? {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let queued = self
            .enqueue_matching(&mut tx, gateway_id, &event, None)
            .await?;
        tx.commit().await?;
        if queued > 0 {
            self.events_queued.notify_one();
        }
        Ok(())
    }

    /// Queues an event for one hook (ping, test); returns the delivery.
    pub async fn emit_to(
        &self,
        hook_id: &str,
        make: impl FnOnce(&Entity) -> Event,
    ) -> Result<EventDelivery, ApiError> {
        let hook = self.get(Kind::EventHook, hook_id).await?;
        let event = make(&hook);
        let mut tx = self.begin_write().await?;
        Self::enqueue(&mut tx, &hook, &event).await?;
        tx.commit().await?;
        self.events_queued.notify_one();
        let found = self.deliveries(&hook.gateway_id, hook_id, "", 1).await?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::NotFound("delivery".into()))
    }

    /// Waits until an event may have been queued.
    pub async fn events_queued(&self) {
        self.events_queued.notified().await;
    }

    /// Wakes whoever waits in [`Store::events_queued`].
    pub fn wake_dispatcher(&self) {
        self.events_queued.notify_one();
    }

    /// The oldest pending delivery of each hook whose time has come.
    pub async fn due_deliveries(&self, now: i64) -> Result<Vec<DueDelivery>, ApiError> {
        let rows = sqlx::query(
            "SELECT d.id, d.event_id, d.hook_id, d.payload, d.attempts FROM event_deliveries d \
             WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.seq = \
             (SELECT MIN(seq) FROM event_deliveries h WHERE h.hook_id = d.hook_id AND h.status = 'pending') \
             LIMIT 256",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DueDelivery {
                id: r.get("id"),
                event_id: r.get("event_id"),
                hook_id: r.get("hook_id"),
                payload: r.get("payload"),
                attempts: r.get::<i64, _>("attempts").max(0) as u32,
            })
            .collect())
    }

    /// Whether a delivery is still pending with `attempts` attempts (a list
    /// of due deliveries can be stale by the time one is attempted).
    pub async fn still_due(&self, delivery_id: &str, attempts: u32) -> Result<bool, ApiError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM event_deliveries WHERE id = ? AND status = 'pending' AND attempts = ?",
        )
        .bind(delivery_id)
        .bind(i64::from(attempts))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// When the next pending head becomes due (unix ms), if any.
    pub async fn next_due(&self) -> Result<Option<i64>, ApiError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM event_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records how an attempt ended.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        outcome: Outcome,
    ) -> Result<(), ApiError> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        let query = match &outcome {
            Outcome::Delivered => sqlx::query(
                "UPDATE event_deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error = '' WHERE id = ?",
            )
            .bind(now),
            Outcome::Retry { error, at } => sqlx::query(
                "UPDATE event_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            )
            .bind(error)
            .bind(*at),
            Outcome::Dead { error } => sqlx::query(
                "UPDATE event_deliveries SET status = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
            )
            .bind(error),
        };
        query.bind(delivery_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A hook with its secret in clear, for delivery.
    pub async fn hook_for_delivery(&self, hook_id: &str) -> Result<Option<EventHook>, ApiError> {
        let row =
            sqlx::query("SELECT body, secrets FROM entities WHERE id = ? AND kind = 'event_hook'")
                .bind(hook_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let entity = self.opened(read::decode(row.get("body"))?, row.get("secrets"))?;
        Ok(match entity.spec {
            Some(Spec::EventHook(h)) => Some(h),
            _ => None,
        })
    }

    /// Deliveries of a gateway (optionally one hook, one status), newest first.
    pub async fn deliveries(
        &self,
        gateway_id: &str,
        hook_id: &str,
        status: &str,
        page_size: u32,
    ) -> Result<Vec<EventDelivery>, ApiError> {
        let rows = sqlx::query(
            "SELECT * FROM event_deliveries WHERE gateway_id = ? AND (? = '' OR hook_id = ?) \
             AND (? = '' OR status = ?) ORDER BY seq DESC LIMIT ?",
        )
        .bind(gateway_id)
        .bind(hook_id)
        .bind(hook_id)
        .bind(status)
        .bind(status)
        .bind(i64::from(read::page_size(page_size)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| EventDelivery {
                id: r.get("id"),
                hook_id: r.get("hook_id"),
                event_id: r.get("event_id"),
                source: r.get("source"),
                event: r.get("event"),
                status: r.get("status"),
                attempts: r.get::<i64, _>("attempts").max(0) as u32,
                last_error: r.get("last_error"),
                created_at: ts(r.get("created_at")),
                next_attempt_at: ts(r.get("next_attempt_at")),
                delivered_at: ts(r.get("delivered_at")),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_proto::admin::v1::{EventHandler, EventSource, Gateway};
    use sqlx::{Connection, Executor, sqlite::SqliteConnectOptions};

    use super::*;
    use crate::{secrets::MasterKey, store::Mode};

    fn dataplane(gateway_id: &str, event: &str, key: &str) -> Event {
        Event::dataplane(gateway_id, "n1", event, key, serde_json::json!({}))
    }

    #[tokio::test]
    async fn node_events_nobody_takes_need_no_write_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), MasterKey::random()).await.unwrap();
        let gateway = store
            .create(
                Entity {
                    name: "gw".into(),
                    spec: Some(Spec::Gateway(Gateway::default())),
                    ..Default::default()
                },
                Mode::Commit,
            )
            .await
            .unwrap();
        let hook = store
            .create(
                Entity {
                    gateway_id: gateway.id.clone(),
                    name: "denials".into(),
                    spec: Some(Spec::EventHook(EventHook {
                        source: EventSource::Dataplane as i32,
                        event: "acl_denied".into(),
                        handler: EventHandler::Log as i32,
                        snooze_seconds: 3600,
                        ..Default::default()
                    })),
                    ..Default::default()
                },
                Mode::Commit,
            )
            .await
            .unwrap();
        store
            .emit(&gateway.id, dataplane(&gateway.id, "acl_denied", "alice"))
            .await
            .unwrap();

        // Another writer holds the database: whatever needs a write waits.
        let mut other = sqlx::SqliteConnection::connect_with(
            &SqliteConnectOptions::new().filename(dir.path().join(super::super::DATABASE_FILE)),
        )
        .await
        .unwrap();
        other.execute("BEGIN IMMEDIATE").await.unwrap();
        for (event, key) in [
            ("auth_failed", "bob"),   // no hook listens
            ("acl_denied", "alice"),  // snoozed
            ("node_connected", "n1"), // no hook listens
        ] {
            tokio::time::timeout(
                Duration::from_secs(3),
                store.emit(&gateway.id, dataplane(&gateway.id, event, key)),
            )
            .await
            .unwrap_or_else(|_| panic!("{event} waited for the write lock"))
            .unwrap();
        }
        other.execute("ROLLBACK").await.unwrap();

        let queued = store
            .deliveries(&gateway.id, &hook.id, "", 100)
            .await
            .unwrap();
        let events: Vec<&str> = queued.iter().map(|d| d.event.as_str()).collect();
        assert_eq!(events, ["acl_denied", "ping"], "newest first");
    }
}

//! Pruning what would otherwise grow forever: finished event deliveries
//! and data-plane nodes that left long ago.

use super::{Store, now_millis};
use crate::error::ApiError;

/// Rows deleted per transaction, so pruning never holds the write lock
/// for long.
const BATCH: i64 = 5_000;

impl Store {
    /// Deletes delivered and dead event deliveries that finished more than
    /// `older_than_ms` ago (pending ones always stay); returns how many.
    pub async fn prune_event_deliveries(&self, older_than_ms: i64) -> Result<u64, ApiError> {
        let cutoff = now_millis().saturating_sub(older_than_ms);
        // A dead delivery's last attempt was due at next_attempt_at.
        self.prune_in_batches(
            "DELETE FROM event_deliveries WHERE seq IN (SELECT seq FROM event_deliveries \
             WHERE (status = 'delivered' AND delivered_at < ?1) \
                OR (status = 'dead' AND next_attempt_at < ?1) LIMIT ?2)",
            cutoff,
        )
        .await
    }

    /// Deletes data-plane nodes disconnected and unseen for more than
    /// `older_than_ms` (a node that comes back is listed again); returns
    /// how many.
    pub async fn prune_disconnected_nodes(&self, older_than_ms: i64) -> Result<u64, ApiError> {
        let cutoff = now_millis().saturating_sub(older_than_ms);
        self.prune_in_batches(
            "DELETE FROM data_plane_nodes WHERE rowid IN (SELECT rowid FROM data_plane_nodes \
             WHERE connected = 0 AND last_seen_at < ?1 LIMIT ?2)",
            cutoff,
        )
        .await
    }

    async fn prune_in_batches(&self, delete: &str, cutoff: i64) -> Result<u64, ApiError> {
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(delete)
                .bind(cutoff)
                .bind(BATCH)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            total += done;
            if done < BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

//! Data-plane node records: what each node last reported.

use sluice_proto::admin::v1::{DataPlaneNode, NodeHopErrors, NodePolicyOutcomes, Rejected};
use sqlx::Row;

use super::Store;
use crate::error::ApiError;

/// One node's state as the sync endpoint tracks it.
#[derive(Debug, Clone, Default)]
pub struct NodeRecord {
    /// The node's id (from its hello).
    pub id: String,
    /// Its gateway (from its certificate).
    pub gateway_id: String,
    /// Host name it reported.
    pub hostname: String,
    /// Version it reported.
    pub version: String,
    /// The data_plane_certificate it authenticated with.
    pub certificate_id: String,
    /// Whether a stream is open now.
    pub connected: bool,
    /// Unix ms of the last message.
    pub last_seen_at: i64,
    /// The newest revision it ACKed.
    pub applied_revision: i64,
    /// Unix ms of that ACK.
    pub applied_at: i64,
    /// The last revision it NACKed, and why.
    pub rejected: Option<(i64, String, i64)>,
    /// Its error counts by hop.
    pub errors: Vec<NodeHopErrors>,
    /// Its record policies' outcome counts.
    pub policy_outcomes: Vec<NodePolicyOutcomes>,
}

/// Unix milliseconds of a timestamp (0 when unset).
pub fn millis(at: Option<&prost_types::Timestamp>) -> i64 {
    at.map_or(0, |t| {
        t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000)
    })
}

/// A timestamp from Unix milliseconds (unset for 0 or less).
pub fn ts(millis: i64) -> Option<prost_types::Timestamp> {
    (millis > 0).then(|| prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    })
}

impl NodeRecord {
    /// The admin API's view of the record.
    pub fn to_proto(&self) -> DataPlaneNode {
        DataPlaneNode {
            id: self.id.clone(),
            gateway_id: self.gateway_id.clone(),
            hostname: self.hostname.clone(),
            version: self.version.clone(),
            connected: self.connected,
            last_seen_at: ts(self.last_seen_at),
            applied_revision: self.applied_revision,
            applied_at: ts(self.applied_at),
            rejected: self
                .rejected
                .as_ref()
                .map(|(revision, reason, at)| Rejected {
                    revision: *revision,
                    reason: reason.clone(),
                    at: ts(*at),
                }),
            errors: self.errors.clone(),
            certificate_id: self.certificate_id.clone(),
            policy_outcomes: self.policy_outcomes.clone(),
        }
    }
}

impl Store {
    /// Writes node records (one transaction for the batch).
    pub async fn save_nodes(&self, records: &[NodeRecord]) -> Result<(), ApiError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for n in records {
            let errors: Vec<serde_json::Value> = n
                .errors
                .iter()
                .map(|e| {
                    serde_json::json!({"hop": e.hop, "entity": e.entity, "kind": e.kind,
                                       "count": e.count, "last_message": e.last_message,
                                       "detail": e.detail, "last_at_ms": millis(e.last_at.as_ref())})
                })
                .collect();
            let outcomes: Vec<serde_json::Value> = n
                .policy_outcomes
                .iter()
                .map(|o| {
                    serde_json::json!({"policy_id": o.policy_id, "outcome": o.outcome,
                                       "shadow": o.shadow, "count": o.count,
                                       "last_message": o.last_message})
                })
                .collect();
            let (rejected_revision, rejected_reason, rejected_at) =
                n.rejected.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO data_plane_nodes (id, gateway_id, hostname, version, certificate_id, connected, \
                 last_seen_at, applied_revision, applied_at, rejected_revision, rejected_reason, rejected_at, errors, policy_outcomes) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (gateway_id, id) DO UPDATE SET hostname = excluded.hostname, version = excluded.version, \
                 certificate_id = excluded.certificate_id, connected = excluded.connected, \
                 last_seen_at = excluded.last_seen_at, applied_revision = excluded.applied_revision, \
                 applied_at = excluded.applied_at, rejected_revision = excluded.rejected_revision, \
                 rejected_reason = excluded.rejected_reason, rejected_at = excluded.rejected_at, errors = excluded.errors, \
                 policy_outcomes = excluded.policy_outcomes",
            )
            .bind(&n.id)
            .bind(&n.gateway_id)
            .bind(&n.hostname)
            .bind(&n.version)
            .bind(&n.certificate_id)
            .bind(n.connected)
            .bind(n.last_seen_at)
            .bind(n.applied_revision)
            .bind(n.applied_at)
            .bind(rejected_revision)
            .bind(rejected_reason)
            .bind(rejected_at)
            .bind(serde_json::Value::Array(errors).to_string())
            .bind(serde_json::Value::Array(outcomes).to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored record of one node.
    pub async fn load_node(
        &self,
        gateway_id: &str,
        id: &str,
    ) -> Result<Option<NodeRecord>, ApiError> {
        let rows = sqlx::query("SELECT * FROM data_plane_nodes WHERE gateway_id = ? AND id = ?")
            .bind(gateway_id)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(records(&rows).into_iter().next())
    }

    /// The stored records of a gateway's nodes.
    pub async fn load_nodes(&self, gateway_id: &str) -> Result<Vec<NodeRecord>, ApiError> {
        let rows = sqlx::query("SELECT * FROM data_plane_nodes WHERE gateway_id = ? ORDER BY id")
            .bind(gateway_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(records(&rows))
    }

    /// Forgets a node; returns whether it existed.
    pub async fn delete_node(&self, gateway_id: &str, id: &str) -> Result<bool, ApiError> {
        let done = sqlx::query("DELETE FROM data_plane_nodes WHERE gateway_id = ? AND id = ?")
            .bind(gateway_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets every node record of a gateway (deleted).
    pub async fn forget_nodes(&self, gateway_id: &str) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM data_plane_nodes WHERE gateway_id = ?")
            .bind(gateway_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks every node disconnected (at start: no stream survives a restart).
    pub async fn mark_all_nodes_disconnected(&self) -> Result<(), ApiError> {
        sqlx::query("UPDATE data_plane_nodes SET connected = 0")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Node records from `data_plane_nodes` rows.
fn records(rows: &[sqlx::sqlite::SqliteRow]) -> Vec<NodeRecord> {
    rows.iter()
        .map(|r| {
            let errors: Vec<serde_json::Value> =
                serde_json::from_str(r.get("errors")).unwrap_or_default();
            let outcomes: Vec<serde_json::Value> =
                serde_json::from_str(r.get("policy_outcomes")).unwrap_or_default();
            let rejected_revision: i64 = r.get("rejected_revision");
            NodeRecord {
                id: r.get("id"),
                gateway_id: r.get("gateway_id"),
                hostname: r.get("hostname"),
                version: r.get("version"),
                certificate_id: r.get("certificate_id"),
                connected: r.get("connected"),
                last_seen_at: r.get("last_seen_at"),
                applied_revision: r.get("applied_revision"),
                applied_at: r.get("applied_at"),
                rejected: (rejected_revision > 0).then(|| {
                    (
                        rejected_revision,
                        r.get("rejected_reason"),
                        r.get("rejected_at"),
                    )
                }),
                errors: errors
                    .iter()
                    .map(|e| NodeHopErrors {
                        hop: e["hop"].as_str().unwrap_or_default().into(),
                        entity: e["entity"].as_str().unwrap_or_default().into(),
                        kind: e["kind"].as_str().unwrap_or_default().into(),
                        count: e["count"].as_u64().unwrap_or_default(),
                        last_message: e["last_message"].as_str().unwrap_or_default().into(),
                        detail: e["detail"].as_str().unwrap_or_default().into(),
                        last_at: ts(e["last_at_ms"].as_i64().unwrap_or_default()),
                    })
                    .collect(),
                policy_outcomes: outcomes
                    .iter()
                    .map(|o| NodePolicyOutcomes {
                        policy_id: o["policy_id"].as_str().unwrap_or_default().into(),
                        outcome: o["outcome"].as_str().unwrap_or_default().into(),
                        shadow: o["shadow"].as_bool().unwrap_or_default(),
                        count: o["count"].as_u64().unwrap_or_default(),
                        last_message: o["last_message"].as_str().unwrap_or_default().into(),
                    })
                    .collect(),
            }
        })
        .collect()
}

//! What the data-plane side needs from the store: certificate authorities,
//! node certificates, snapshots, deltas from the revision log, compaction.

use std::{collections::BTreeMap, sync::Arc};

use anyhow::Context;
use rustls::pki_types::CertificateDer;
use sluice_proto::admin::v1::{DataPlaneCertificate, Entity, Kind, entity::Spec};
use sqlx::{Row, SqliteConnection};

use super::{Store, read};
use crate::{
    error::ApiError,
    pki::{self, Authority, Usage},
    secrets::{self, SealedSecrets},
};

/// Name of the control plane's own CA.
const CONTROL_PLANE_CA: &str = "control-plane";

/// Changes of a gateway after some revision, one entry per entity (the
/// last change wins).
#[derive(Debug, Default)]
pub struct Delta {
    /// The newest revision covered.
    pub revision: i64,
    /// Entities created or changed (secrets in clear).
    pub upserted: Vec<Entity>,
    /// Entities deleted.
    pub removed: Vec<(Kind, String)>,
}

fn gateway_ca_name(gateway_id: &str) -> String {
    format!("gateway:{gateway_id}")
}

impl Store {
    /// Loads the CA called `name`, creating it (inside `conn`'s transaction)
    /// when missing. Returns it and whether it is new.
    async fn authority(
        &self,
        conn: &mut SqliteConnection,
        name: &str,
        common_name: &str,
    ) -> Result<(Authority, bool), ApiError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT cert_pem, key_sealed FROM certificate_authorities WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((cert_pem, sealed)) = row {
            let key_pem = self
                .key
                .open(&sealed)
                .with_context(|| format!("CA {name}"))?;
            return Ok((Authority { cert_pem, key_pem }, false));
        }
        let ca = Authority::generate(common_name)?;
        sqlx::query(
            "INSERT INTO certificate_authorities (name, cert_pem, key_sealed) VALUES (?, ?, ?)",
        )
        .bind(name)
        .bind(&ca.cert_pem)
        .bind(self.key.seal(&ca.key_pem))
        .execute(&mut *conn)
        .await?;
        Ok((ca, true))
    }

    /// The control plane's CA (signs the sync endpoint's certificate; data
    /// planes trust it as `ca.crt`).
    pub async fn control_plane_ca(&self) -> Result<Authority, ApiError> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let (ca, _) = self
            .authority(&mut tx, CONTROL_PLANE_CA, "Sluice control plane CA")
            .await?;
        tx.commit().await?;
        Ok(ca)
    }

    /// Signs (or generates) a data-plane certificate inside a create
    /// transaction: fills `certificate`, `fingerprint`, `expires_at` and,
    /// for a generated one, `private_key` (returned once, never stored).
    pub(super) async fn issue_data_plane_certificate(
        &self,
        conn: &mut SqliteConnection,
        entity: &mut Entity,
    ) -> Result<(), ApiError> {
        let (ca, _) = self
            .authority(
                conn,
                &gateway_ca_name(&entity.gateway_id),
                &format!("Sluice gateway {} CA", entity.gateway_id),
            )
            .await?;
        let name = entity.name.clone();
        let Some(Spec::DataPlaneCertificate(dp)) = entity.spec.as_mut() else {
            return Ok(());
        };
        let issued = if dp.generated {
            ca.issue(&name, Usage::Client, &[])?
        } else {
            ca.sign_csr(&dp.csr, &name)
                .map_err(|e| ApiError::invalid("data_plane_certificate", "csr", &e))?
        };
        *dp = DataPlaneCertificate {
            certificate: issued.cert_pem,
            generated: dp.generated,
            csr: std::mem::take(&mut dp.csr),
            private_key: issued.key_pem.unwrap_or_default(),
            fingerprint: issued.fingerprint,
            expires_at: Some(issued.expires_at.into()),
        };
        Ok(())
    }

    /// The PEM of a gateway's CA, if it has one yet.
    pub async fn gateway_ca_pem(&self, gateway_id: &str) -> Result<Option<String>, ApiError> {
        Ok(
            sqlx::query_scalar("SELECT cert_pem FROM certificate_authorities WHERE name = ?")
                .bind(gateway_ca_name(gateway_id))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every gateway CA certificate: the roots the sync endpoint trusts.
    /// Kept in memory and reloaded after a write that may add one.
    pub fn gateway_ca_roots(&self) -> Arc<Vec<CertificateDer<'static>>> {
        self.roots.read().map(|r| r.clone()).unwrap_or_default()
    }

    /// Reloads [`Store::gateway_ca_roots`] from the database.
    pub async fn reload_roots(&self) -> anyhow::Result<()> {
        let pems: Vec<String> = sqlx::query_scalar(
            "SELECT cert_pem FROM certificate_authorities WHERE name LIKE 'gateway:%'",
        )
        .fetch_all(&self.pool)
        .await?;
        let roots = pems
            .iter()
            .map(|p| pki::first_cert_der(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Ok(mut current) = self.roots.write() {
            *current = Arc::new(roots);
        }
        Ok(())
    }

    /// The data_plane_certificate with this fingerprint: (id, gateway id).
    pub async fn certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<(String, String)>, ApiError> {
        Ok(sqlx::query_as(
            "SELECT id, gateway_id FROM entities WHERE fingerprint = ? AND kind = 'data_plane_certificate'",
        )
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether the data_plane_certificate `id` of `gateway_id` is still
    /// live (revoking one deletes it).
    pub async fn certificate_is_live(&self, gateway_id: &str, id: &str) -> Result<bool, ApiError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM entities WHERE id = ? AND gateway_id = ? AND kind = 'data_plane_certificate'",
        )
        .bind(id)
        .bind(gateway_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Which of the data_plane_certificates `ids` still exist.
    pub async fn live_certificates(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, ApiError> {
        let mut live = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT id FROM entities WHERE kind = 'data_plane_certificate' AND id IN ({marks})"
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            live.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(live)
    }

    /// Every data-plane entity of a gateway with secrets in clear, and the
    /// revision they are at, read in one consistent transaction.
    pub async fn snapshot(&self, gateway_id: &str) -> Result<(i64, Vec<Entity>), ApiError> {
        let mut tx = self.pool.begin().await?;
        let revision: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(revision), 0) FROM revisions WHERE gateway_id = ?",
        )
        .bind(gateway_id)
        .fetch_one(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT body, secrets FROM entities WHERE gateway_id = ? OR id = ? ORDER BY seq",
        )
        .bind(gateway_id)
        .bind(gateway_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut entities = Vec::with_capacity(rows.len());
        for row in rows {
            let entity = read::decode(row.get("body"))?;
            if entity.kind().is_data_plane_config() {
                entities.push(self.opened(entity, row.get("secrets"))?);
            }
        }
        Ok((revision, self.for_data_planes(entities).await?))
    }

    /// What data planes get of opened entities: principal passwords as
    /// argon2id hashes (computed off the runtime: they are slow on purpose).
    async fn for_data_planes(&self, mut entities: Vec<Entity>) -> Result<Vec<Entity>, ApiError> {
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || {
            for entity in &mut entities {
                secrets::hashed::hash_principals(entity, &key)?;
            }
            Ok::<_, anyhow::Error>(entities)
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::from)
    }

    /// Puts the plain secret values back into a stored entity.
    pub(super) fn opened(&self, mut entity: Entity, sealed_json: &str) -> Result<Entity, ApiError> {
        let sealed: SealedSecrets =
            serde_json::from_str(sealed_json).map_err(anyhow::Error::from)?;
        if !sealed.is_empty() {
            secrets::open(&mut entity, &sealed, &self.key)?;
        }
        Ok(entity)
    }

    /// The changes of a gateway after `after`, coalesced per entity; `None`
    /// when the log no longer reaches back that far (send a snapshot).
    pub async fn changes_since(
        &self,
        gateway_id: &str,
        after: i64,
    ) -> Result<Option<Delta>, ApiError> {
        let mut tx = self.pool.begin().await?;
        let compacted: i64 =
            sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'compacted_through'")
                .fetch_one(&mut *tx)
                .await?;
        if after < compacted {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT revision, kind, entity_id, operation, body, secrets FROM revisions \
             WHERE gateway_id = ? AND revision > ? ORDER BY revision",
        )
        .bind(gateway_id)
        .bind(after)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut last: BTreeMap<String, (i64, Option<Entity>, Kind)> = BTreeMap::new();
        let mut delta = Delta {
            revision: after,
            ..Default::default()
        };
        for row in &rows {
            let revision: i64 = row.get("revision");
            delta.revision = revision;
            let kind = Kind::from_slug(row.get("kind")).unwrap_or(Kind::Unspecified);
            if !kind.is_data_plane_config() {
                continue;
            }
            let entity = match row.get::<&str, _>("operation") {
                "delete" => None,
                _ => Some(self.opened(read::decode(row.get("body"))?, row.get("secrets"))?),
            };
            last.insert(row.get("entity_id"), (revision, entity, kind));
        }
        let mut ordered: Vec<_> = last.into_iter().collect();
        ordered.sort_by_key(|(_, (revision, _, _))| *revision);
        for (id, (_, entity, kind)) in ordered {
            match entity {
                Some(e) => delta.upserted.push(e),
                None => delta.removed.push((kind, id)),
            }
        }
        delta.upserted = self.for_data_planes(delta.upserted).await?;
        Ok(Some(delta))
    }

    /// Drops log entries beyond the newest `keep` (inside a write).
    pub(super) async fn compact(
        &self,
        conn: &mut SqliteConnection,
        revision: i64,
    ) -> Result<(), ApiError> {
        let Some(keep) = self.keep_revisions else {
            return Ok(());
        };
        let through = revision - keep;
        if through <= 0 {
            return Ok(());
        }
        sqlx::query("DELETE FROM revisions WHERE revision <= ?")
            .bind(through)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE store_meta SET value = MAX(value, ?) WHERE key = 'compacted_through'")
            .bind(through)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

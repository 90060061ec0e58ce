//! Writes: create, update and delete, each one transaction that appends to
//! the revision log. A dry run does all of it and rolls back, so `Validate`
//! returns exactly the errors the real write would.

use prost::Message;
use sluice_proto::admin::v1::{Entity, Kind, entity::Spec};
use sqlx::{Row, SqliteConnection};

use super::{Store, now_millis, read};
use crate::{
    error::{ApiError, Violations},
    events::Event,
    hub::{Change, ChangeOp},
    secrets::{self, SealedSecrets},
    validate::{
        self, defaults,
        references::{self, Reference},
    },
};

/// Whether a write is kept or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Commit the write.
    Commit,
    /// Check everything, then roll back.
    DryRun,
}

/// An entity row as stored.
struct Stored {
    kind: String,
    revision: i64,
    entity: Entity,
    secrets: SealedSecrets,
}

async fn load(conn: &mut SqliteConnection, id: &str) -> Result<Option<Stored>, ApiError> {
    let row = sqlx::query("SELECT kind, revision, body, secrets FROM entities WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let secrets: SealedSecrets = serde_json::from_str(row.get("secrets"))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt secrets of {id}: {e}")))?;
    Ok(Some(Stored {
        kind: row.get("kind"),
        revision: row.get("revision"),
        entity: read::decode(row.get("body"))?,
        secrets,
    }))
}

/// Loads an entity that must exist and be of `kind`, checking the caller's
/// expected revision.
async fn load_expected(
    conn: &mut SqliteConnection,
    kind: Kind,
    id: &str,
    expected_revision: i64,
) -> Result<Stored, ApiError> {
    let stored = match load(conn, id).await? {
        Some(s) if s.kind == kind.slug() => s,
        Some(s) => {
            return Err(ApiError::NotFound(format!(
                "no {} with id {id:?} (that id is a {})",
                kind.slug(),
                s.kind
            )));
        }
        None => {
            return Err(ApiError::NotFound(format!(
                "no {} with id {id:?}",
                kind.slug()
            )));
        }
    };
    if expected_revision != 0 && expected_revision != stored.revision {
        return Err(ApiError::Aborted(format!(
            "{} {id:?} is at revision {}, not the expected {expected_revision}: it changed since \
             it was read; read it again and retry",
            kind.slug(),
            stored.revision
        )));
    }
    Ok(stored)
}

/// The gateway a change is logged under (a gateway's own id for a gateway).
fn log_gateway(entity: &Entity) -> &str {
    if entity.kind() == Kind::Gateway {
        &entity.id
    } else {
        &entity.gateway_id
    }
}

/// Appends to the revision log and returns the new revision. The body is
/// written after the entity knows its revision.
async fn append_revision(
    conn: &mut SqliteConnection,
    entity: &Entity,
    operation: &str,
    sealed: &SealedSecrets,
) -> Result<i64, ApiError> {
    let revision = sqlx::query(
        "INSERT INTO revisions (gateway_id, kind, entity_id, operation, body, secrets, created_at) \
         VALUES (?, ?, ?, ?, x'', ?, ?)",
    )
    .bind(log_gateway(entity))
    .bind(entity.kind().slug())
    .bind(&entity.id)
    .bind(operation)
    .bind(serde_json::to_string(sealed).map_err(anyhow::Error::from)?)
    .bind(now_millis())
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    Ok(revision)
}

async fn set_revision_body(
    conn: &mut SqliteConnection,
    revision: i64,
    entity: &Entity,
) -> Result<(), ApiError> {
    sqlx::query("UPDATE revisions SET body = ? WHERE revision = ?")
        .bind(entity.encode_to_vec())
        .bind(revision)
        .execute(conn)
        .await?;
    Ok(())
}

async fn write_refs(
    conn: &mut SqliteConnection,
    id: &str,
    refs: &[Reference],
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM entity_refs WHERE from_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for r in refs {
        sqlx::query("INSERT INTO entity_refs (from_id, field, to_id) VALUES (?, ?, ?)")
            .bind(id)
            .bind(&r.field)
            .bind(&r.target)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Checks what needs the database: references resolve to entities of the
/// right kind in the same gateway, the name is free in its scope, and the
/// kind's own cross-entity rules hold.
async fn check_against_store(
    conn: &mut SqliteConnection,
    entity: &Entity,
    kind: Kind,
    mut v: Violations,
) -> Result<Vec<Reference>, ApiError> {
    let refs = references::references(entity);
    for r in &refs {
        if r.target == entity.id {
            v.add(&r.field, "an entity cannot refer to itself");
            continue;
        }
        let row = sqlx::query("SELECT kind, gateway_id, scope_id FROM entities WHERE id = ?")
            .bind(&r.target)
            .fetch_optional(&mut *conn)
            .await?;
        let wanted = r
            .kinds
            .iter()
            .map(|k| k.slug())
            .collect::<Vec<_>>()
            .join(" or ");
        let Some(row) = row else {
            v.add(&r.field, format!("no {wanted} with id {:?}", r.target));
            continue;
        };
        let target_kind: String = row.get("kind");
        let target_gateway: Option<String> = row.get("gateway_id");
        if !r.kinds.iter().any(|k| k.slug() == target_kind) {
            v.add(
                &r.field,
                format!("{:?} is a {target_kind}, not a {wanted}", r.target),
            );
        } else if target_kind != "gateway" && target_gateway.as_deref() != Some(&entity.gateway_id)
        {
            v.add(
                &r.field,
                format!("{wanted} {:?} belongs to another gateway", r.target),
            );
        } else if r.field == "parent_policy_id" {
            let scope: String = row.get("scope_id");
            let own = entity
                .spec
                .as_ref()
                .and_then(Spec::policy)
                .map(|p| p.virtual_cluster_id);
            if Some(scope.as_str()) != own {
                v.add(
                    &r.field,
                    "the parent policy belongs to another virtual cluster",
                );
            }
        }
    }
    let (scope, family) = references::name_scope(entity);
    let clash: Option<(String, String)> = sqlx::query_as(
        "SELECT id, kind FROM entities WHERE scope_id = ? AND name_family = ? AND name = ? AND id != ?",
    )
    .bind(&scope)
    .bind(family)
    .bind(&entity.name)
    .bind(&entity.id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((id, other)) = clash {
        v.add(
            "name",
            format!("{other} {id:?} already has the name {:?} here", entity.name),
        );
    }
    if let Some(Spec::ListenerPolicyTlsServer(t)) = &entity.spec {
        let other: Option<String> = sqlx::query_scalar(
            "SELECT id FROM entities WHERE kind = 'listener_policy_tls_server' AND scope_id = ? AND id != ?",
        )
        .bind(&t.listener_id)
        .bind(&entity.id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(other) = other {
            v.add(
                "listener_id",
                format!(
                    "listener already has a tls_server policy ({other:?}); at most one is allowed"
                ),
            );
        }
    }
    super::ports::check(conn, entity, &mut v).await?;
    v.into_result(kind.slug())?;
    Ok(refs)
}

/// The entity as stored (a generated private key removed) and, for a
/// data-plane certificate, its fingerprint.
fn without_private_key(entity: &Entity) -> (Entity, Option<String>) {
    let mut stored = entity.clone();
    let mut fingerprint = None;
    if let Some(Spec::DataPlaneCertificate(dp)) = stored.spec.as_mut() {
        dp.private_key.clear();
        fingerprint = Some(dp.fingerprint.clone());
    }
    (stored, fingerprint)
}

impl Store {
    /// Creates an entity; returns it as stored.
    pub async fn create(&self, mut entity: Entity, mode: Mode) -> Result<Entity, ApiError> {
        entity.id = uuid::Uuid::new_v4().to_string();
        defaults::clear_output_only(&mut entity)?;
        defaults::apply(&mut entity);
        secrets::carry_over(&mut entity, &SealedSecrets::new(), &self.key)?;
        let mut v = Violations::default();
        let kind = validate::check(&entity, &mut v)?;
        let _guard = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let refs = check_against_store(&mut tx, &entity, kind, v).await?;
        if kind == Kind::DataPlaneCertificate {
            self.issue_data_plane_certificate(&mut tx, &mut entity)
                .await?;
        }
        let sealed = secrets::seal(&mut entity, &SealedSecrets::new(), &self.key)?;
        let now = prost_types::Timestamp::from(std::time::SystemTime::now());
        entity.created_at = Some(now);
        entity.updated_at = Some(now);
        let revision = append_revision(&mut tx, &entity, "create", &sealed).await?;
        entity.revision = revision;
        // A generated private key is returned once, never stored.
        let (stored, fingerprint) = without_private_key(&entity);
        set_revision_body(&mut tx, revision, &stored).await?;
        let (scope, family) = references::name_scope(&entity);
        sqlx::query(
            "INSERT INTO entities (id, kind, gateway_id, scope_id, name_family, name, revision, body, secrets, fingerprint) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&entity.id)
        .bind(kind.slug())
        .bind((kind != Kind::Gateway).then_some(&entity.gateway_id))
        .bind(scope)
        .bind(family)
        .bind(&entity.name)
        .bind(revision)
        .bind(stored.encode_to_vec())
        .bind(serde_json::to_string(&sealed).map_err(anyhow::Error::from)?)
        .bind(fingerprint)
        .execute(&mut *tx)
        .await?;
        write_refs(&mut tx, &entity.id, &refs).await?;
        let gateway = log_gateway(&stored).to_string();
        let event = Event::crud("create", &gateway, revision, None, Some(&stored));
        let own = (kind == Kind::EventHook).then_some(stored.id.as_str());
        let mut queued = self
            .enqueue_matching(&mut tx, &gateway, &event, own)
            .await?;
        if kind == Kind::EventHook {
            // A new hook hears a ping at once.
            Self::enqueue(&mut tx, &stored, &Event::ping(&stored)).await?;
            queued += 1;
        }
        read::decorate(&mut tx, &mut entity).await?;
        let change = self.upsert_change(&stored, &sealed)?;
        self.finish(tx, mode, change, queued > 0).await?;
        Ok(entity)
    }

    /// Replaces an entity's fields; `expected_revision` (when non-zero)
    /// must be its current revision.
    pub async fn update(
        &self,
        mut entity: Entity,
        expected_revision: i64,
        mode: Mode,
    ) -> Result<Entity, ApiError> {
        let kind = entity.kind();
        if kind == Kind::Unspecified {
            validate::check(&entity, &mut Violations::default())?;
        }
        let _guard = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let stored = load_expected(&mut tx, kind, &entity.id, expected_revision).await?;
        if entity.gateway_id.is_empty() {
            entity.gateway_id.clone_from(&stored.entity.gateway_id);
        }
        defaults::apply(&mut entity);
        secrets::carry_over(&mut entity, &stored.secrets, &self.key)?;
        let mut v = Violations::default();
        validate::declared::immutable(&stored.entity, &entity, kind, &mut v)?;
        if kind == Kind::DataPlaneCertificate {
            // Only name, description and labels of a certificate change.
            entity.spec.clone_from(&stored.entity.spec);
        }
        validate::check(&entity, &mut v)?;
        let refs = check_against_store(&mut tx, &entity, kind, v).await?;
        let sealed = secrets::seal(&mut entity, &stored.secrets, &self.key)?;
        entity.created_at = stored.entity.created_at;
        entity.updated_at = Some(prost_types::Timestamp::from(std::time::SystemTime::now()));
        let revision = append_revision(&mut tx, &entity, "update", &sealed).await?;
        entity.revision = revision;
        set_revision_body(&mut tx, revision, &entity).await?;
        let (scope, family) = references::name_scope(&entity);
        sqlx::query(
            "UPDATE entities SET scope_id = ?, name_family = ?, name = ?, revision = ?, body = ?, secrets = ? \
             WHERE id = ?",
        )
        .bind(scope)
        .bind(family)
        .bind(&entity.name)
        .bind(revision)
        .bind(entity.encode_to_vec())
        .bind(serde_json::to_string(&sealed).map_err(anyhow::Error::from)?)
        .bind(&entity.id)
        .execute(&mut *tx)
        .await?;
        write_refs(&mut tx, &entity.id, &refs).await?;
        let gateway = log_gateway(&entity).to_string();
        let event = Event::crud(
            "update",
            &gateway,
            revision,
            Some(&stored.entity),
            Some(&entity),
        );
        let queued = self
            .enqueue_matching(&mut tx, &gateway, &event, None)
            .await?;
        read::decorate(&mut tx, &mut entity).await?;
        let change = self.upsert_change(&entity, &sealed)?;
        self.finish(tx, mode, change, queued > 0).await?;
        Ok(entity)
    }

    /// Deletes an entity nothing refers to; returns the revision that
    /// recorded the delete.
    pub async fn delete(
        &self,
        kind: Kind,
        id: &str,
        expected_revision: i64,
        mode: Mode,
    ) -> Result<i64, ApiError> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let stored = load_expected(&mut tx, kind, id, expected_revision).await?;
        let referrers: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT e.kind, e.name, e.id, r.field FROM entity_refs r JOIN entities e ON e.id = r.from_id \
             WHERE r.to_id = ? ORDER BY e.seq LIMIT 6",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if !referrers.is_empty() {
            let list = referrers
                .iter()
                .take(5)
                .map(|(k, n, i, f)| format!("{k} {n:?} ({i}) through {f}"))
                .collect::<Vec<_>>()
                .join(", ");
            let more = if referrers.len() > 5 { " and more" } else { "" };
            return Err(ApiError::FailedPrecondition(format!(
                "cannot delete {} {:?} ({id}): still referenced by {list}{more}; delete or change those first",
                kind.slug(),
                stored.entity.name
            )));
        }
        let revision = append_revision(&mut tx, &stored.entity, "delete", &stored.secrets).await?;
        set_revision_body(&mut tx, revision, &stored.entity).await?;
        let gateway = log_gateway(&stored.entity).to_string();
        let event = Event::crud("delete", &gateway, revision, Some(&stored.entity), None);
        let queued = self
            .enqueue_matching(&mut tx, &gateway, &event, Some(id))
            .await?;
        sqlx::query("DELETE FROM entities WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            gateway_id: log_gateway(&stored.entity).to_string(),
            revision,
            op: ChangeOp::Remove(kind, id.to_string()),
        };
        self.finish(tx, mode, change, queued > 0).await?;
        Ok(revision)
    }

    /// The change data planes see for a created or updated entity: the
    /// stored entity with its secrets in clear.
    fn upsert_change(&self, entity: &Entity, sealed: &SealedSecrets) -> Result<Change, ApiError> {
        let mut plain = entity.clone();
        if entity.kind().is_data_plane_config() && !sealed.is_empty() {
            secrets::open(&mut plain, sealed, &self.key)?;
        }
        Ok(Change {
            gateway_id: log_gateway(entity).to_string(),
            revision: entity.revision,
            op: ChangeOp::Upsert(Box::new(plain)),
        })
    }

    /// Compacts the log, then commits (publishing the change to the sync
    /// streams) or rolls back.
    async fn finish(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Sqlite>,
        mode: Mode,
        change: Change,
        events_queued: bool,
    ) -> Result<(), ApiError> {
        match mode {
            Mode::DryRun => tx.rollback().await?,
            Mode::Commit => {
                self.compact(&mut tx, change.revision).await?;
                tx.commit().await?;
                let revision = change.revision;
                let new_certificate = matches!(&change.op, ChangeOp::Upsert(e) if e.kind() == Kind::DataPlaneCertificate);
                self.hub.publish(change);
                self.committed.send_replace(revision);
                if events_queued {
                    self.events_queued.notify_one();
                }
                if new_certificate {
                    self.reload_roots().await?;
                }
            }
        }
        Ok(())
    }
}

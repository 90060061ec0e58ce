//! Writes: create and update (delete: `delete.rs`), each one transaction
//! that appends to the revision log. A dry run does all of it and rolls
//! back, so `Validate` returns exactly the errors the real write would
//! (but for one it warns about instead, see `checks`); with fields not
//! known yet it stops after the checks.

use prost::Message;
use sluice_proto::admin::v1::{Entity, Kind, ValidateWarning, entity::Spec};
use sqlx::{Row, SqliteConnection};

use super::{Store, checks, now_millis, read};
use crate::{
    error::{ApiError, Violations},
    events::Event,
    hub::{Change, ChangeOp},
    secrets::{self, SealedSecrets},
    validate::{
        self, defaults,
        known::Known,
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
pub(super) struct Stored {
    /// Its kind's slug.
    pub(super) kind: String,
    /// Its last revision.
    pub(super) revision: i64,
    /// The entity (secrets as fingerprints).
    pub(super) entity: Entity,
    /// Its sealed secrets.
    pub(super) secrets: SealedSecrets,
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
pub(super) async fn load_expected(
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
pub(super) fn log_gateway(entity: &Entity) -> &str {
    if entity.kind() == Kind::Gateway {
        &entity.id
    } else {
        &entity.gateway_id
    }
}

/// Appends to the revision log and returns the new revision. The body is
/// written after the entity knows its revision.
pub(super) async fn append_revision(
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

pub(super) async fn set_revision_body(
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
    pub async fn create(&self, entity: Entity, mode: Mode) -> Result<Entity, ApiError> {
        let (entity, _) = self
            .create_known(entity, mode, &Known::everything(), None)
            .await?;
        Ok(entity)
    }

    /// `Validate` of a create: a dry run; with fields not known yet, the
    /// checks that can be judged and the entity as far as it is known,
    /// without a write (nothing is even attempted). A create that
    /// `replaces` an entity is judged as if that entity were gone. Also
    /// returns what the store's checks warn about (see `checks`).
    pub async fn validate_create(
        &self,
        entity: Entity,
        known: &Known,
        replaces: Option<&str>,
    ) -> Result<(Entity, Vec<ValidateWarning>), ApiError> {
        self.create_known(entity, Mode::DryRun, known, replaces)
            .await
    }

    async fn create_known(
        &self,
        mut entity: Entity,
        mode: Mode,
        known: &Known,
        replaces: Option<&str>,
    ) -> Result<(Entity, Vec<ValidateWarning>), ApiError> {
        entity.id = uuid::Uuid::new_v4().to_string();
        if let Some(replaced) = replaces {
            // The checks against the store skip the entity's own id: with
            // the replaced entity's, its name and ports count as free.
            let kind = entity.kind();
            let stored = self.get(kind, replaced).await?;
            if stored.gateway_id != entity.gateway_id && !entity.gateway_id.is_empty() {
                return Err(ApiError::invalid(
                    "validate request",
                    "replaces_id",
                    "the replaced entity belongs to another gateway",
                ));
            }
            entity.id = stored.id;
        }
        defaults::clear_output_only(&mut entity)?;
        defaults::apply(&mut entity);
        secrets::carry_over(&mut entity, &SealedSecrets::new(), &self.key)?;
        let mut v = Violations::default();
        let kind = validate::check(&entity, &mut v)?;
        let _guard = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let checks::Checked { refs, warnings } =
            checks::against_store(&mut tx, &entity, kind, v, known, mode).await?;
        if !known.is_everything() || replaces.is_some() {
            let now = prost_types::Timestamp::from(std::time::SystemTime::now());
            entity.created_at = Some(now);
            entity.updated_at = Some(now);
            let entity = self
                .preview(tx, entity, &SealedSecrets::new(), known)
                .await?;
            return Ok((entity, warnings));
        }
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
        let change = self.upsert_change(&stored, &sealed, mode)?;
        self.finish(tx, mode, vec![change], queued > 0).await?;
        Ok((entity, warnings))
    }

    /// Replaces an entity's fields; `expected_revision` (when non-zero)
    /// must be its current revision.
    pub async fn update(
        &self,
        entity: Entity,
        expected_revision: i64,
        mode: Mode,
    ) -> Result<Entity, ApiError> {
        let (entity, _) = self
            .update_known(entity, expected_revision, mode, Known::everything())
            .await?;
        Ok(entity)
    }

    /// `Validate` of an update: as [`Store::validate_create`].
    pub async fn validate_update(
        &self,
        entity: Entity,
        expected_revision: i64,
        known: &Known,
    ) -> Result<(Entity, Vec<ValidateWarning>), ApiError> {
        self.update_known(entity, expected_revision, Mode::DryRun, known.clone())
            .await
    }

    async fn update_known(
        &self,
        mut entity: Entity,
        expected_revision: i64,
        mode: Mode,
        mut known: Known,
    ) -> Result<(Entity, Vec<ValidateWarning>), ApiError> {
        let kind = entity.kind();
        if kind == Kind::Unspecified {
            validate::check(&entity, &mut Violations::default())?;
        }
        let _guard = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let stored = load_expected(&mut tx, kind, &entity.id, expected_revision).await?;
        if entity.gateway_id.is_empty() || !known.is_known("gateway_id") {
            // Immutable: an update's gateway is the stored one.
            entity.gateway_id.clone_from(&stored.entity.gateway_id);
            known.learn("gateway_id");
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
        let checks::Checked { refs, warnings } =
            checks::against_store(&mut tx, &entity, kind, v, &known, mode).await?;
        if !known.is_everything() {
            entity.created_at = stored.entity.created_at;
            entity.updated_at = Some(prost_types::Timestamp::from(std::time::SystemTime::now()));
            entity.revision = stored.revision;
            let entity = self.preview(tx, entity, &stored.secrets, &known).await?;
            return Ok((entity, warnings));
        }
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
        let change = self.upsert_change(&entity, &sealed, mode)?;
        self.finish(tx, mode, vec![change], queued > 0).await?;
        Ok((entity, warnings))
    }

    /// The change data planes see for a created or updated entity: the
    /// stored entity with its secrets in clear, principal passwords as
    /// hashes (a new password costs this write one argon2id hash).
    fn upsert_change(
        &self,
        entity: &Entity,
        sealed: &SealedSecrets,
        mode: Mode,
    ) -> Result<Change, ApiError> {
        let mut plain = entity.clone();
        // A dry run's change is never sent: no secret opened, no hash paid.
        if entity.kind().is_data_plane_config() && !sealed.is_empty() && mode == Mode::Commit {
            secrets::open(&mut plain, sealed, &self.key)?;
            // Slow on purpose (argon2id): let the runtime move its other
            // tasks off this thread meanwhile.
            let mut hashing = || secrets::hashed::hash_principals(&mut plain, &self.key);
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(hashing)?
                }
                _ => hashing()?,
            }
        }
        Ok(Change {
            gateway_id: log_gateway(entity).to_string(),
            revision: entity.revision,
            op: ChangeOp::Upsert(Box::new(plain)),
        })
    }

    /// What a `Validate` with unknown fields returns: the checked entity
    /// with its secrets as fingerprints (none for an unknown one). Rolls
    /// back a transaction that wrote nothing.
    async fn preview(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Sqlite>,
        mut entity: Entity,
        stored: &SealedSecrets,
        known: &Known,
    ) -> Result<Entity, ApiError> {
        tx.rollback().await?;
        secrets::seal(&mut entity, stored, &self.key)?;
        known.forget_secrets(&mut entity)?;
        Ok(entity)
    }

    /// Compacts the log, then commits (publishing the changes, in order,
    /// to the sync streams) or rolls back.
    pub(super) async fn finish(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Sqlite>,
        mode: Mode,
        changes: Vec<Change>,
        events_queued: bool,
    ) -> Result<(), ApiError> {
        let Some(revision) = changes.last().map(|c| c.revision) else {
            return Ok(tx.rollback().await?);
        };
        match mode {
            Mode::DryRun => tx.rollback().await?,
            Mode::Commit => {
                self.compact(&mut tx, revision).await?;
                tx.commit().await?;
                let new_certificate = changes.iter().any(|c| {
                    matches!(&c.op, ChangeOp::Upsert(e) if e.kind() == Kind::DataPlaneCertificate)
                });
                for change in changes {
                    self.hub.publish(change);
                }
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

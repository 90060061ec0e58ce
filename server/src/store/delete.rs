//! Deletes. An entity goes only when nothing refers to it; a gateway's
//! data_plane_certificates may go with it (`force`), since they are often
//! made outside Terraform (`sluice-server dataplane-cert issue`), which
//! destroys everything else it manages first.

use sluice_proto::admin::v1::Kind;

use super::{
    Store,
    write::{Mode, Stored, append_revision, load_expected, log_gateway, set_revision_body},
};
use crate::{
    error::ApiError,
    events::Event,
    hub::{Change, ChangeOp},
};

/// How many blocking entities an error names.
const NAMED: usize = 5;

/// An entity that refers to the one being deleted: kind, name, id, field.
type Referrer = (String, String, String, String);

/// `kind "name" (id) through field, ...` for at most [`NAMED`] of `total`.
fn named(referrers: &[Referrer], total: i64, through: bool) -> String {
    let list = referrers
        .iter()
        .take(NAMED)
        .map(|(k, n, i, f)| match through {
            true => format!("{k} {n:?} ({i}) through {f}"),
            false => format!("{n:?} ({i})"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let shown = referrers.len().min(NAMED) as i64;
    match total - shown {
        more if more > 0 => format!("{list} and {more} more"),
        _ => list,
    }
}

impl Store {
    /// Deletes an entity nothing refers to; returns the revision that
    /// recorded the delete.
    pub async fn delete(
        &self,
        kind: Kind,
        id: &str,
        expected_revision: i64,
        mode: Mode,
    ) -> Result<i64, ApiError> {
        self.delete_forced(kind, id, expected_revision, false, mode)
            .await
    }

    /// [`Store::delete`]; for a gateway with `force`, its
    /// data_plane_certificates are deleted (revoked) first, each with its
    /// own revision, so their nodes are disconnected. A deleted gateway's
    /// node records are forgotten. Anything else that refers to the
    /// entity blocks the delete, force or not.
    pub async fn delete_forced(
        &self,
        kind: Kind,
        id: &str,
        expected_revision: i64,
        force: bool,
        mode: Mode,
    ) -> Result<i64, ApiError> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let stored = load_expected(&mut tx, kind, id, expected_revision).await?;
        let gateway = kind == Kind::Gateway;
        // A gateway's certificates are counted apart: force removes them.
        let certificates_apart = if gateway { 1 } else { 0 };
        let filter = "FROM entity_refs r JOIN entities e ON e.id = r.from_id WHERE r.to_id = ? \
                      AND (e.kind = 'data_plane_certificate' AND r.field = 'gateway_id' AND ? = 1) = ?";
        let blocking: Vec<Referrer> = sqlx::query_as(&format!(
            "SELECT e.kind, e.name, e.id, r.field {filter} ORDER BY e.seq LIMIT {}",
            NAMED + 1
        ))
        .bind(id)
        .bind(certificates_apart)
        .bind(false)
        .fetch_all(&mut *tx)
        .await?;
        let blocking_total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {filter}"))
            .bind(id)
            .bind(certificates_apart)
            .bind(false)
            .fetch_one(&mut *tx)
            .await?;
        let certificates: Vec<Referrer> = if gateway {
            sqlx::query_as(&format!(
                "SELECT e.kind, e.name, e.id, r.field {filter} ORDER BY e.seq"
            ))
            .bind(id)
            .bind(certificates_apart)
            .bind(true)
            .fetch_all(&mut *tx)
            .await?
        } else {
            Vec::new()
        };
        let what = format!(
            "cannot delete {} {:?} ({id})",
            kind.slug(),
            stored.entity.name
        );
        if !blocking.is_empty() {
            let mut message = format!(
                "{what}: still referenced by {}; delete or change those first",
                named(&blocking, blocking_total, true)
            );
            if gateway {
                message.push_str(
                    " (`force` deletes only the gateway's data_plane_certificates and node \
                     records with it, never configuration like this)",
                );
            }
            return Err(ApiError::FailedPrecondition(message));
        }
        super::checks::before_delete(&mut tx, &stored.entity).await?;
        if !certificates.is_empty() && !force {
            return Err(ApiError::FailedPrecondition(format!(
                "{what}: its data_plane_certificates {} still refer to it (issued by \
                 `sluice-server dataplane-cert issue` or another tool); revoke them first \
                 (`sluice-server dataplane-cert revoke`), or delete the gateway with `force` \
                 to delete (revoke) them with it, which disconnects their nodes",
                named(&certificates, certificates.len() as i64, false)
            )));
        }
        let log = log_gateway(&stored.entity).to_string();
        let mut changes = Vec::new();
        let mut queued = 0;
        for (_, _, certificate, _) in &certificates {
            let (revision, events) = self
                .delete_row(&mut tx, &log, Kind::DataPlaneCertificate, certificate)
                .await?;
            queued += events;
            changes.push(Change {
                gateway_id: log.clone(),
                revision,
                op: ChangeOp::Remove(Kind::DataPlaneCertificate, certificate.clone()),
            });
        }
        let (revision, events) = self.delete_row(&mut tx, &log, kind, id).await?;
        queued += events;
        if gateway {
            sqlx::query("DELETE FROM data_plane_nodes WHERE gateway_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        changes.push(Change {
            gateway_id: log,
            revision,
            op: ChangeOp::Remove(kind, id.to_string()),
        });
        self.finish(tx, mode, changes, queued > 0).await?;
        Ok(revision)
    }

    /// Logs the delete of one entity, queues its event and removes its
    /// row; returns the revision and how many deliveries were queued.
    async fn delete_row(
        &self,
        tx: &mut sqlx::SqliteConnection,
        gateway: &str,
        kind: Kind,
        id: &str,
    ) -> Result<(i64, u64), ApiError> {
        let Stored {
            entity, secrets, ..
        } = load_expected(&mut *tx, kind, id, 0).await?;
        let revision = append_revision(&mut *tx, &entity, "delete", &secrets).await?;
        set_revision_body(&mut *tx, revision, &entity).await?;
        let event = Event::crud("delete", gateway, revision, Some(&entity), None);
        let queued = self
            .enqueue_matching(&mut *tx, gateway, &event, Some(id))
            .await?;
        sqlx::query("DELETE FROM entities WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Ok((revision, queued as u64))
    }
}

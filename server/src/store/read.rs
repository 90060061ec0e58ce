//! Reads: one entity, a page of entities, a page of the revision log.

use prost::Message;
use sluice_proto::admin::v1::{Entity, Kind, Operation, Revision, entity::Spec};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::Store;
use crate::error::ApiError;

/// Largest page a list returns.
pub(crate) const MAX_PAGE: u32 = 1000;
/// Page size when the request leaves it at 0.
pub(crate) const DEFAULT_PAGE: u32 = 100;

/// What `ListEntities` selects.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// The kind to list.
    pub kind: Option<Kind>,
    /// Required except for gateways.
    pub gateway_id: String,
    /// Only children of this listener or virtual cluster.
    pub parent_id: String,
    /// Only the entity with this name.
    pub name: String,
    /// Page size; 0 means the default.
    pub page_size: u32,
    /// Opaque token from the previous page.
    pub page_token: String,
}

/// Turns a page-size request into a bounded limit.
pub(crate) fn page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// Decodes a stored entity body.
pub(super) fn decode(body: &[u8]) -> Result<Entity, ApiError> {
    Entity::decode(body)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt entity body: {e}")))
}

impl Store {
    /// Reads one entity of `kind`.
    pub async fn get(&self, kind: Kind, id: &str) -> Result<Entity, ApiError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT kind, body FROM entities WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else {
            return Err(ApiError::NotFound(format!(
                "no {} with id {id:?}",
                kind.slug()
            )));
        };
        let stored: String = row.get("kind");
        if stored != kind.slug() {
            return Err(ApiError::NotFound(format!(
                "no {} with id {id:?} (that id is a {stored})",
                kind.slug()
            )));
        }
        let mut entity = decode(row.get("body"))?;
        decorate(&mut conn, &mut entity).await?;
        Ok(entity)
    }

    /// Lists one page of entities; returns them and the next page token.
    pub async fn list(&self, filter: &ListFilter) -> Result<(Vec<Entity>, String), ApiError> {
        let kind = filter.kind.unwrap_or(Kind::Unspecified);
        let mut v = crate::error::Violations::default();
        if kind == Kind::Unspecified {
            v.add("kind", "must be set");
        }
        if kind != Kind::Gateway && filter.gateway_id.is_empty() {
            v.add("gateway_id", "must be set to list anything but gateways");
        }
        let after: i64 = match filter.page_token.as_str() {
            "" => 0,
            token => token.parse().unwrap_or_else(|_| {
                v.add("page_token", "is not a token from a previous page");
                0
            }),
        };
        v.into_result("list request")?;
        let limit = page_size(filter.page_size);
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT seq, body FROM entities WHERE kind = ");
        q.push_bind(kind.slug());
        if !filter.gateway_id.is_empty() {
            if kind == Kind::Gateway {
                q.push(" AND id = ").push_bind(&filter.gateway_id);
            } else {
                q.push(" AND gateway_id = ").push_bind(&filter.gateway_id);
            }
        }
        if !filter.parent_id.is_empty() {
            q.push(" AND scope_id = ").push_bind(&filter.parent_id);
        }
        if !filter.name.is_empty() {
            q.push(" AND name = ").push_bind(&filter.name);
        }
        q.push(" AND seq > ").push_bind(after);
        q.push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows = q.build().fetch_all(&mut *conn).await?;
        let more = rows.len() > limit as usize;
        let mut entities = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last = 0i64;
        for row in rows.iter().take(limit as usize) {
            last = row.get("seq");
            let mut entity = decode(row.get("body"))?;
            decorate(&mut conn, &mut entity).await?;
            entities.push(entity);
        }
        let next = if more {
            last.to_string()
        } else {
            String::new()
        };
        Ok((entities, next))
    }

    /// The newest revision recorded for a gateway (0 when none).
    pub async fn latest_revision(&self, gateway_id: &str) -> Result<i64, ApiError> {
        latest_revision(&self.pool, gateway_id).await
    }

    /// The newest revision of a gateway that nodes receive (data-plane
    /// kinds: not certificates or event hooks) and when it was committed
    /// (Unix ms), deletes included; `(0, 0)` when the log holds none.
    pub async fn latest_data_plane_change(&self, gateway_id: &str) -> Result<(i64, i64), ApiError> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT revision, created_at FROM revisions WHERE gateway_id = ",
        );
        query.push_bind(gateway_id).push(" AND kind IN (");
        let mut kinds = query.separated(", ");
        for kind in sluice_proto::entity::ALL_KINDS
            .into_iter()
            .filter(|k| k.is_data_plane_config())
        {
            kinds.push_bind(kind.slug());
        }
        query.push(") ORDER BY revision DESC LIMIT 1");
        let row: Option<(i64, i64)> = query.build_query_as().fetch_optional(&self.pool).await?;
        Ok(row.unwrap_or_default())
    }

    /// Reads the revision log of a gateway after `after`; returns the page
    /// and the newest revision of the gateway. Entities show as stored, with
    /// webhook URLs redacted ([`crate::events::redact`]).
    pub async fn revisions(
        &self,
        gateway_id: &str,
        after: i64,
        requested_page: u32,
    ) -> Result<(Vec<Revision>, i64), ApiError> {
        let rows = sqlx::query(
            "SELECT revision, gateway_id, kind, entity_id, operation, body FROM revisions \
             WHERE gateway_id = ? AND revision > ? ORDER BY revision LIMIT ?",
        )
        .bind(gateway_id)
        .bind(after)
        .bind(i64::from(page_size(requested_page)))
        .fetch_all(&self.pool)
        .await?;
        let latest = latest_revision(&self.pool, gateway_id).await?;
        let revisions = rows
            .iter()
            .map(|row| {
                let operation = match row.get::<&str, _>("operation") {
                    "create" => Operation::Create,
                    "update" => Operation::Update,
                    _ => Operation::Delete,
                };
                // The log is an audit trail anyone with a token reads: a
                // webhook URL's credentials stay out of it.
                let mut entity = decode(row.get("body"))?;
                crate::events::redact::entity(&mut entity);
                Ok(Revision {
                    revision: row.get("revision"),
                    gateway_id: row.get("gateway_id"),
                    kind: Kind::from_slug(row.get("kind")).unwrap_or(Kind::Unspecified) as i32,
                    entity_id: row.get("entity_id"),
                    operation: operation as i32,
                    entity: Some(entity),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok((revisions, latest))
    }
}

/// The newest revision recorded for a gateway.
async fn latest_revision<'e, E>(executor: E, gateway_id: &str) -> Result<i64, ApiError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(revision), 0) FROM revisions WHERE gateway_id = ?")
            .bind(gateway_id)
            .fetch_one(executor)
            .await?,
    )
}

/// Fills in the read-only fields computed at read time (a gateway's
/// revision and totals).
pub(super) async fn decorate(
    conn: &mut SqliteConnection,
    entity: &mut Entity,
) -> Result<(), ApiError> {
    if let Some(Spec::Gateway(g)) = entity.spec.as_mut() {
        g.revision = latest_revision(&mut *conn, &entity.id).await?;
        g.virtual_clusters_total = sqlx::query_scalar(
            "SELECT COUNT(*) FROM entities WHERE gateway_id = ? AND kind = 'virtual_cluster'",
        )
        .bind(&entity.id)
        .fetch_one(&mut *conn)
        .await?;
        g.nodes_total =
            sqlx::query_scalar("SELECT COUNT(*) FROM data_plane_nodes WHERE gateway_id = ?")
                .bind(&entity.id)
                .fetch_one(&mut *conn)
                .await?;
    }
    Ok(())
}

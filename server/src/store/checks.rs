//! The checks of a write that need the database: references resolve to
//! entities of the right kind in the same gateway, the name is free in its
//! scope, and the kind's own cross-entity rules hold. Fields not known yet
//! (`Validate` with `unknown_fields`) skip what depends on them.

use sluice_proto::admin::v1::{Entity, Kind, entity::Spec};
use sqlx::{Row, SqliteConnection};

use crate::{
    error::{ApiError, Violations},
    validate::{
        known::Known,
        references::{self, Reference},
    },
};

/// Runs the database checks, then fails with everything `v` holds that
/// can be judged; returns the references to record.
pub(super) async fn against_store(
    conn: &mut SqliteConnection,
    entity: &Entity,
    kind: Kind,
    mut v: Violations,
    known: &Known,
) -> Result<Vec<Reference>, ApiError> {
    let gateway_known = kind == Kind::Gateway || known.is_known("gateway_id");
    let refs = references::references(entity);
    for r in refs.iter().filter(|r| known.is_known(&r.field)) {
        check_reference(conn, entity, r, gateway_known, known, &mut v).await?;
    }
    let (scope, family) = references::name_scope(entity);
    let scope_field = match family {
        "gateway" => None,
        "listener_policy" => Some("listener_id"),
        "virtual_cluster_policy" => Some("virtual_cluster_id"),
        _ => Some("gateway_id"),
    };
    let scope_known = gateway_known && scope_field.is_none_or(|f| known.is_known(f));
    if scope_known && known.is_known("name") {
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
    }
    if let Some(Spec::ListenerPolicyTlsServer(t)) = &entity.spec
        && scope_known
    {
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
    if gateway_known {
        super::ports::check(conn, entity, known, &mut v).await?;
    }
    known.keep_judged(&mut v);
    v.into_result(kind.slug())?;
    Ok(refs)
}

/// Checks one known reference: it names an entity of a kind it may name,
/// in the entity's gateway (when that is known), and a parent policy of
/// the same virtual cluster.
async fn check_reference(
    conn: &mut SqliteConnection,
    entity: &Entity,
    r: &Reference,
    gateway_known: bool,
    known: &Known,
    v: &mut Violations,
) -> Result<(), ApiError> {
    if r.target == entity.id {
        v.add(&r.field, "an entity cannot refer to itself");
        return Ok(());
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
        return Ok(());
    };
    let target_kind: String = row.get("kind");
    let target_gateway: Option<String> = row.get("gateway_id");
    if !r.kinds.iter().any(|k| k.slug() == target_kind) {
        v.add(
            &r.field,
            format!("{:?} is a {target_kind}, not a {wanted}", r.target),
        );
    } else if target_kind != "gateway"
        && gateway_known
        && target_gateway.as_deref() != Some(&entity.gateway_id)
    {
        v.add(
            &r.field,
            format!("{wanted} {:?} belongs to another gateway", r.target),
        );
    } else if r.field == "parent_policy_id" && known.is_known("virtual_cluster_id") {
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
    Ok(())
}

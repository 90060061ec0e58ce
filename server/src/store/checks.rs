//! The checks of a write that need the database: references resolve to
//! entities of the right kind in the same gateway, the name is free in its
//! scope, and the kind's own cross-entity rules hold. Fields not known yet
//! (`Validate` with `unknown_fields`) skip what depends on them.
//!
//! A virtual cluster's dns_label is unique in its gateway (SNI host names
//! are built from it). A dry run warns when namespace prefixes of virtual
//! clusters on one backend cluster overlap (one tenant would see the
//! other's names).
//!
//! One rule spans entities that refer to nothing of each other: an `sni`
//! forward policy needs a listener_policy_tls_server on its listener (SNI
//! is read from the TLS handshake). A write is refused without it, and the
//! TLS policy cannot be deleted while such a forward policy uses its
//! listener. A dry run (`Validate`, `terraform plan`) only warns: the plan
//! that adds the forward policy may add the TLS policy too, which the
//! server cannot see yet.

use prost::Message;
use sluice_proto::admin::v1::{
    AclMode, Entity, Kind, ValidateWarning, entity::Spec,
    listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use sqlx::{Row, SqliteConnection};

use super::write::Mode;
use crate::{
    error::{ApiError, Violations},
    validate::{
        known::Known,
        references::{self, Reference},
    },
};

/// What the database checks of a write found acceptable.
pub(super) struct Checked {
    /// The references to record.
    pub(super) refs: Vec<Reference>,
    /// What a dry run warns about that the write itself would refuse
    /// unless another write comes first (always empty for a write).
    pub(super) warnings: Vec<ValidateWarning>,
}

/// Runs the database checks, then fails with everything `v` holds that
/// can be judged; returns the references to record. What depends on an
/// entity a plan may create first is an error in [`Mode::Commit`] and a
/// warning in [`Mode::DryRun`].
pub(super) async fn against_store(
    conn: &mut SqliteConnection,
    entity: &Entity,
    kind: Kind,
    mut v: Violations,
    known: &Known,
    mode: Mode,
) -> Result<Checked, ApiError> {
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
    let mut warnings = Vec::new();
    if gateway_known && let Some(other) = dns_label_taken(conn, entity, known).await? {
        let message = format!(
            "virtual_cluster {other} already has this dns_label in the gateway: SNI host names \
             are built from it, so it must be unique per gateway"
        );
        match mode {
            Mode::Commit => v.add("dns_label", message),
            Mode::DryRun => warnings.push(ValidateWarning {
                field: "dns_label".into(),
                summary: "dns_label already used in this gateway".into(),
                message: format!(
                    "{message}; this write is refused unless that cluster gives the label up \
                     first. In Terraform, apply in two steps (first move the holder to another \
                     label or destroy it, then apply this), or give this resource depends_on = \
                     [the holder] when one apply destroys the holder; two clusters cannot swap \
                     labels in one apply"
                ),
            }),
        }
    }
    if gateway_known && mode == Mode::DryRun {
        for (other, theirs) in overlapping_namespaces(conn, entity, known).await? {
            warnings.push(ValidateWarning {
                field: "namespace.prefix".into(),
                summary: "namespace prefixes overlap on one backend cluster".into(),
                message: format!(
                    "virtual_cluster {other} on the same backend cluster has the prefix \
                     {theirs:?}, and one prefix begins with the other: the tenant with the \
                     shorter one sees and uses the other's topics, groups and transactional \
                     ids (intended only for a parent tenant over a child); give each tenant a \
                     prefix no other begins with, e.g. ending in '.'"
                ),
            });
        }
    }
    if gateway_known && known.is_known("parent_policy_id") {
        parent_chain(conn, entity, &mut v).await?;
    }
    if gateway_known
        && mode == Mode::DryRun
        && let Some(warning) = acls_not_decided(conn, entity, known).await?
    {
        warnings.push(warning);
    }
    if gateway_known && let Some(listener) = sni_listener_without_tls(conn, entity, known).await? {
        match mode {
            Mode::Commit => v.add(
                "sni",
                format!(
                    "listener {listener:?} has no listener_policy_tls_server: SNI routing needs \
                     TLS on the listener (add a sluice_listener_policy_tls_server)"
                ),
            ),
            Mode::DryRun => warnings.push(ValidateWarning {
                field: "sni".into(),
                summary: "sni routing needs a listener_policy_tls_server on the listener".into(),
                message: format!(
                    "listener {listener:?} has no listener_policy_tls_server yet: SNI routing \
                     needs TLS on the listener, and this policy is refused until it has one. \
                     Add a sluice_listener_policy_tls_server; when one apply creates both, give \
                     this resource depends_on = [that policy], so that it is created after it \
                     and destroyed before it"
                ),
            }),
        }
    }
    known.keep_judged(&mut v);
    v.into_result(kind.slug())?;
    Ok(Checked { refs, warnings })
}

/// The listener of an `sni` forward policy when that listener (of the
/// policy's gateway) has no listener_policy_tls_server; None for anything
/// else, or when the listener is not known or not a listener of the
/// gateway (the reference check says so).
async fn sni_listener_without_tls(
    conn: &mut SqliteConnection,
    entity: &Entity,
    known: &Known,
) -> Result<Option<String>, ApiError> {
    let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &entity.spec else {
        return Ok(None);
    };
    if !matches!(f.config, Some(Forward::Sni(_))) || !known.is_known("listener_id") {
        return Ok(None);
    }
    let listener: Option<String> = sqlx::query_scalar(
        "SELECT id FROM entities WHERE id = ? AND kind = 'listener' AND gateway_id = ?",
    )
    .bind(&f.listener_id)
    .bind(&entity.gateway_id)
    .fetch_optional(&mut *conn)
    .await?;
    if listener.is_none() {
        return Ok(None);
    }
    let tls: Option<String> = sqlx::query_scalar(
        "SELECT id FROM entities WHERE kind = 'listener_policy_tls_server' AND scope_id = ? LIMIT 1",
    )
    .bind(&f.listener_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(tls.is_none().then(|| f.listener_id.clone()))
}

/// Another virtual cluster of the gateway with the same dns_label, as
/// `"name" (id)`; None for other kinds or when the label is not known.
async fn dns_label_taken(
    conn: &mut SqliteConnection,
    entity: &Entity,
    known: &Known,
) -> Result<Option<String>, ApiError> {
    let Some(Spec::VirtualCluster(vc)) = &entity.spec else {
        return Ok(None);
    };
    if !known.is_known("dns_label") || vc.dns_label.is_empty() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT id, name, body FROM entities \
         WHERE kind = 'virtual_cluster' AND gateway_id = ? AND id != ? ORDER BY seq",
    )
    .bind(&entity.gateway_id)
    .bind(&entity.id)
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let body = Entity::decode(row.get::<&[u8], _>("body"))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt entity body: {e}")))?;
        if let Some(Spec::VirtualCluster(other)) = &body.spec
            && other.dns_label.eq_ignore_ascii_case(&vc.dns_label)
        {
            return Ok(Some(format!(
                "{:?} ({})",
                row.get::<String, _>("name"),
                row.get::<String, _>("id")
            )));
        }
    }
    Ok(None)
}

/// The other namespaced virtual clusters of the gateway on the same
/// backend cluster whose prefix begins with this one's or the reverse
/// (equal prefixes are one tenant's, not an overlap), as `"name" (id)`
/// and their prefix.
async fn overlapping_namespaces(
    conn: &mut SqliteConnection,
    entity: &Entity,
    known: &Known,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(Spec::VirtualCluster(vc)) = &entity.spec else {
        return Ok(Vec::new());
    };
    let Some(ns) = &vc.namespace else {
        return Ok(Vec::new());
    };
    if !known.is_known("namespace") || !known.is_known("destination_id") || ns.prefix.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT id, name, body FROM entities \
         WHERE kind = 'virtual_cluster' AND gateway_id = ? AND id != ? ORDER BY seq",
    )
    .bind(&entity.gateway_id)
    .bind(&entity.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let body = Entity::decode(row.get::<&[u8], _>("body"))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt entity body: {e}")))?;
        let Some(Spec::VirtualCluster(other)) = &body.spec else {
            continue;
        };
        let Some(theirs) = other.namespace.as_ref().map(|n| n.prefix.as_str()) else {
            continue;
        };
        let overlap = theirs != ns.prefix
            && !theirs.is_empty()
            && (theirs.starts_with(&ns.prefix) || ns.prefix.starts_with(theirs));
        if other.destination_id == vc.destination_id && overlap {
            out.push((
                format!(
                    "{:?} ({})",
                    row.get::<String, _>("name"),
                    row.get::<String, _>("id")
                ),
                theirs.to_string(),
            ));
        }
    }
    Ok(out)
}

/// How many parents a policy may be nested under (as nodes allow).
const MAX_NESTING: usize = 8;

/// A policy runs only where its parents' conditions hold, and nodes
/// evaluate them like its own: its parent must be a policy of the same
/// virtual cluster — for an ACL policy an ACL policy (whose condition was
/// compiled for the cluster phase), for a record policy any — and every
/// chain of the virtual cluster's policies, with this one as written,
/// must end (no cycle, at most [`MAX_NESTING`] deep). Otherwise every node
/// would refuse the virtual cluster's connections.
async fn parent_chain(
    conn: &mut SqliteConnection,
    entity: &Entity,
    v: &mut Violations,
) -> Result<(), ApiError> {
    let Some(p) = entity.spec.as_ref().and_then(|s| s.policy()) else {
        return Ok(());
    };
    let acl = matches!(entity.spec, Some(Spec::ClusterPolicyAcls(_)));
    // Every policy of the virtual cluster: chains mix kinds (a record
    // policy may nest under an ACL policy), and depth and cycles are
    // checked over all of them.
    let rows = sqlx::query(
        "SELECT id, kind, body FROM entities WHERE (kind = 'cluster_policy_acls' \
         OR kind LIKE 'produce_policy_%' OR kind LIKE 'consume_policy_%') \
         AND scope_id = ? AND gateway_id = ?",
    )
    .bind(p.virtual_cluster_id)
    .bind(&entity.gateway_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut acls = std::collections::HashSet::new();
    let mut parents: std::collections::HashMap<String, String> = rows
        .iter()
        .filter_map(|row| {
            let body = Entity::decode(row.get::<&[u8], _>("body")).ok()?;
            let parent = body.spec.as_ref()?.policy()?.parent_policy_id.to_string();
            let id = row.get::<String, _>("id");
            if row.get::<String, _>("kind") == "cluster_policy_acls" {
                acls.insert(id.clone());
            }
            Some((id, parent))
        })
        .collect();
    let me = if entity.id.is_empty() {
        "(this policy)".to_string()
    } else {
        entity.id.clone()
    };
    parents.insert(me.clone(), p.parent_policy_id.to_string());
    let parent_ok = if acl {
        acls.contains(p.parent_policy_id)
    } else {
        parents.contains_key(p.parent_policy_id)
    };
    if !p.parent_policy_id.is_empty() && !parent_ok {
        v.add(
            "parent_policy_id",
            if acl {
                "must be a cluster_policy_acls of the same virtual cluster: an ACL policy runs \
                 under ACL policies only"
            } else {
                "must be a policy of the same virtual cluster"
            },
        );
        return Ok(());
    }
    for start in parents.keys() {
        let mut current = start;
        for depth in 0..=MAX_NESTING + 1 {
            let Some(parent) = parents.get(current).filter(|p| !p.is_empty()) else {
                break;
            };
            if parent == start {
                v.add(
                    "parent_policy_id",
                    format!("policies nest in a cycle (through {start})"),
                );
                return Ok(());
            }
            if depth == MAX_NESTING {
                v.add(
                    "parent_policy_id",
                    format!("{start} would be nested more than {MAX_NESTING} policies deep"),
                );
                return Ok(());
            }
            current = parent;
        }
    }
    Ok(())
}

/// A plan warning when ACL policies and their virtual cluster's
/// `acl_mode` disagree: rules are decided by the gateway only with
/// `enforce_on_gateway`; with `passthrough` the backend decides and the
/// rules are not applied (said here, never silently).
async fn acls_not_decided(
    conn: &mut SqliteConnection,
    entity: &Entity,
    known: &Known,
) -> Result<Option<ValidateWarning>, ApiError> {
    let enforce = AclMode::EnforceOnGateway as i32;
    match &entity.spec {
        Some(Spec::ClusterPolicyAcls(p)) if known.is_known("virtual_cluster_id") => {
            let body: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT body FROM entities WHERE kind = 'virtual_cluster' AND id = ? AND gateway_id = ?",
            )
            .bind(&p.virtual_cluster_id)
            .bind(&entity.gateway_id)
            .fetch_optional(&mut *conn)
            .await?;
            let mode = body
                .and_then(|b| Entity::decode(b.as_slice()).ok())
                .and_then(|e| match e.spec {
                    Some(Spec::VirtualCluster(vc)) => Some(vc.acl_mode),
                    _ => None,
                });
            Ok(mode.filter(|m| *m != enforce).map(|_| ValidateWarning {
                field: "virtual_cluster_id".into(),
                summary: "ACL rules only reported: the virtual cluster's acl_mode is passthrough"
                    .into(),
                message: "its virtual cluster has acl_mode = passthrough: the backend cluster \
                          decides ACLs, and these rules are only evaluated and reported (as \
                          acl_denied with shadow = true), never applied; set acl_mode = \
                          \"enforce_on_gateway\" on the virtual cluster to apply them"
                    .into(),
            }))
        }
        Some(Spec::VirtualCluster(vc))
            if known.is_known("acl_mode") && vc.acl_mode != enforce && !entity.id.is_empty() =>
        {
            let policies: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM entities WHERE kind = 'cluster_policy_acls' AND scope_id = ?",
            )
            .bind(&entity.id)
            .fetch_one(&mut *conn)
            .await?;
            Ok((policies > 0).then(|| ValidateWarning {
                field: "acl_mode".into(),
                summary: "cluster_policy_acls only reported with acl_mode = passthrough".into(),
                message: format!(
                    "{policies} cluster_policy_acls of this virtual cluster are only evaluated \
                     and reported (acl_denied with shadow = true), never applied, while \
                     acl_mode is passthrough (the backend cluster decides ACLs)"
                ),
            }))
        }
        _ => Ok(None),
    }
}

/// How many blocking policies a refused delete names.
const NAMED: usize = 5;

/// The cross-entity rules of a delete that references do not cover: a
/// listener_policy_tls_server stays while an `sni` forward policy uses its
/// listener. `entity` is the stored entity about to be deleted.
pub(super) async fn before_delete(
    conn: &mut SqliteConnection,
    entity: &Entity,
) -> Result<(), ApiError> {
    let Some(Spec::ListenerPolicyTlsServer(t)) = &entity.spec else {
        return Ok(());
    };
    let rows = sqlx::query(
        "SELECT id, name, body FROM entities \
         WHERE kind = 'listener_policy_forward_to_virtual_cluster' AND scope_id = ? ORDER BY seq",
    )
    .bind(&t.listener_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut sni = Vec::new();
    for row in &rows {
        let body = Entity::decode(row.get::<&[u8], _>("body"))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt entity body: {e}")))?;
        if let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &body.spec
            && matches!(f.config, Some(Forward::Sni(_)))
        {
            sni.push(format!(
                "{:?} ({})",
                row.get::<String, _>("name"),
                row.get::<String, _>("id")
            ));
        }
    }
    if sni.is_empty() {
        return Ok(());
    }
    let total = sni.len();
    let mut named = sni.into_iter().take(NAMED).collect::<Vec<_>>().join(", ");
    if total > NAMED {
        named.push_str(&format!(" and {} more", total - NAMED));
    }
    Err(ApiError::FailedPrecondition(format!(
        "cannot delete listener_policy_tls_server {:?} ({}): \
         listener_policy_forward_to_virtual_cluster {named} routes by SNI on listener {:?}, \
         which needs TLS on the listener; delete those policies or switch them to port_mapping \
         first (in Terraform, give them depends_on = [this policy], so that they are destroyed \
         before it)",
        entity.name, entity.id, t.listener_id
    )))
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

//! Validation of a write before it touches the store: defaults, field rules
//! and the reference list the store then checks against the database.

pub mod declared;
pub mod defaults;
pub mod enforced;
pub mod known;
mod policies;
pub mod references;
pub mod risky;
pub mod rules;
pub mod spec;

use sluice_proto::admin::v1::{Entity, Kind};

use crate::error::{ApiError, Violations};

/// Checks everything about an entity that needs no database: a spec is set,
/// the common fields are well formed, the kind's own rules hold, and so do
/// the facts declared on its fields (required ones set, ids id-sized).
/// Defaults must have been applied first. Fails at once without a spec;
/// otherwise returns the kind and leaves what is wrong in `v`.
pub fn check(entity: &Entity, v: &mut Violations) -> Result<Kind, ApiError> {
    let Some(spec) = &entity.spec else {
        return Err(ApiError::invalid(
            "entity",
            "spec",
            "exactly one entity kind must be set",
        ));
    };
    let kind = spec.kind();
    rules::name(v, "name", &entity.name);
    rules::max_len(
        v,
        "description",
        &entity.description,
        rules::MAX_DESCRIPTION,
    );
    rules::labels(v, "labels", entity.labels.iter());
    match (kind, entity.gateway_id.is_empty()) {
        (Kind::Gateway, false) => v.add("gateway_id", "a gateway does not belong to a gateway"),
        (k, true) if k != Kind::Gateway => v.add("gateway_id", "must be set"),
        _ => {}
    }
    spec::check(v, spec);
    declared::required(entity, v)?;
    Ok(kind)
}

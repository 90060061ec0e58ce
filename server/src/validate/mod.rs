//! Validation of a write before it touches the store: defaults, field rules
//! and the reference list the store then checks against the database.

pub mod defaults;
pub mod references;
pub mod rules;
pub mod spec;

use sluice_proto::admin::v1::{Entity, Kind};

use crate::error::{ApiError, Violations};

/// Checks everything about an entity that needs no database: a spec is set,
/// the common fields are well formed, and the kind's own rules hold.
/// Defaults must have been applied first.
pub fn check(entity: &Entity) -> Result<Kind, ApiError> {
    let mut v = Violations::default();
    let Some(spec) = &entity.spec else {
        v.add("spec", "exactly one entity kind must be set");
        return v.into_result("entity").map(|_| Kind::Unspecified);
    };
    let kind = spec.kind();
    rules::name(&mut v, "name", &entity.name);
    rules::max_len(&mut v, "description", &entity.description, rules::MAX_DESCRIPTION);
    rules::labels(&mut v, "labels", entity.labels.iter());
    match (kind, entity.gateway_id.is_empty()) {
        (Kind::Gateway, false) => v.add("gateway_id", "a gateway does not belong to a gateway"),
        (k, true) if k != Kind::Gateway => v.add("gateway_id", "must be set"),
        _ => {}
    }
    spec::check(&mut v, spec);
    v.into_result(kind.slug()).map(|_| kind)
}

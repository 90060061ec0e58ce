//! The references an entity holds, found through the `(reference)` fields.
//!
//! Data planes list every entity's references on each configuration they
//! apply, so this does not decode the entity into a dynamic message (some
//! microseconds each): the declared fields are compiled once per kind into a
//! tree of field numbers, and the encoded entity is scanned along it.

use std::{collections::HashMap, sync::OnceLock};

use prost::Message;
use prost_reflect::{FieldDescriptor, Kind as FieldKind};

use crate::{
    admin::v1::{Entity, Kind},
    entity::{ALL_KINDS, Reference},
};

/// One field on the way to reference fields.
#[derive(Debug, Clone)]
struct Step {
    /// Its field number.
    number: u32,
    /// Its path segment (empty for the spec, which paths start below).
    name: String,
    /// Whether it is repeated (paths then index it).
    list: bool,
    /// Reference field: the kinds it may name. Empty for a message on the
    /// way to references.
    kinds: &'static [Kind],
    /// What to look for inside it, for a message.
    inner: Vec<Step>,
}

/// Every non-empty reference of `entity`, in field order.
pub(crate) fn of(entity: &Entity) -> Vec<Reference> {
    let mut out = Vec::new();
    if let Some(steps) = plans().get(&entity.kind()) {
        scan(&entity.encode_to_vec(), steps, "", &mut out);
    }
    out
}

/// The steps to every reference of each kind, built once.
fn plans() -> &'static HashMap<Kind, Vec<Step>> {
    static PLANS: OnceLock<HashMap<Kind, Vec<Step>>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let entity = super::entity_message();
        // The common fields; the spec oneof's members are per kind.
        let common = steps(
            entity.fields().filter(|f| f.containing_oneof().is_none()),
            0,
        );
        let mut plans = HashMap::new();
        for kind in ALL_KINDS {
            let mut plan = common.clone();
            if let Some(field) = entity.get_field_by_name(kind.slug())
                && let FieldKind::Message(message) = field.kind()
            {
                let inner = steps(message.fields(), 1);
                if !inner.is_empty() {
                    plan.push(Step {
                        number: field.number(),
                        name: String::new(),
                        list: false,
                        kinds: &[],
                        inner,
                    });
                }
            }
            plans.insert(kind, plan);
        }
        plans.insert(Kind::Unspecified, common);
        plans
    })
}

/// The steps to the reference fields among `fields` and below them. Entity
/// messages do not nest themselves; `depth` bounds the walk regardless.
fn steps(fields: impl Iterator<Item = FieldDescriptor>, depth: usize) -> Vec<Step> {
    let mut out = Vec::new();
    for field in fields {
        let kinds = super::of(&field).reference.as_slice();
        let inner = match field.kind() {
            FieldKind::Message(m) if depth < 16 && !field.is_map() => steps(m.fields(), depth + 1),
            _ => Vec::new(),
        };
        if !kinds.is_empty() || !inner.is_empty() {
            out.push(Step {
                number: field.number(),
                name: field.name().to_string(),
                list: field.is_list(),
                kinds,
                inner,
            });
        }
    }
    out
}

/// Scans one encoded message for `steps`, appending what it finds. The
/// bytes come from `encode_to_vec` of a valid message; anything malformed
/// ends the scan of that message.
fn scan(mut bytes: &[u8], steps: &[Step], prefix: &str, out: &mut Vec<Reference>) {
    let mut seen = vec![0usize; steps.len()];
    while !bytes.is_empty() {
        let Some(key) = varint(&mut bytes) else {
            return;
        };
        let number = (key >> 3) as u32;
        let data = match key & 7 {
            0 => varint(&mut bytes).map(|_| &[][..]),
            1 => take(&mut bytes, 8),
            2 => varint(&mut bytes).and_then(|len| take(&mut bytes, usize::try_from(len).ok()?)),
            5 => take(&mut bytes, 4),
            _ => None,
        };
        let Some(data) = data else { return };
        if key & 7 != 2 {
            continue;
        }
        let Some(i) = steps.iter().position(|s| s.number == number) else {
            continue;
        };
        let step = &steps[i];
        let path = match (step.name.is_empty(), step.list) {
            (true, _) => prefix.to_string(),
            (false, false) => format!("{prefix}{}", step.name),
            (false, true) => format!("{prefix}{}[{}]", step.name, seen[i]),
        };
        seen[i] += 1;
        if !step.kinds.is_empty() {
            if let Ok(target) = std::str::from_utf8(data)
                && !target.is_empty()
            {
                out.push(Reference {
                    field: path,
                    target: target.to_string(),
                    kinds: step.kinds,
                });
            }
        } else if path.is_empty() {
            scan(data, &step.inner, "", out);
        } else {
            scan(data, &step.inner, &format!("{path}."), out);
        }
    }
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if bytes.len() < len {
        return None;
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Some(head)
}

#[cfg(test)]
mod tests {
    use prost_reflect::{DynamicMessage, MessageDescriptor, Value};

    use super::*;

    /// A message with every field set (ids unique, each list of ids with an
    /// empty one between), choosing the first or the last member of each
    /// oneof.
    fn filled(message: &MessageDescriptor, last: bool, n: &mut u32) -> DynamicMessage {
        let mut out = DynamicMessage::new(message.clone());
        for field in message.fields() {
            if let Some(oneof) = field.containing_oneof() {
                let members: Vec<_> = oneof.fields().map(|f| f.number()).collect();
                let chosen = if last {
                    members.last()
                } else {
                    members.first()
                };
                if chosen != Some(&field.number()) {
                    continue;
                }
            }
            if field.is_map() {
                continue;
            }
            let one = |n: &mut u32| {
                *n += 1;
                match field.kind() {
                    FieldKind::String => Value::String(format!("id-{n}")),
                    FieldKind::Message(m) => Value::Message(filled(&m, last, n)),
                    kind => Value::default_value(&kind),
                }
            };
            let value = if field.is_list() {
                let empty = match field.kind() {
                    FieldKind::String => Value::String(String::new()),
                    _ => one(n),
                };
                Value::List(vec![one(n), empty, one(n)])
            } else {
                one(n)
            };
            out.set_field(&field, value);
        }
        out
    }

    /// The references as the generic walk over a dynamic message sees them.
    fn walked(entity: &Entity) -> Vec<Reference> {
        let mut out = Vec::new();
        super::super::walk(&super::super::to_dynamic(entity).unwrap(), &mut |v| {
            let kinds = v.facts.reference.as_slice();
            let mut push = |field: String, target: &str| {
                if !kinds.is_empty() && !target.is_empty() {
                    out.push(Reference {
                        field,
                        target: target.into(),
                        kinds,
                    });
                }
            };
            match v.value {
                Value::String(id) => push(v.path.clone(), id),
                Value::List(ids) => {
                    for (i, id) in ids.iter().enumerate() {
                        push(format!("{}[{i}]", v.path), id.as_str().unwrap_or_default());
                    }
                }
                _ => {}
            }
        });
        out
    }

    #[test]
    fn the_scan_finds_what_a_walk_of_the_descriptors_finds() {
        let entity = super::super::entity_message();
        let mut found = 0;
        for kind in ALL_KINDS {
            for last in [false, true] {
                let mut n = 0;
                let mut message = filled(&entity, last, &mut n);
                // Exactly this kind's spec.
                for other in ALL_KINDS {
                    if let Some(field) = entity.get_field_by_name(other.slug()) {
                        message.clear_field(&field);
                    }
                }
                let spec = entity.get_field_by_name(kind.slug()).unwrap();
                let FieldKind::Message(m) = spec.kind() else {
                    panic!("{} is not a message", kind.slug())
                };
                message.set_field(&spec, Value::Message(filled(&m, last, &mut n)));
                let typed: Entity = message.transcode_to().unwrap();
                assert_eq!(typed.kind(), kind);
                let scanned = typed.references();
                assert_eq!(scanned, walked(&typed), "{} (last: {last})", kind.slug());
                found += scanned.len();
            }
        }
        assert!(found > 2 * ALL_KINDS.len(), "only {found} references found");
    }
}

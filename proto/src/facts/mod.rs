//! Facts about the entity fields — `immutable`, `output_only`, `data_plane_only`, `reference`
//! and `required` — declared once as custom options on the fields
//! (`sluice/admin/v1/options.proto`) and read here from the compiled
//! descriptors, so that the server, the data plane and the Terraform
//! provider cannot disagree about them and a new field needs no code.

use std::{borrow::Cow, collections::HashMap, sync::OnceLock};

use prost::Message;
use prost_reflect::{
    DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind as FieldKind, MessageDescriptor,
    ReflectMessage, Value,
};

use crate::{
    admin::v1::{Entity, Kind},
    entity::ALL_KINDS,
};

mod references;

pub(crate) use references::of as references;

/// The full name of the entity message.
const ENTITY: &str = "sluice.admin.v1.Entity";

/// What the field options declare about one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldFacts {
    /// Fixed once the entity exists: updates may not change it, and a
    /// Terraform change replaces the resource.
    pub immutable: bool,
    /// Set by the server only.
    pub output_only: bool,
    /// Set by the server only in what data planes receive; not a
    /// Terraform attribute.
    pub data_plane_only: bool,
    /// Must be set whenever the message holding it is present.
    pub required: bool,
    /// The kinds a reference field may name; empty when the field is not a
    /// reference.
    pub reference: Vec<Kind>,
}

/// No facts: what every field without options has.
static NONE: FieldFacts = FieldFacts {
    immutable: false,
    output_only: false,
    data_plane_only: false,
    required: false,
    reference: Vec::new(),
};

impl FieldFacts {
    /// Whether the field carries no fact at all (most fields).
    pub fn is_empty(&self) -> bool {
        *self == NONE
    }
}

/// The facts of `field`; none for a field without options (or from
/// another descriptor pool).
pub fn of(field: &FieldDescriptor) -> &'static FieldFacts {
    all().get(field.full_name()).unwrap_or(&NONE)
}

/// Every field with facts in the admin API, by full field name, read once.
fn all() -> &'static HashMap<String, FieldFacts> {
    static ALL: OnceLock<HashMap<String, FieldFacts>> = OnceLock::new();
    ALL.get_or_init(|| {
        let pool = crate::descriptor_pool();
        let extension = |name: &str| pool.get_extension_by_name(&format!("sluice.admin.v1.{name}"));
        let options = Options {
            immutable: extension("immutable"),
            output_only: extension("output_only"),
            data_plane_only: extension("data_plane_only"),
            reference: extension("reference"),
            required: extension("required"),
        };
        pool.all_messages()
            .flat_map(|message| message.fields().collect::<Vec<_>>())
            .map(|field| (field.full_name().to_string(), options.read(&field)))
            .filter(|(_, facts)| !facts.is_empty())
            .collect()
    })
}

/// The extensions declared in `options.proto`.
struct Options {
    immutable: Option<ExtensionDescriptor>,
    output_only: Option<ExtensionDescriptor>,
    data_plane_only: Option<ExtensionDescriptor>,
    reference: Option<ExtensionDescriptor>,
    required: Option<ExtensionDescriptor>,
}

impl Options {
    fn read(&self, field: &FieldDescriptor) -> FieldFacts {
        let options = field.options();
        let get = |extension: &Option<ExtensionDescriptor>| {
            extension
                .as_ref()
                .filter(|e| options.has_extension(e))
                .map(|e| options.get_extension(e).into_owned())
        };
        let flag = |extension| get(extension).and_then(|v| v.as_bool()) == Some(true);
        let mut reference = Vec::new();
        if let Some(Value::Message(target)) = get(&self.reference) {
            let listed = target.get_field_by_name("kinds");
            let listed = listed
                .as_ref()
                .and_then(|v| v.as_list())
                .unwrap_or_default();
            reference.extend(
                listed
                    .iter()
                    .filter_map(Value::as_enum_number)
                    .filter_map(|n| Kind::try_from(n).ok()),
            );
            let any_policy = target
                .get_field_by_name("any_virtual_cluster_policy")
                .and_then(|v| v.as_bool())
                == Some(true);
            if any_policy {
                reference.extend(
                    ALL_KINDS
                        .into_iter()
                        .filter(|k| k.is_virtual_cluster_policy() && !reference.contains(k))
                        .collect::<Vec<_>>(),
                );
            }
        }
        FieldFacts {
            immutable: flag(&self.immutable),
            output_only: flag(&self.output_only),
            data_plane_only: flag(&self.data_plane_only),
            required: flag(&self.required),
            reference,
        }
    }
}

/// The descriptor of `sluice.admin.v1.Entity`.
pub fn entity_message() -> MessageDescriptor {
    crate::descriptor_pool()
        .get_message_by_name(ENTITY)
        .unwrap_or_else(|| panic!("{ENTITY} is missing from the descriptors compiled in"))
}

/// The message of `kind`'s spec: the member of `Entity.spec` named by the
/// kind's slug (None for `Kind::Unspecified`).
pub fn spec_message(kind: Kind) -> Option<MessageDescriptor> {
    match entity_message().get_field_by_name(kind.slug())?.kind() {
        FieldKind::Message(m) => Some(m),
        _ => None,
    }
}

/// An entity as a dynamic message, to walk its fields by descriptor.
pub fn to_dynamic(entity: &Entity) -> Result<DynamicMessage, prost::DecodeError> {
    DynamicMessage::decode(entity_message(), entity.encode_to_vec().as_slice())
}

/// One field of an entity met by [`walk`]: a field with facts, set or not,
/// in a message that is present.
#[derive(Debug)]
pub struct Visit<'a> {
    /// The attribute path, relative to the kind's spec for spec fields
    /// (`port_mapping.destination_id`, `key_sources[0].static_key_id`) and
    /// the field name for the common ones (`gateway_id`).
    pub path: String,
    /// The field.
    pub field: &'a FieldDescriptor,
    /// What the options declare about it.
    pub facts: &'static FieldFacts,
    /// Whether the field is set (a list: non-empty; a scalar without
    /// presence: not its default).
    pub set: bool,
    /// Its value (the default when unset).
    pub value: &'a Value,
}

/// Calls `f` for every field that carries facts in a dynamic `Entity`: the
/// common fields and, below the spec that is set, every message present
/// (list items included, oneof members not chosen skipped), each field
/// before what it holds, in field-number order.
pub fn walk(entity: &DynamicMessage, f: &mut dyn FnMut(Visit<'_>)) {
    walk_message(entity, "", true, f);
}

fn walk_message(
    message: &DynamicMessage,
    prefix: &str,
    entity: bool,
    f: &mut dyn FnMut(Visit<'_>),
) {
    for field in message.descriptor().fields() {
        let set = message.has_field(&field);
        if field.containing_oneof().is_some() && !set {
            continue;
        }
        let value: Cow<'_, Value> = message.get_field(&field);
        if entity && field.containing_oneof().is_some() {
            // The spec: paths start below it.
            if let Value::Message(spec) = value.as_ref() {
                walk_message(spec, "", false, f);
            }
            continue;
        }
        let path = if prefix.is_empty() {
            field.name().to_string()
        } else {
            format!("{prefix}.{}", field.name())
        };
        let facts = of(&field);
        if !facts.is_empty() {
            f(Visit {
                path: path.clone(),
                field: &field,
                facts,
                set,
                value: &value,
            });
        }
        if field.is_map() {
            continue;
        }
        match value.as_ref() {
            Value::Message(inner) if set => walk_message(inner, &path, false, f),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item {
                        walk_message(inner, &format!("{path}[{i}]"), false, f);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message an entity can hold, from `Entity` down.
    fn model_messages() -> Vec<MessageDescriptor> {
        let mut seen: Vec<MessageDescriptor> = vec![entity_message()];
        let mut i = 0;
        while let Some(message) = seen.get(i).cloned() {
            for field in message.fields() {
                if let FieldKind::Message(m) = field.kind()
                    && m.package_name() == "sluice.admin.v1"
                    && !seen.contains(&m)
                {
                    seen.push(m);
                }
            }
            i += 1;
        }
        seen
    }

    #[test]
    fn every_reference_shaped_field_declares_its_targets() {
        let mut checked = 0;
        for message in model_messages() {
            for field in message.fields() {
                let name = field.name();
                let shaped = (name.ends_with("_id") || name.ends_with("_ids"))
                    && matches!(field.kind(), FieldKind::String)
                    && field.full_name() != "sluice.admin.v1.Entity.id";
                let facts = of(&field);
                if shaped {
                    checked += 1;
                    assert!(
                        !facts.reference.is_empty(),
                        "{} looks like a reference (a string ending in _id/_ids) but has no \
                         `(reference)` option naming its target kinds",
                        field.full_name()
                    );
                }
                if !facts.reference.is_empty() {
                    assert!(
                        matches!(field.kind(), FieldKind::String),
                        "{} is declared a reference but does not hold ids",
                        field.full_name()
                    );
                    assert!(
                        !facts.reference.contains(&Kind::Unspecified),
                        "{} may name an unspecified kind",
                        field.full_name()
                    );
                }
            }
        }
        // gateway_id, 9 policies x 2, 2 listener_ids, 2 destination_ids,
        // trust_bundle_ids and 2 static_key_ids.
        assert_eq!(checked, 26);
    }

    #[test]
    fn options_survive_into_the_compiled_descriptors() {
        let policy = spec_message(Kind::ClusterPolicyAcls).unwrap();
        let vc = of(&policy.get_field_by_name("virtual_cluster_id").unwrap());
        assert_eq!(
            *vc,
            FieldFacts {
                immutable: true,
                output_only: false,
                data_plane_only: false,
                required: true,
                reference: vec![Kind::VirtualCluster],
            }
        );
        let principal = crate::descriptor_pool()
            .get_message_by_name("sluice.admin.v1.Principal")
            .unwrap();
        let hash = of(&principal.get_field_by_name("password_hash").unwrap());
        assert!(hash.data_plane_only && hash.output_only, "{hash:?}");
        let parent = of(&policy.get_field_by_name("parent_policy_id").unwrap());
        let policies: Vec<Kind> = ALL_KINDS
            .into_iter()
            .filter(|k| k.is_virtual_cluster_policy())
            .collect();
        assert_eq!(parent.reference, policies);
        let gateway = spec_message(Kind::Gateway).unwrap();
        assert!(gateway.fields().all(|f| of(&f).output_only));
        assert!(of(&entity_message().get_field_by_name("description").unwrap()).is_empty());
    }

    #[test]
    fn a_walk_skips_what_is_not_set_and_indexes_lists() {
        use crate::admin::v1::{ConsumePolicyDecrypt, KeySource, Secret, StaticKey, entity::Spec};
        let entity = Entity {
            gateway_id: "gw".into(),
            spec: Some(Spec::ConsumePolicyDecrypt(ConsumePolicyDecrypt {
                virtual_cluster_id: "vc".into(),
                key_sources: vec![
                    KeySource::default(),
                    KeySource {
                        static_key_id: "k".into(),
                    },
                ],
                ..Default::default()
            })),
            ..Default::default()
        };
        let mut seen = Vec::new();
        walk(&to_dynamic(&entity).unwrap(), &mut |v| {
            seen.push((v.path, v.set))
        });
        assert_eq!(
            seen,
            [
                ("gateway_id".to_string(), true),
                ("name".to_string(), false),
                ("revision".to_string(), false),
                ("created_at".to_string(), false),
                ("updated_at".to_string(), false),
                ("virtual_cluster_id".to_string(), true),
                ("parent_policy_id".to_string(), false),
                ("key_sources[0].static_key_id".to_string(), false),
                ("key_sources[1].static_key_id".to_string(), true),
            ]
        );
        let key = Entity {
            spec: Some(Spec::StaticKey(StaticKey {
                value: Some(Secret::default()),
            })),
            ..Default::default()
        };
        let mut seen = Vec::new();
        walk(&to_dynamic(&key).unwrap(), &mut |v| {
            seen.push((v.path, v.set))
        });
        assert!(seen.contains(&("value".to_string(), true)), "{seen:?}");
        assert!(
            seen.contains(&("value.fingerprint".to_string(), false)),
            "{seen:?}"
        );
    }
}

//! Where each secret of an entity is, found through the descriptors by its
//! type (`sluice.admin.v1.Secret`), so a new secret field anywhere in the
//! model is handled without code here.
//!
//! A secret is stored under its path, and an update that leaves a secret
//! empty keeps the one stored at the same path. List items are therefore
//! named by what identifies them, not by their position, so reordering a
//! list keeps each item's own secret: a principal by its username, a
//! certificate and key pair by its certificate, an authentication rule by
//! its method, a map entry (a webhook header) by its key. Anything else
//! falls back to its position.

use std::collections::HashMap;

use anyhow::Context;
use prost::Message;
use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value};
use sha2::{Digest, Sha256};
use sluice_proto::admin::v1::{Entity, Secret};

const SECRET_TYPE: &str = "sluice.admin.v1.Secret";
const ENTITY_TYPE: &str = "sluice.admin.v1.Entity";

/// List items identified by one of their fields: (message, field).
const ITEM_KEYS: &[(&str, &str)] = &[
    ("sluice.admin.v1.Principal", "username"),
    ("sluice.admin.v1.CertificateAndKey", "certificate"),
];

/// How list items are named in paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// By what identifies them (`principals[username=alice].password`).
    Stable,
    /// By position (`principals[0].password`): how secrets were stored
    /// before, read once to move them to stable paths.
    Position,
}

/// Calls `f` with the path (relative to the kind's spec) and value of every
/// `Secret` set in the entity, letting it change them.
pub fn for_each_secret(
    entity: &mut Entity,
    naming: Naming,
    mut f: impl FnMut(&str, &mut Secret),
) -> anyhow::Result<()> {
    let pool = sluice_proto::descriptor_pool();
    let descriptor = pool
        .get_message_by_name(ENTITY_TYPE)
        .context("Entity descriptor missing")?;
    let mut dynamic = DynamicMessage::decode(descriptor, entity.encode_to_vec().as_slice())?;
    let mut changed = false;
    for (field, value) in dynamic.fields_mut() {
        // Only the spec oneof holds secrets; paths start below it.
        if field.containing_oneof().is_some() {
            walk(value, "", naming, &mut |path, secret| {
                changed = true;
                f(path, secret)
            })?;
        }
    }
    if changed {
        *entity = dynamic.transcode_to()?;
    }
    Ok(())
}

fn walk(
    value: &mut Value,
    path: &str,
    naming: Naming,
    f: &mut dyn FnMut(&str, &mut Secret),
) -> anyhow::Result<()> {
    match value {
        Value::Message(message) if message.descriptor().full_name() == SECRET_TYPE => {
            let mut secret: Secret = message.transcode_to()?;
            f(path, &mut secret);
            message.clear();
            message.transcode_from(&secret)?;
        }
        Value::Message(message) => {
            for (field, child) in message.fields_mut() {
                walk(child, &join(path, field.name()), naming, f)?;
            }
        }
        Value::List(items) => {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for (i, item) in items.iter_mut().enumerate() {
                let name = match naming {
                    Naming::Stable => stable_name(item, i, &mut seen),
                    Naming::Position => i.to_string(),
                };
                walk(item, &format!("{path}[{name}]"), naming, f)?;
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries.iter_mut() {
                let key = match key {
                    MapKey::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                walk(item, &format!("{path}[{key}]"), naming, f)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The name of a list item: `field=value` for the items of [`ITEM_KEYS`]
/// (a long value as a digest), the set method of a message that is a
/// oneof, else its position; a name seen before in the same list gets
/// `#2`, `#3`, ...
fn stable_name(item: &Value, position: usize, seen: &mut HashMap<String, usize>) -> String {
    let Some(message) = item.as_message() else {
        return position.to_string();
    };
    let descriptor = message.descriptor();
    let keyed = ITEM_KEYS
        .iter()
        .find(|(m, _)| *m == descriptor.full_name())
        .and_then(|(_, field)| {
            let value = message.get_field_by_name(field)?;
            let text = value.as_str()?.trim();
            (!text.is_empty()).then(|| format!("{field}={}", short(text)))
        });
    let method = || {
        descriptor.oneofs().find_map(|oneof| {
            oneof
                .fields()
                .find(|f| message.has_field(f))
                .map(|f| f.name().to_string())
        })
    };
    let Some(name) = keyed.or_else(method) else {
        return position.to_string();
    };
    let count = seen.entry(name.clone()).or_default();
    *count += 1;
    if *count == 1 {
        name
    } else {
        format!("{name}#{count}")
    }
}

/// A value fit for a path: itself when short and plain, else a digest.
fn short(text: &str) -> String {
    let plain = text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_@+:".contains(c));
    if plain {
        text.to_string()
    } else {
        format!(
            "sha256:{}",
            &hex::encode(Sha256::digest(text.as_bytes()))[..16]
        )
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

//! Terraform values ↔ admin API entities, driven by the schema and the
//! protobuf descriptors (so no resource has hand-written mapping code).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use prost::Message;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind as FieldKind, MapKey, MessageDescriptor, ReflectMessage,
    Value as PValue,
};
use sluice_proto::admin::v1::Entity;

use crate::{
    plugin::value::Value,
    schema::{Attr, ResourceSchema, Source},
};

fn enum_prefix(e: &prost_reflect::EnumDescriptor) -> String {
    e.values()
        .find(|v| v.number() == 0)
        .map(|v| v.name().trim_end_matches("UNSPECIFIED").to_string())
        .unwrap_or_default()
}

fn enum_slug(field: &FieldDescriptor, number: i32) -> Value {
    let FieldKind::Enum(e) = field.kind() else {
        return Value::Null;
    };
    match e.get_value(number) {
        Some(v) if number != 0 => Value::String(
            v.name()
                .trim_start_matches(&enum_prefix(&e))
                .to_ascii_lowercase(),
        ),
        _ => Value::String(String::new()),
    }
}

fn enum_number(field: &FieldDescriptor, slug: &str) -> anyhow::Result<i32> {
    let FieldKind::Enum(e) = field.kind() else {
        bail!("not an enum")
    };
    let wanted = format!("{}{}", enum_prefix(&e), slug.to_ascii_uppercase());
    match e.get_value_by_name(&wanted) {
        Some(v) if v.number() != 0 => Ok(v.number()),
        _ if slug.is_empty() => Ok(0),
        _ => {
            let prefix = enum_prefix(&e);
            let choices: Vec<String> = e
                .values()
                .filter(|v| v.number() != 0)
                .map(|v| v.name().trim_start_matches(&prefix).to_ascii_lowercase())
                .collect();
            bail!("{slug:?} is not one of {}", choices.join(", "))
        }
    }
}

fn scalar_to_proto(field: &FieldDescriptor, v: &Value) -> anyhow::Result<Option<PValue>> {
    Ok(Some(match (field.kind(), v) {
        (_, Value::Null | Value::Unknown) => return Ok(None),
        (FieldKind::String, Value::String(s)) => PValue::String(s.clone()),
        (FieldKind::Bool, Value::Bool(b)) => PValue::Bool(*b),
        (FieldKind::Int32, Value::Number(n)) => PValue::I32(whole(*n)?),
        (FieldKind::Int64, Value::Number(n)) => PValue::I64(whole(*n)?),
        (FieldKind::Uint32, Value::Number(n)) => PValue::U32(whole(*n)?),
        (FieldKind::Uint64, Value::Number(n)) => PValue::U64(whole(*n)?),
        (FieldKind::Enum(_), Value::String(s)) => PValue::EnumNumber(enum_number(field, s)?),
        (k, v) => bail!("{v:?} does not fit a {k:?} field"),
    }))
}

/// `n` as a whole number that fits `T`, or why not (never truncated or
/// clamped: `30.7` or `-1` are refused, not stored as 30 or 0).
fn whole<T: TryFrom<i128>>(n: f64) -> anyhow::Result<T> {
    let refused = || {
        let ty = std::any::type_name::<T>();
        anyhow::anyhow!("{n} is not a whole number that fits this field ({ty})")
    };
    // 2^64 and beyond fit no field; i128 holds every f64 below it exactly.
    if n.fract() != 0.0 || !n.is_finite() || n.abs() >= 18_446_744_073_709_551_616.0 {
        return Err(refused());
    }
    T::try_from(n as i128).map_err(|_| refused())
}

/// Fills `message` from an object value, attribute by attribute.
fn fill(
    message: &mut DynamicMessage,
    attrs: &[Attr],
    object: &Value,
    path: &str,
) -> anyhow::Result<()> {
    let descriptor = message.descriptor();
    for attr in attrs {
        let at = if path.is_empty() {
            attr.name.clone()
        } else {
            format!("{path}.{}", attr.name)
        };
        let v = object.get(&attr.name);
        if matches!(v, Value::Null | Value::Unknown) || attr.is_output() {
            continue;
        }
        match &attr.source {
            Source::Common
            | Source::ProviderOnly
            | Source::SecretFingerprint(_)
            | Source::SecretMapFingerprint(_) => {}
            Source::SecretMapValue(name) => {
                let field = descriptor
                    .get_field_by_name(name)
                    .with_context(|| format!("{at}: no such field"))?;
                let (FieldKind::Message(entry), Value::Map(values)) = (field.kind(), v) else {
                    continue;
                };
                let FieldKind::Message(secret) = entry.map_entry_value_field().kind() else {
                    continue;
                };
                let mut map = HashMap::new();
                for (key, value) in values {
                    let mut s = DynamicMessage::new(secret.clone());
                    s.set_field_by_name(
                        "value",
                        PValue::String(value.as_str().unwrap_or_default().to_string()),
                    );
                    map.insert(MapKey::String(key.clone()), PValue::Message(s));
                }
                message.set_field(&field, PValue::Map(map));
            }
            Source::SecretValue(name) => {
                let field = descriptor
                    .get_field_by_name(name)
                    .with_context(|| format!("{at}: no such field"))?;
                let FieldKind::Message(secret) = field.kind() else {
                    continue;
                };
                let mut s = DynamicMessage::new(secret);
                s.set_field_by_name(
                    "value",
                    PValue::String(v.as_str().unwrap_or_default().to_string()),
                );
                message.set_field(&field, PValue::Message(s));
            }
            Source::Field => {
                let field = descriptor
                    .get_field_by_name(&attr.name)
                    .with_context(|| format!("{at}: no such field"))?;
                let value = to_proto_value(&field, attr, v, &at)?;
                if let Some(value) = value {
                    message.set_field(&field, value);
                }
            }
        }
    }
    Ok(())
}

fn to_proto_value(
    field: &FieldDescriptor,
    attr: &Attr,
    v: &Value,
    at: &str,
) -> anyhow::Result<Option<PValue>> {
    match (field.kind(), &attr.nested, v) {
        (FieldKind::Message(m), Some((_, inner)), Value::List(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let mut child = DynamicMessage::new(m.clone());
                fill(&mut child, inner, item, &format!("{at}[{i}]"))?;
                out.push(PValue::Message(child));
            }
            Ok(Some(PValue::List(out)))
        }
        (FieldKind::Message(m), Some((_, inner)), object) => {
            let mut child = DynamicMessage::new(m);
            fill(&mut child, inner, object, at)?;
            Ok(Some(PValue::Message(child)))
        }
        (_, None, Value::Map(entries)) if field.is_map() => {
            let map: HashMap<MapKey, PValue> = entries
                .iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .map(|s| (MapKey::String(k.clone()), PValue::String(s.to_string())))
                })
                .collect();
            Ok(Some(PValue::Map(map)))
        }
        (_, None, Value::List(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if let Some(p) =
                    scalar_to_proto(field, item).with_context(|| format!("{at}[{i}]"))?
                {
                    out.push(p);
                }
            }
            Ok(Some(PValue::List(out)))
        }
        _ => scalar_to_proto(field, v).with_context(|| at.to_string()),
    }
}

/// The entity a resource value describes (unknown and null values left unset).
pub fn to_entity(schema: &ResourceSchema, value: &Value) -> anyhow::Result<Entity> {
    let pool = sluice_proto::descriptor_pool();
    let entity_desc = pool
        .get_message_by_name("sluice.admin.v1.Entity")
        .context("Entity descriptor")?;
    let spec_field = entity_desc
        .get_field_by_name(schema.kind.slug())
        .context("spec field")?;
    let FieldKind::Message(spec_desc) = spec_field.kind() else {
        bail!("spec is not a message")
    };
    let mut spec = DynamicMessage::new(spec_desc);
    fill(&mut spec, &schema.attrs, value, "")?;
    let mut entity = DynamicMessage::new(entity_desc);
    entity.set_field(&spec_field, PValue::Message(spec));
    let mut entity: Entity = entity.transcode_to()?;
    let text = |name: &str| value.get(name).as_str().unwrap_or_default().to_string();
    entity.id = text("id");
    entity.gateway_id = text("gateway_id");
    entity.name = text("name");
    entity.description = text("description");
    if let Value::Map(labels) = value.get("labels") {
        entity.labels = labels
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
    }
    Ok(entity)
}

fn timestamp(t: Option<&prost_types::Timestamp>) -> Value {
    let Some(t) = t else { return Value::Null };
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(t.seconds) else {
        return Value::Null;
    };
    let dt = dt + time::Duration::nanoseconds(i64::from(t.nanos));
    dt.format(&time::format_description::well_known::Rfc3339)
        .map_or(Value::Null, Value::String)
}

fn scalar_from_proto(field: &FieldDescriptor, v: &PValue) -> Value {
    match v {
        PValue::String(s) => Value::String(s.clone()),
        PValue::Bool(b) => Value::Bool(*b),
        PValue::I32(n) => Value::Number(f64::from(*n)),
        PValue::I64(n) => Value::Number(*n as f64),
        PValue::U32(n) => Value::Number(f64::from(*n)),
        PValue::U64(n) => Value::Number(*n as f64),
        PValue::EnumNumber(n) => enum_slug(field, *n),
        _ => Value::Null,
    }
}

fn read(message: &DynamicMessage, attrs: &[Attr]) -> BTreeMap<String, Value> {
    let descriptor: MessageDescriptor = message.descriptor();
    let mut out = BTreeMap::new();
    for attr in attrs {
        let value = match &attr.source {
            Source::Common | Source::ProviderOnly => continue,
            Source::SecretValue(_) | Source::SecretMapValue(_) => Value::Null,
            Source::SecretMapFingerprint(name) => match descriptor
                .get_field_by_name(name)
                .map(|f| message.get_field(&f))
                .as_deref()
            {
                Some(PValue::Map(entries)) if !entries.is_empty() => Value::Map(
                    entries
                        .iter()
                        .filter_map(|(k, v)| match (k, v) {
                            (MapKey::String(k), PValue::Message(s)) => Some((
                                k.clone(),
                                s.get_field_by_name("fingerprint")
                                    .and_then(|f| f.as_str().map(str::to_string))
                                    .map_or(Value::Null, Value::String),
                            )),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => Value::Null,
            },
            Source::SecretFingerprint(name) => descriptor
                .get_field_by_name(name)
                .filter(|f| message.has_field(f))
                .and_then(|f| match message.get_field(&f).as_ref() {
                    PValue::Message(s) => s
                        .get_field_by_name("fingerprint")
                        .and_then(|v| v.as_str().map(str::to_string)),
                    _ => None,
                })
                .map_or(Value::Null, Value::String),
            Source::Field => {
                let Some(field) = descriptor.get_field_by_name(&attr.name) else {
                    continue;
                };
                from_field(message, &field, attr)
            }
        };
        out.insert(attr.name.clone(), value);
    }
    out
}

fn from_field(message: &DynamicMessage, field: &FieldDescriptor, attr: &Attr) -> Value {
    let present = message.has_field(field);
    let v = message.get_field(field);
    match (field.kind(), &attr.nested, v.as_ref()) {
        (FieldKind::Message(m), _, _) if m.full_name() == "google.protobuf.Timestamp" => {
            if !present {
                return Value::Null;
            }
            let t = match v.as_ref() {
                PValue::Message(t) => t.transcode_to::<prost_types::Timestamp>().ok(),
                _ => None,
            };
            timestamp(t.as_ref())
        }
        (_, Some((_, inner)), PValue::List(items)) => Value::List(
            items
                .iter()
                .filter_map(|i| match i {
                    PValue::Message(m) => Some(Value::Map(read(m, inner))),
                    _ => None,
                })
                .collect(),
        ),
        (_, Some((_, inner)), PValue::Message(m)) => {
            if present {
                Value::Map(read(m, inner))
            } else {
                Value::Null
            }
        }
        (_, None, PValue::Map(entries)) => Value::Map(
            entries
                .iter()
                .filter_map(|(k, v)| match (k, v) {
                    (MapKey::String(k), PValue::String(s)) => {
                        Some((k.clone(), Value::String(s.clone())))
                    }
                    _ => None,
                })
                .collect(),
        ),
        (_, None, PValue::List(items)) => {
            Value::List(items.iter().map(|i| scalar_from_proto(field, i)).collect())
        }
        _ if field.supports_presence() && !present => Value::Null,
        (_, None, scalar) => scalar_from_proto(field, scalar),
        _ => Value::Null,
    }
}

/// The resource value of an entity; secret values are null (the caller
/// decides what to keep, see [`keep_secrets`]).
pub fn to_value(schema: &ResourceSchema, entity: &Entity) -> anyhow::Result<Value> {
    let pool = sluice_proto::descriptor_pool();
    let entity_desc = pool
        .get_message_by_name("sluice.admin.v1.Entity")
        .context("Entity descriptor")?;
    let dynamic = DynamicMessage::decode(entity_desc, entity.encode_to_vec().as_slice())?;
    let spec = match dynamic.get_field_by_name(schema.kind.slug()).as_deref() {
        Some(PValue::Message(m)) => m.clone(),
        _ => bail!(
            "the server returned a {} instead of a {}",
            entity.kind().slug(),
            schema.kind.slug()
        ),
    };
    let mut out = read(&spec, &schema.attrs);
    let text = |s: &str| Value::String(s.to_string());
    out.insert("id".into(), text(&entity.id));
    if out.contains_key("gateway_id") || schema.attrs.iter().any(|a| a.name == "gateway_id") {
        out.insert("gateway_id".into(), text(&entity.gateway_id));
    }
    out.insert("name".into(), text(&entity.name));
    out.insert("description".into(), text(&entity.description));
    out.insert(
        "labels".into(),
        Value::Map(
            entity
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
        ),
    );
    out.insert("created_at".into(), timestamp(entity.created_at.as_ref()));
    out.insert("updated_at".into(), timestamp(entity.updated_at.as_ref()));
    Ok(Value::Map(out))
}

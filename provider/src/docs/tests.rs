use std::{collections::BTreeMap, path::Path};

use prost_reflect::{EnumDescriptor, Kind as FieldKind, MessageDescriptor};
use sluice_proto::{admin::v1::Kind, facts, tfplugin6};

use super::{enum_values, import_id, render};
use crate::{
    convert::to_entity,
    plugin::value::Value,
    provider::SluiceProvider,
    schema::{Attr, Nesting, ResourceSchema, Source},
};

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn checked_in_docs_are_current() {
    let root = root();
    let mut stale = Vec::new();
    for (path, contents) in render(&root) {
        if std::fs::read_to_string(root.join(&path)).ok().as_deref() != Some(contents.as_str()) {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale docs {stale:?}: run `cargo run -p terraform-provider-sluice --bin sluice-provider-docs`"
    );
}

#[test]
fn every_page_has_registry_frontmatter() {
    for (path, page) in render(&root()) {
        let Some(rest) = page.strip_prefix("---\n") else {
            panic!("{path}: no frontmatter");
        };
        let (head, _) = rest.split_once("\n---\n").expect("frontmatter closes");
        for key in ["page_title: \"", "subcategory: \"", "description: |-\n  "] {
            assert!(head.contains(key), "{path}: no {key:?} in {head}");
        }
        let description = head.split("description: |-\n  ").nth(1).unwrap_or_default();
        assert!(!description.trim().is_empty(), "{path}: empty description");
    }
}

/// Every served attribute (nested ones included) with an empty description.
fn undescribed(prefix: &str, attrs: &[tfplugin6::schema::Attribute], out: &mut Vec<String>) {
    for a in attrs {
        let path = format!("{prefix}.{}", a.name);
        if a.description.trim().is_empty() {
            out.push(path.clone());
        }
        if let Some(nested) = &a.nested_type {
            undescribed(&path, &nested.attributes, out);
        }
    }
}

#[test]
fn every_attribute_has_a_description() {
    // What Terraform itself is served (`terraform providers schema -json`).
    let schema = SluiceProvider::default().schema();
    let mut empty = Vec::new();
    let blocks = schema
        .resource_schemas
        .iter()
        .chain(&schema.data_source_schemas)
        .map(|(n, s)| (n.clone(), s))
        .chain(schema.provider.as_ref().map(|p| ("provider".into(), p)));
    let mut seen = 0;
    for (name, s) in blocks {
        let block = s.block.as_ref().expect("block");
        undescribed(&name, &block.attributes, &mut empty);
        seen += 1;
    }
    assert!(seen > 20, "only {seen} schemas");
    assert!(
        empty.is_empty(),
        "attributes without a description: {empty:#?}"
    );
}

/// An enum attribute, where it sits: the nested attributes above it (name,
/// whether a list) and the enum.
struct EnumAttr<'a> {
    above: Vec<(String, bool)>,
    attr: &'a Attr,
    values: EnumDescriptor,
}

fn enum_attrs<'a>(
    attrs: &'a [Attr],
    message: &MessageDescriptor,
    above: &[(String, bool)],
    out: &mut Vec<EnumAttr<'a>>,
) {
    for attr in attrs.iter().filter(|a| a.source == Source::Field) {
        let Some(field) = message.get_field_by_name(&attr.name) else {
            continue;
        };
        match (field.kind(), &attr.nested) {
            (FieldKind::Enum(values), _) => out.push(EnumAttr {
                above: above.to_vec(),
                attr,
                values,
            }),
            (FieldKind::Message(inner), Some((nesting, nested))) => {
                let mut path = above.to_vec();
                path.push((attr.name.clone(), *nesting == Nesting::List));
                enum_attrs(nested, &inner, &path, out);
            }
            _ => {}
        }
    }
}

fn enums_of(kind: Kind, attrs: &[Attr]) -> Vec<EnumAttr<'_>> {
    let mut out = Vec::new();
    enum_attrs(attrs, &facts::spec_message(kind).unwrap(), &[], &mut out);
    out
}

/// A resource value setting only `e` (to `slug`), nested as the schema
/// nests it.
fn value_with(e: &EnumAttr<'_>, slug: &str) -> Value {
    let leaf = Value::String(slug.into());
    let leaf = if matches!(e.attr.ty, crate::plugin::value::Type::List(_)) {
        Value::List(vec![leaf])
    } else {
        leaf
    };
    let mut v = Value::Map(BTreeMap::from([(e.attr.name.clone(), leaf)]));
    for (name, list) in e.above.iter().rev() {
        let inner = if *list { Value::List(vec![v]) } else { v };
        v = Value::Map(BTreeMap::from([(name.clone(), inner)]));
    }
    v
}

#[test]
fn enum_attributes_list_every_value() {
    let provider = SluiceProvider::default();
    let mut checked = 0;
    let mut missing = Vec::new();
    let data_sources = provider
        .data_sources()
        .values()
        .filter_map(|d| d.entity.as_ref().map(|e| (e.kind, &d.attrs)));
    let resources = provider.resources().values().map(|s| (s.kind, &s.attrs));
    for (kind, attrs) in resources.chain(data_sources) {
        for e in enums_of(kind, attrs) {
            checked += 1;
            for value in enum_values(&e.values) {
                if !e.attr.description.contains(&format!("`{value}`")) {
                    missing.push(format!("{}.{}: {value}", kind.slug(), e.attr.name));
                }
            }
        }
    }
    // acl_mode, algorithms, modes, failure modes, ACL rule fields, ...
    assert!(checked > 20, "only {checked} enum attributes found");
    assert!(missing.is_empty(), "values not described: {missing:#?}");
}

/// The listed values are exactly what the provider accepts: each converts,
/// and a wrong one is refused naming the same list (convert's own).
#[test]
fn listed_enum_values_are_the_ones_convert_accepts() {
    let provider = SluiceProvider::default();
    let check = |schema: &ResourceSchema, e: &EnumAttr<'_>| {
        let listed = enum_values(&e.values);
        assert!(!listed.is_empty(), "{}", e.attr.name);
        for slug in &listed {
            if let Err(err) = to_entity(schema, &value_with(e, slug)) {
                panic!("{} {}={slug}: {err:#}", schema.type_name, e.attr.name);
            }
        }
        let err = to_entity(schema, &value_with(e, "no-such-value"))
            .map(|_| ())
            .expect_err("a wrong value converts");
        let text = format!("{err:#}");
        let accepted = text.split("is not one of ").nth(1).unwrap_or_default();
        assert_eq!(accepted, listed.join(", "), "{}: {text}", e.attr.name);
    };
    let mut checked = 0;
    for schema in provider.resources().values() {
        for e in enums_of(schema.kind, &schema.attrs) {
            check(schema, &e);
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked}");
}

#[test]
fn every_resource_has_an_import_example() {
    let root = root();
    let pages = render(&root);
    for (name, schema) in SluiceProvider::default().resources() {
        let dir = root.join("examples/resources").join(name);
        let script = std::fs::read_to_string(dir.join("import.sh"))
            .unwrap_or_else(|e| panic!("{name}: import.sh: {e}"));
        let id = import_id(schema.kind);
        let command = format!("terraform import {name}.example '{id}'");
        assert!(
            script.contains(&command),
            "{name}: {script} lacks {command}"
        );
        let page = &pages[&format!("docs/resources/{}.md", name.trim_start_matches("sluice_"))];
        let block = format!("import {{\n  to = {name}.example\n  id = \"{id}\"\n}}");
        for part in [block.as_str(), command.as_str(), "## Example Usage"] {
            assert!(page.contains(part), "{name} page lacks {part}");
        }
    }
}

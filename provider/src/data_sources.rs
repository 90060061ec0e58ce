//! Data sources: `sluice_gateway` (by id or name), `sluice_virtual_cluster`
//! (by gateway and name), `sluice_data_plane_nodes` (a gateway's nodes)
//! and `sluice_diagnosis` (a client's path checked, in `diagnosis`).

use std::collections::BTreeMap;

use sluice_proto::admin::v1::{Kind, ListDataPlaneNodesRequest, ListEntitiesRequest};

use crate::{
    client::Admin,
    convert::to_value,
    diagnosis,
    diagnostics::{attribute_path, diagnostic, status_diagnostics},
    plugin::value::{Type, Value},
    schema::{self, Attr, Nesting, ResourceSchema, Source},
};
use sluice_proto::tfplugin6::Diagnostic;

/// A data source's schema.
pub struct DataSource {
    /// `sluice_...`
    pub type_name: String,
    /// Its attributes.
    pub attrs: Vec<Attr>,
    /// The object type.
    pub ty: Type,
    /// The resource schema it reads through, if any.
    pub entity: Option<ResourceSchema>,
}

fn all_computed(attrs: &mut [Attr]) {
    for a in attrs {
        a.required = false;
        a.optional = false;
        a.computed = true;
        // Data sources have no write-only attributes (secrets read null).
        a.write_only = false;
        // Reading replaces nothing.
        a.replaces = false;
        if let Some((_, inner)) = a.nested.as_mut() {
            all_computed(inner);
        }
    }
}

fn lookup(entity: ResourceSchema, keys: &[(&str, bool)]) -> DataSource {
    let mut attrs = entity.attrs.clone();
    all_computed(&mut attrs);
    for a in attrs.iter_mut() {
        if let Some((_, required)) = keys.iter().find(|(k, _)| *k == a.name) {
            a.required = *required;
            a.optional = !*required;
            a.computed = !*required;
        }
    }
    DataSource {
        type_name: entity.type_name.clone(),
        ty: entity.ty.clone(),
        attrs,
        entity: Some(entity),
    }
}

fn simple(name: &str, ty: Type) -> Attr {
    let mut a = schema::resource(Kind::Gateway).attrs.remove(0);
    a.name = name.into();
    a.ty = ty;
    a.source = Source::Common;
    a.description = crate::docs::data_plane_node_attr(name).into();
    a
}

/// A list-nested attribute `name` of objects with `fields`.
fn nested_list(name: &str, fields: &[(&str, Type)]) -> Attr {
    let inner: Vec<Attr> = fields.iter().map(|(n, t)| simple(n, t.clone())).collect();
    let object = Type::Object(
        inner
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect(),
    );
    let mut list = simple(name, Type::List(Box::new(object)));
    list.nested = Some((Nesting::List, inner));
    list
}

fn nodes() -> DataSource {
    let fields = [
        ("id", Type::String),
        ("hostname", Type::String),
        ("version", Type::String),
        ("connected", Type::Bool),
        ("last_seen_at", Type::String),
        ("applied_revision", Type::Number),
        ("applied_at", Type::String),
        ("rejected_revision", Type::Number),
        ("rejected_reason", Type::String),
    ];
    let mut inner: Vec<Attr> = fields.iter().map(|(n, t)| simple(n, t.clone())).collect();
    inner.push(nested_list(
        "policy_outcomes",
        &[
            ("policy_id", Type::String),
            ("outcome", Type::String),
            ("shadow", Type::Bool),
            ("count", Type::Number),
            ("last_message", Type::String),
        ],
    ));
    let object = Type::Object(
        inner
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect(),
    );
    let mut gateway_id = simple("gateway_id", Type::String);
    gateway_id.required = true;
    gateway_id.computed = false;
    let mut list = simple("nodes", Type::List(Box::new(object)));
    list.nested = Some((Nesting::List, inner));
    let attrs = vec![gateway_id, list];
    let ty = Type::Object(
        attrs
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect(),
    );
    DataSource {
        type_name: "sluice_data_plane_nodes".into(),
        attrs,
        ty,
        entity: None,
    }
}

/// Every data source, by type name.
pub fn all() -> BTreeMap<String, DataSource> {
    [
        lookup(
            schema::entity(Kind::Gateway),
            &[("id", false), ("name", false)],
        ),
        lookup(
            schema::entity(Kind::VirtualCluster),
            &[("gateway_id", true), ("name", true)],
        ),
        nodes(),
        diagnosis::data_source(),
    ]
    .into_iter()
    .map(|d| (d.type_name.clone(), d))
    .collect()
}

/// What a data source's configuration must hold beyond what its schema
/// says, each error at its attribute: `sluice_gateway` needs `id` or
/// `name` (with neither it would match every gateway), and no required
/// key may be empty; `sluice_diagnosis` checks its own (see
/// [`diagnosis::validate`]). Values not known yet pass.
pub fn validate(source: &DataSource, config: &Value) -> Vec<Diagnostic> {
    let given = |name: &str| match config.get(name) {
        Value::Unknown => true,
        Value::String(s) => !s.is_empty(),
        _ => false,
    };
    let mut out = Vec::new();
    if source
        .entity
        .as_ref()
        .is_some_and(|e| e.kind == Kind::Gateway)
        && !given("id")
        && !given("name")
    {
        out.push(diagnostic(
            "missing id or name",
            &format!(
                "{} reads one gateway: set its id or its name",
                source.type_name
            ),
            Some(attribute_path("id")),
        ));
    }
    for attr in source.attrs.iter().filter(|a| a.required) {
        if !given(&attr.name) {
            out.push(diagnostic(
                &format!("missing {}", attr.name),
                &format!("{} needs a non-empty {}", source.type_name, attr.name),
                Some(attribute_path(&attr.name)),
            ));
        }
    }
    if source.type_name == diagnosis::TYPE_NAME {
        out.extend(diagnosis::validate(config));
    }
    out
}

fn ts(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

/// Reads a data source.
pub async fn read(
    admin: &mut Admin,
    source: &DataSource,
    config: &Value,
) -> Result<Value, Vec<Diagnostic>> {
    if source.type_name == diagnosis::TYPE_NAME {
        return diagnosis::read(admin, config).await;
    }
    let text = |n: &str| config.get(n).as_str().unwrap_or_default().to_string();
    let Some(entity) = &source.entity else {
        let gateway_id = text("gateway_id");
        let nodes = admin
            .list_data_plane_nodes(ListDataPlaneNodesRequest {
                gateway_id: gateway_id.clone(),
            })
            .await
            .map_err(|s| status_diagnostics("listing data-plane nodes", &s))?
            .into_inner()
            .nodes;
        let list = nodes
            .iter()
            .map(|n| {
                let s = |v: &str| Value::String(v.to_string());
                let rejected = n.rejected.clone().unwrap_or_default();
                Value::Map(BTreeMap::from([
                    ("id".into(), s(&n.id)),
                    ("hostname".into(), s(&n.hostname)),
                    ("version".into(), s(&n.version)),
                    ("connected".into(), Value::Bool(n.connected)),
                    ("last_seen_at".into(), ts(n.last_seen_at.as_ref())),
                    (
                        "applied_revision".into(),
                        Value::Number(n.applied_revision as f64),
                    ),
                    ("applied_at".into(), ts(n.applied_at.as_ref())),
                    (
                        "rejected_revision".into(),
                        Value::Number(rejected.revision as f64),
                    ),
                    ("rejected_reason".into(), s(&rejected.reason)),
                    (
                        "policy_outcomes".into(),
                        Value::List(
                            n.policy_outcomes
                                .iter()
                                .map(|o| {
                                    Value::Map(BTreeMap::from([
                                        ("policy_id".into(), s(&o.policy_id)),
                                        ("outcome".into(), s(&o.outcome)),
                                        ("shadow".into(), Value::Bool(o.shadow)),
                                        ("count".into(), Value::Number(o.count as f64)),
                                        ("last_message".into(), s(&o.last_message)),
                                    ]))
                                })
                                .collect(),
                        ),
                    ),
                ]))
            })
            .collect();
        return Ok(Value::Map(BTreeMap::from([
            ("gateway_id".into(), Value::String(gateway_id)),
            ("nodes".into(), Value::List(list)),
        ])));
    };
    let request = if entity.kind == Kind::Gateway {
        ListEntitiesRequest {
            kind: Kind::Gateway as i32,
            gateway_id: text("id"),
            name: text("name"),
            ..Default::default()
        }
    } else {
        ListEntitiesRequest {
            kind: entity.kind as i32,
            gateway_id: text("gateway_id"),
            name: text("name"),
            ..Default::default()
        }
    };
    let found = admin
        .list_entities(request)
        .await
        .map_err(|s| status_diagnostics(&format!("looking up {}", source.type_name), &s))?
        .into_inner()
        .entities;
    match found.as_slice() {
        [one] => to_value(entity, one)
            .map_err(|e| vec![diagnostic("unreadable reply", &format!("{e:#}"), None)]),
        [] => Err(vec![diagnostic(
            &format!("no {} matches", source.type_name),
            "check the id, name and gateway_id",
            None,
        )]),
        _ => Err(vec![diagnostic(
            &format!("several {} match", source.type_name),
            "set id to choose one",
            None,
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn at(d: &Diagnostic) -> Vec<String> {
        use sluice_proto::tfplugin6::attribute_path::step::Selector;
        d.attribute
            .iter()
            .flat_map(|p| &p.steps)
            .filter_map(|s| match &s.selector {
                Some(Selector::AttributeName(n)) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_gateway_is_read_by_id_or_name() {
        let all = all();
        let gw = &all["sluice_gateway"];
        let none = validate(gw, &config(&[]));
        assert_eq!(none.len(), 1, "{none:?}");
        assert_eq!(at(&none[0]), ["id"]);
        let empty = validate(gw, &config(&[("id", Value::String(String::new()))]));
        assert_eq!(empty.len(), 1, "{empty:?}");
        for ok in [
            config(&[("id", Value::String("gw-1".into()))]),
            config(&[("name", Value::String("edge".into()))]),
            config(&[("name", Value::Unknown)]),
        ] {
            assert!(validate(gw, &ok).is_empty(), "{ok:?}");
        }
    }

    #[test]
    fn required_keys_may_not_be_empty() {
        let all = all();
        let vc = &all["sluice_virtual_cluster"];
        let d = validate(
            vc,
            &config(&[
                ("gateway_id", Value::String(String::new())),
                ("name", Value::String("team".into())),
            ]),
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(at(&d[0]), ["gateway_id"]);
        let nodes = &all["sluice_data_plane_nodes"];
        assert_eq!(validate(nodes, &config(&[])).len(), 1);
        assert!(validate(nodes, &config(&[("gateway_id", Value::Unknown)])).is_empty());
    }
}

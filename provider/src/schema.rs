//! Terraform schemas, derived from the admin API's protobuf descriptors so
//! that every entity field becomes an attribute with the same name: nested
//! messages are nested attributes, repeated messages list-nested ones, a
//! `Secret` a sensitive attribute plus a computed `<name>_fingerprint`.
//! What is required, read-only or replaces the resource comes from the
//! facts declared on the fields (`sluice_proto::facts`), the same ones the
//! server enforces.

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind as FieldKind, MessageDescriptor};
use sluice_proto::{admin::v1::Kind, facts, tfplugin6};

use crate::plugin::value::Type;

/// How an attribute maps onto the entity.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A common entity field (`id`, `gateway_id`, `name`, ...).
    Common,
    /// A field of the (nested) message.
    Field,
    /// The value of a `Secret` field of this name.
    SecretValue(String),
    /// The fingerprint of a `Secret` field of this name.
    SecretFingerprint(String),
    /// The values of a `map<string, Secret>` field of this name.
    SecretMapValue(String),
    /// The fingerprints of a `map<string, Secret>` field of this name.
    SecretMapFingerprint(String),
    /// Held by Terraform only, never sent as a field (`force_destroy`).
    ProviderOnly,
}

impl Source {
    /// Whether the attribute holds write-only values (never read back).
    pub fn is_secret_value(&self) -> bool {
        matches!(self, Source::SecretValue(_) | Source::SecretMapValue(_))
    }
}

/// The message type of write-only secrets.
const SECRET: &str = "sluice.admin.v1.Secret";

/// What a `<name>_fingerprint` attribute says.
const FINGERPRINT: &str = "`hmac-sha256:<hex>` of the secret under a key only the server holds: it changes when the secret does.";

/// Whether a map field's values are secrets.
fn is_secret_map(field: &FieldDescriptor) -> bool {
    match field.kind() {
        FieldKind::Message(entry) if field.is_map() => matches!(
            entry.map_entry_value_field().kind(),
            FieldKind::Message(m) if m.full_name() == SECRET
        ),
        _ => false,
    }
}

/// How a nested attribute nests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nesting {
    /// One object.
    Single,
    /// A list of objects.
    List,
}

/// One attribute.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Attribute (and, for `Field`, proto field) name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Nested attributes, for message fields.
    pub nested: Option<(Nesting, Vec<Attr>)>,
    /// Must be set in config.
    pub required: bool,
    /// May be set in config.
    pub optional: bool,
    /// The server may set it.
    pub computed: bool,
    /// Hidden in plans and logs.
    pub sensitive: bool,
    /// Never stored in plan or state (Terraform ≥ 1.11 write-only): the
    /// value lives only in the configuration.
    pub write_only: bool,
    /// A change replaces the resource (the field is immutable).
    pub replaces: bool,
    /// Where the value lives.
    pub source: Source,
    /// One line for docs and the schema.
    pub description: String,
}

impl Attr {
    fn new(name: &str, ty: Type, source: Source, description: &str) -> Self {
        Attr {
            name: name.into(),
            ty,
            nested: None,
            required: false,
            optional: true,
            computed: true,
            sensitive: false,
            write_only: false,
            replaces: false,
            source,
            description: description.into(),
        }
    }

    fn output(mut self) -> Self {
        self.optional = false;
        self.computed = true;
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self.optional = false;
        self.computed = false;
        self
    }

    /// Whether only the server sets it.
    pub fn is_output(&self) -> bool {
        self.computed && !self.optional && !self.required
    }
}

/// A resource's (or data source's) schema.
#[derive(Debug, Clone)]
pub struct ResourceSchema {
    /// The entity kind behind it.
    pub kind: Kind,
    /// `sluice_<kind>`.
    pub type_name: String,
    /// Top-level attributes.
    pub attrs: Vec<Attr>,
    /// The object type of a whole value.
    pub ty: Type,
}

impl ResourceSchema {
    /// Top-level attributes whose change replaces the resource.
    pub fn requires_replace(&self) -> impl Iterator<Item = &str> {
        self.attrs
            .iter()
            .filter(|a| a.replaces)
            .map(|a| a.name.as_str())
    }
}

fn scalar_type(field: &FieldDescriptor) -> Type {
    match field.kind() {
        FieldKind::Bool => Type::Bool,
        FieldKind::String | FieldKind::Enum(_) => Type::String,
        _ => Type::Number,
    }
}

/// The comment above a field in the .proto, as one line.
fn comment(field: &FieldDescriptor) -> Option<String> {
    let file = field.parent_file();
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == field.path())?;
    let text = location
        .leading_comments
        .as_deref()?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!text.is_empty()).then_some(text)
}

fn message_attrs(message: &MessageDescriptor, top: bool) -> Vec<Attr> {
    let mut attrs = Vec::new();
    for field in message.fields() {
        let name = field.name().to_string();
        // Enum fields list their values (docs and `providers schema -json`).
        let description =
            crate::docs::with_enum_values(&field, comment(&field).unwrap_or_default());
        let facts = facts::of(&field);
        if facts.data_plane_only {
            continue;
        }
        // Only top-level attributes are required: nested ones stay optional
        // so that the server's defaults and oneof choices show, and the
        // server refuses a present object missing a required field at plan.
        let required = top && facts.required;
        let replaces = top && facts.immutable;
        let mut attr = match field.kind() {
            FieldKind::Message(m) if m.full_name() == SECRET => {
                let mut value = Attr::new(
                    &name,
                    Type::String,
                    Source::SecretValue(name.clone()),
                    "Write-only secret.",
                );
                value.sensitive = true;
                value.write_only = true;
                value.computed = false;
                value.replaces = replaces;
                if required {
                    value = value.required();
                }
                attrs.push(value);
                attrs.push(
                    Attr::new(
                        &format!("{name}_fingerprint"),
                        Type::String,
                        Source::SecretFingerprint(name.clone()),
                        FINGERPRINT,
                    )
                    .output(),
                );
                continue;
            }
            FieldKind::Message(_) if is_secret_map(&field) => {
                let text = if description.is_empty() {
                    "Write-only values.".to_string()
                } else {
                    description.clone()
                };
                let mut value = Attr::new(
                    &name,
                    Type::Map(Box::new(Type::String)),
                    Source::SecretMapValue(name.clone()),
                    &text,
                );
                value.sensitive = true;
                value.write_only = true;
                value.computed = false;
                value.replaces = replaces;
                attrs.push(value);
                attrs.push(
                    Attr::new(
                        &format!("{name}_fingerprint"),
                        Type::Map(Box::new(Type::String)),
                        Source::SecretMapFingerprint(name.clone()),
                        &format!("By key: {FINGERPRINT}"),
                    )
                    .output(),
                );
                continue;
            }
            FieldKind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                Attr::new(&name, Type::String, Source::Field, "RFC 3339 time.").output()
            }
            FieldKind::Message(_) if field.is_map() => Attr::new(
                &name,
                Type::Map(Box::new(Type::String)),
                Source::Field,
                &description,
            ),
            FieldKind::Message(m) => {
                let inner = message_attrs(&m, false);
                let object = Type::Object(
                    inner
                        .iter()
                        .map(|a| (a.name.clone(), a.ty.clone()))
                        .collect(),
                );
                let (nesting, ty) = if field.is_list() {
                    (Nesting::List, Type::List(Box::new(object)))
                } else {
                    (Nesting::Single, object)
                };
                let mut a = Attr::new(&name, ty, Source::Field, &description);
                a.nested = Some((nesting, inner));
                a
            }
            _ if field.is_list() => Attr::new(
                &name,
                Type::List(Box::new(scalar_type(&field))),
                Source::Field,
                &description,
            ),
            _ => Attr::new(&name, scalar_type(&field), Source::Field, &description),
        };
        if facts.output_only {
            attr = attr.output();
            attr.sensitive = name == "private_key";
        } else if required {
            attr = attr.required();
        }
        attr.replaces = replaces;
        attrs.push(attr);
    }
    attrs
}

/// Attributes of the `sluice_gateway` entity that change with every change
/// under the gateway: read through the data source, never held by the
/// resource (they would show as drift on every refresh).
const GATEWAY_COUNTERS: [&str; 3] = ["revision", "nodes_total", "virtual_clusters_total"];

/// The gateway attribute that makes destroy revoke what Terraform cannot
/// see.
pub const FORCE_DESTROY: &str = "force_destroy";

/// The schema of the resource for `kind`: the entity's attributes less
/// what a resource must not hold (a gateway's counters).
pub fn resource(kind: Kind) -> ResourceSchema {
    let mut schema = entity(kind);
    if kind == Kind::Gateway {
        schema
            .attrs
            .retain(|a| !GATEWAY_COUNTERS.contains(&a.name.as_str()));
        let mut force = Attr::new(
            FORCE_DESTROY,
            Type::Bool,
            Source::ProviderOnly,
            "On destroy, also revoke the gateway's data_plane_certificates made outside Terraform (which disconnects their nodes) and forget its node records; without it, destroy fails while any exist. Default false.",
        );
        force.computed = false;
        schema.attrs.push(force);
        schema.ty = object_type(&schema.attrs);
    }
    schema
}

fn object_type(attrs: &[Attr]) -> Type {
    Type::Object(
        attrs
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect(),
    )
}

/// Every attribute of the entity of `kind` (what data sources read).
pub fn entity(kind: Kind) -> ResourceSchema {
    let pool = sluice_proto::descriptor_pool();
    let entity = pool.get_message_by_name("sluice.admin.v1.Entity");
    let spec = entity
        .as_ref()
        .and_then(|e| e.get_field_by_name(kind.slug()))
        .and_then(|f| match f.kind() {
            FieldKind::Message(m) => Some(m),
            _ => None,
        });
    let mut attrs =
        vec![Attr::new("id", Type::String, Source::Common, "Server-assigned id.").output()];
    if kind != Kind::Gateway {
        let mut gateway = Attr::new(
            "gateway_id",
            Type::String,
            Source::Common,
            "The gateway this belongs to.",
        )
        .required();
        gateway.replaces = entity
            .as_ref()
            .and_then(|e| e.get_field_by_name("gateway_id"))
            .is_some_and(|f| facts::of(&f).immutable);
        attrs.push(gateway);
    }
    attrs.push(
        Attr::new(
            "name",
            Type::String,
            Source::Common,
            "Unique within its parent.",
        )
        .required(),
    );
    attrs.push(Attr::new(
        "description",
        Type::String,
        Source::Common,
        "Free text, at most 512 characters.",
    ));
    attrs.push(Attr::new(
        "labels",
        Type::Map(Box::new(Type::String)),
        Source::Common,
        "At most 50 labels.",
    ));
    attrs.push(Attr::new("created_at", Type::String, Source::Common, "RFC 3339 time.").output());
    attrs.push(Attr::new("updated_at", Type::String, Source::Common, "RFC 3339 time.").output());
    if let Some(spec) = spec {
        attrs.extend(message_attrs(&spec, true));
    }
    let ty = object_type(&attrs);
    ResourceSchema {
        kind,
        type_name: format!("sluice_{}", kind.slug()),
        attrs,
        ty,
    }
}

fn attr_proto(attr: &Attr) -> tfplugin6::schema::Attribute {
    let (ty, nested_type) = match &attr.nested {
        Some((nesting, inner)) => (
            Vec::new(),
            Some(tfplugin6::schema::Object {
                attributes: inner.iter().map(attr_proto).collect(),
                nesting: match nesting {
                    Nesting::Single => tfplugin6::schema::object::NestingMode::Single as i32,
                    Nesting::List => tfplugin6::schema::object::NestingMode::List as i32,
                },
            }),
        ),
        None => (attr.ty.to_json().to_string().into_bytes(), None),
    };
    tfplugin6::schema::Attribute {
        name: attr.name.clone(),
        r#type: ty,
        nested_type,
        description: attr.description.clone(),
        required: attr.required,
        optional: attr.optional,
        computed: attr.computed,
        sensitive: attr.sensitive,
        write_only: attr.write_only,
        ..Default::default()
    }
}

/// A tfplugin6 schema for a list of attributes.
pub fn to_proto(attrs: &[Attr], description: &str) -> tfplugin6::Schema {
    tfplugin6::Schema {
        version: 0,
        block: Some(tfplugin6::schema::Block {
            attributes: attrs.iter().map(attr_proto).collect(),
            description: description.into(),
            ..Default::default()
        }),
    }
}

/// Every resource schema, by type name.
pub fn all_resources() -> BTreeMap<String, ResourceSchema> {
    sluice_proto::entity::ALL_KINDS
        .iter()
        .map(|k| {
            let s = resource(*k);
            (s.type_name.clone(), s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_mirror_entity_fields() {
        let s = resource(Kind::BackendCluster);
        let names: Vec<&str> = s.attrs.iter().map(|a| a.name.as_str()).collect();
        for n in [
            "id",
            "gateway_id",
            "name",
            "bootstrap_servers",
            "authentication",
            "tls",
            "metadata_update_interval_seconds",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let auth = s.attrs.iter().find(|a| a.name == "authentication").unwrap();
        let (_, inner) = auth.nested.as_ref().unwrap();
        let plain = inner.iter().find(|a| a.name == "sasl_plain").unwrap();
        let (_, fields) = plain.nested.as_ref().unwrap();
        let password = fields.iter().find(|a| a.name == "password").unwrap();
        assert!(password.sensitive && password.optional);
        assert!(
            fields
                .iter()
                .any(|a| a.name == "password_fingerprint" && a.is_output())
        );
        assert!(
            s.attrs
                .iter()
                .find(|a| a.name == "bootstrap_servers")
                .unwrap()
                .required
        );
    }

    #[test]
    fn every_kind_has_a_schema_terraform_accepts() {
        for (name, s) in all_resources() {
            assert!(name.starts_with("sluice_"));
            for a in &s.attrs {
                assert!(a.required || a.optional || a.computed, "{name}.{}", a.name);
                assert!(
                    !(a.required && (a.optional || a.computed)),
                    "{name}.{}",
                    a.name
                );
            }
        }
        let gw = resource(Kind::Gateway);
        assert!(gw.attrs.iter().all(|a| a.name != "gateway_id"));
        // Counters that move with every change under the gateway are the
        // data source's, never the resource's (they would drift).
        for counter in GATEWAY_COUNTERS {
            assert!(gw.attrs.iter().all(|a| a.name != counter), "{counter}");
            assert!(
                entity(Kind::Gateway)
                    .attrs
                    .iter()
                    .any(|a| a.name == counter && a.is_output()),
                "{counter}"
            );
        }
    }

    #[test]
    fn every_secret_value_is_write_only_and_never_computed() {
        for (name, s) in all_resources() {
            fn check(name: &str, attrs: &[Attr]) {
                for a in attrs {
                    if a.source.is_secret_value() {
                        assert!(
                            a.write_only && a.sensitive && !a.computed,
                            "{name}.{}",
                            a.name
                        );
                    } else {
                        assert!(!a.write_only, "{name}.{}", a.name);
                    }
                    if let Some((_, inner)) = &a.nested {
                        check(name, inner);
                    }
                }
            }
            check(&name, &s.attrs);
        }
    }

    #[test]
    fn requires_replace_is_the_immutable_fields() {
        use std::collections::BTreeSet;
        let entity = facts::entity_message();
        for kind in sluice_proto::entity::ALL_KINDS {
            let schema = resource(kind);
            let replaces: BTreeSet<&str> = schema.requires_replace().collect();
            let common = entity
                .fields()
                .filter(|f| f.containing_oneof().is_none() && facts::of(f).immutable)
                .map(|f| f.name().to_string())
                .filter(|n| schema.attrs.iter().any(|a| a.name == *n));
            let spec = facts::spec_message(kind).unwrap();
            let immutable: Vec<String> = common
                .chain(
                    spec.fields()
                        .filter(|f| facts::of(f).immutable)
                        .map(|f| f.name().to_string()),
                )
                .collect();
            assert_eq!(
                replaces,
                immutable.iter().map(String::as_str).collect(),
                "{}",
                kind.slug()
            );
        }
        // What Terraform replaced before the facts were declared in the
        // proto, unchanged.
        let names = |kind| {
            resource(kind)
                .requires_replace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert!(names(Kind::Gateway).is_empty());
        assert_eq!(names(Kind::BackendCluster), ["gateway_id"]);
        assert_eq!(names(Kind::StaticKey), ["gateway_id", "value"]);
        assert_eq!(
            names(Kind::DataPlaneCertificate),
            ["gateway_id", "generated", "csr"]
        );
        assert_eq!(
            names(Kind::ConsumePolicyDecrypt),
            ["gateway_id", "virtual_cluster_id"]
        );
        assert_eq!(
            names(Kind::ListenerPolicyTlsServer),
            ["gateway_id", "listener_id"]
        );
    }
}

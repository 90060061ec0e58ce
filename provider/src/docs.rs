//! Markdown docs for every resource and data source in the layout the
//! Terraform registry reads (`docs/index.md`, `docs/resources/<name>.md`,
//! `docs/data-sources/<name>.md`, each with YAML frontmatter), generated
//! from the schemas and `examples/` (`cargo run -p terraform-provider-sluice
//! --bin sluice-provider-docs`); a test fails when the checked-in docs are
//! stale. Also the description helpers the schemas use, so the docs and
//! `terraform providers schema -json` say the same.

use std::{collections::BTreeMap, fmt::Write, path::Path};

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind as FieldKind, MessageDescriptor};
use sluice_proto::{admin::v1::Kind, facts};

use crate::{
    plugin::value::Type,
    provider::SluiceProvider,
    schema::{Attr, Nesting},
};

#[cfg(test)]
mod tests;

/// The values an enum field takes in Terraform, spelled as `convert` spells
/// them: each value name without the enum's prefix (the zero value's name
/// minus `UNSPECIFIED`), lower-case; the zero value (unset) left out.
pub fn enum_values(e: &EnumDescriptor) -> Vec<String> {
    let prefix = e
        .values()
        .find(|v| v.number() == 0)
        .map(|v| v.name().trim_end_matches("UNSPECIFIED").to_string())
        .unwrap_or_default();
    e.values()
        .filter(|v| v.number() != 0)
        .map(|v| v.name().trim_start_matches(&prefix).to_ascii_lowercase())
        .collect()
}

/// `description` plus, for an enum field (or a list of enums), the values
/// it takes.
pub fn with_enum_values(field: &FieldDescriptor, description: String) -> String {
    let FieldKind::Enum(e) = field.kind() else {
        return description;
    };
    let values: Vec<String> = enum_values(&e).iter().map(|v| format!("`{v}`")).collect();
    let values = format!("Values: {}.", values.join(", "));
    if description.is_empty() {
        values
    } else {
        format!("{description} {values}")
    }
}

/// What each attribute of `sluice_data_plane_nodes` holds.
pub fn data_plane_node_attr(name: &str) -> &'static str {
    match name {
        "gateway_id" => "The gateway whose nodes to list.",
        "nodes" => "The gateway's data-plane nodes, as each last reported.",
        "id" => "The node's id.",
        "hostname" => "The host name the node reports.",
        "version" => "The sluice-proxy version the node runs.",
        "connected" => "Whether the node is connected to the control plane now.",
        "last_seen_at" => "When the node was last heard from (RFC 3339).",
        "applied_revision" => "The newest gateway revision the node applied and acknowledged.",
        "applied_at" => "When the node acknowledged that revision (RFC 3339).",
        "rejected_revision" => "The last revision the node refused to apply; 0 if none.",
        "rejected_reason" => "Why the node refused that revision.",
        "policy_outcomes" => {
            "What the node's record policies did since it started, per policy and outcome."
        }
        "policy_id" => "The record policy's id.",
        "outcome" => {
            "applied (it acted on the record), skipped (its condition did not hold), rejected \
             (the record was refused or left out for failing it) or failed (it could not \
             process the record, which went on)."
        }
        "shadow" => "Outcomes of the policy in shadow mode (decided, nothing changed).",
        "count" => "How many records.",
        "last_message" => "The last reason given for a rejected or failed record.",
        _ => "",
    }
}

/// The leading comment of a message in the .proto, as one line.
fn message_comment(message: &MessageDescriptor) -> String {
    let file = message.parent_file();
    file.file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == message.path()))
        .and_then(|l| l.leading_comments.as_deref())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The registry's navigation group of a kind.
fn subcategory(kind: Kind) -> &'static str {
    let slug = kind.slug();
    match kind {
        Kind::Gateway => "Gateway",
        Kind::BackendCluster | Kind::VirtualCluster => "Clusters",
        Kind::EventHook => "Events",
        _ if slug.starts_with("listener") => "Listeners",
        _ if slug.contains("_policy_") => "Virtual Cluster Policies",
        _ => "Keys and Certificates",
    }
}

/// What a resource manages: its spec message's comment.
fn kind_description(kind: Kind) -> String {
    let text = facts::spec_message(kind)
        .map(|m| message_comment(&m))
        .unwrap_or_default();
    if text.is_empty() {
        format!("A Sluice `{}`.", kind.slug())
    } else {
        text
    }
}

/// YAML frontmatter as the registry (and tfplugindocs) writes it.
fn frontmatter(title: &str, subcategory: &str, description: &str) -> String {
    format!(
        "---\npage_title: \"{title}\"\nsubcategory: \"{subcategory}\"\ndescription: |-\n  {description}\n---\n\n"
    )
}

fn type_name(ty: &Type) -> String {
    match ty {
        Type::String => "String".into(),
        Type::Number => "Number".into(),
        Type::Bool => "Boolean".into(),
        Type::List(t) => format!("List of {}", type_name(t)),
        Type::Map(t) => format!("Map of {}", type_name(t)),
        Type::Object(_) => "Object".into(),
    }
}

fn describe(attr: &Attr, anchor: &str) -> String {
    let ty = match &attr.nested {
        Some((Nesting::Single, _)) => format!("Attributes, see [below](#nestedatt--{anchor})"),
        Some((Nesting::List, _)) => format!("Attributes List, see [below](#nestedatt--{anchor})"),
        None => type_name(&attr.ty),
    };
    let sensitive = if attr.sensitive { ", Sensitive" } else { "" };
    let mut description = String::new();
    if !attr.description.is_empty() {
        description = format!(" {}", attr.description);
    }
    if attr.replaces {
        description += " Changing it replaces the resource.";
    }
    format!("- `{}` ({ty}{sensitive}){description}\n", attr.name)
}

/// A docs section title and which attributes it lists.
type Group = (&'static str, fn(&Attr) -> bool);

fn section(out: &mut String, attrs: &[Attr], prefix: &str, level: &str) {
    let groups: [Group; 3] = [
        ("Required", |a| a.required),
        ("Optional", |a| a.optional),
        ("Read-Only", |a| a.is_output()),
    ];
    for (title, pick) in groups {
        let picked: Vec<&Attr> = attrs.iter().filter(|a| pick(a)).collect();
        if picked.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{level} {title}\n");
        for a in picked {
            out.push_str(&describe(a, &format!("{prefix}{}", a.name)));
        }
        out.push('\n');
    }
    for a in attrs {
        if let Some((_, inner)) = &a.nested {
            let anchor = format!("{prefix}{}", a.name);
            let _ = writeln!(
                out,
                "<a id=\"nestedatt--{anchor}\"></a>\n{level} Nested Schema for `{}`\n",
                anchor.replace("--", ".")
            );
            section(out, inner, &format!("{anchor}--"), level);
        }
    }
}

fn example(root: &Path, dir: &str, name: &str, file: &str) -> String {
    std::fs::read_to_string(root.join("examples").join(dir).join(name).join(file))
        .unwrap_or_default()
}

/// The import id a resource of `kind` takes.
pub fn import_id(kind: Kind) -> &'static str {
    if kind == Kind::Gateway {
        "<id>"
    } else {
        "<gateway_id>/<id>"
    }
}

/// The `## Import` section: an `import` block and `examples/.../import.sh`.
fn import_section(root: &Path, name: &str, kind: Kind) -> String {
    let id = import_id(kind);
    let mut out = format!(
        "## Import\n\nImport ids are `{id}`{}. In Terraform 1.5 and later, use an `import` block:\n\n```terraform\nimport {{\n  to = {name}.example\n  id = \"{id}\"\n}}\n```\n\n",
        if kind == Kind::Gateway {
            " (the gateway's id)"
        } else {
            " (the gateway's id, a slash, the entity's id)"
        }
    );
    let script = example(root, "resources", name, "import.sh");
    if !script.is_empty() {
        out += &format!("Or use `terraform import`:\n\n```shell\n{script}```\n");
    }
    out
}

/// How a data source finds what it reads, from its key attributes.
fn lookup_keys(attrs: &[Attr]) -> String {
    let keys = |pick: fn(&Attr) -> bool, joiner: &str| {
        attrs
            .iter()
            .filter(|a| pick(a))
            .map(|a| format!("`{}`", a.name))
            .collect::<Vec<_>>()
            .join(joiner)
    };
    let required = keys(|a| a.required, " and ");
    if required.is_empty() {
        keys(|a| a.optional, " or ")
    } else {
        required
    }
}

/// Every doc page: path under the repo root → contents.
pub fn render(root: &Path) -> BTreeMap<String, String> {
    let provider = SluiceProvider::default();
    let mut pages = BTreeMap::new();
    let about = "The Sluice provider manages a Sluice gateway's configuration (clusters, listeners, policies, keys, certificates and event hooks) through its admin API.";
    let mut index = frontmatter("Provider: Sluice", "", about);
    index += &format!("# Sluice Provider\n\n{about}\n\n## Example Usage\n\n```terraform\n");
    index +=
        &std::fs::read_to_string(root.join("examples/provider/provider.tf")).unwrap_or_default();
    index += "```\n\n## Schema\n\n";
    section(&mut index, provider.config_attrs(), "", "###");
    pages.insert("docs/index.md".to_string(), index);
    for (name, schema) in provider.resources() {
        let short = name.trim_start_matches("sluice_");
        let about = kind_description(schema.kind);
        let mut page = frontmatter(
            &format!("{name} Resource - terraform-provider-sluice"),
            subcategory(schema.kind),
            &about,
        );
        page += &format!("# {name} (Resource)\n\n{about}\n\n");
        let hcl = example(root, "resources", name, "resource.tf");
        if !hcl.is_empty() {
            page += &format!("## Example Usage\n\n```terraform\n{hcl}```\n\n");
        }
        page += "## Schema\n\n";
        section(&mut page, &schema.attrs, "", "###");
        page += &import_section(root, name, schema.kind);
        pages.insert(format!("docs/resources/{short}.md"), page);
    }
    for (name, source) in provider.data_sources() {
        let short = name.trim_start_matches("sluice_");
        let (about, group) = match &source.entity {
            Some(entity) => (
                format!(
                    "Reads an existing `{}`, found by {}. {}",
                    entity.kind.slug(),
                    lookup_keys(&source.attrs),
                    kind_description(entity.kind)
                ),
                subcategory(entity.kind),
            ),
            None if name == crate::diagnosis::TYPE_NAME => {
                (crate::diagnosis::DESCRIPTION.to_string(), "Data Plane")
            }
            None => (
                "Lists a gateway's data-plane nodes as they last reported: whether each is connected, the revision it applied and the last one it rejected.".to_string(),
                "Data Plane",
            ),
        };
        let mut page = frontmatter(
            &format!("{name} Data Source - terraform-provider-sluice"),
            group,
            &about,
        );
        page += &format!("# {name} (Data Source)\n\n{about}\n\n");
        let hcl = example(root, "data-sources", name, "data-source.tf");
        if !hcl.is_empty() {
            page += &format!("## Example Usage\n\n```terraform\n{hcl}```\n\n");
        }
        page += "## Schema\n\n";
        section(&mut page, &source.attrs, "", "###");
        pages.insert(format!("docs/data-sources/{short}.md"), page);
    }
    pages
}

//! Markdown docs for every resource and data source, generated from the
//! schemas and `examples/` (`cargo run -p terraform-provider-sluice --bin
//! sluice-provider-docs`); a test fails when the checked-in docs are stale.

use std::{collections::BTreeMap, fmt::Write, path::Path};

use crate::{
    plugin::value::Type,
    provider::SluiceProvider,
    schema::{Attr, Nesting},
};

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

/// Every doc page: path under the repo root → contents.
pub fn render(root: &Path) -> BTreeMap<String, String> {
    let provider = SluiceProvider::default();
    let mut pages = BTreeMap::new();
    let mut index = String::from(
        "# Sluice Provider\n\nManages a Sluice gateway's configuration through its admin API.\n\n## Example Usage\n\n```terraform\n",
    );
    index +=
        &std::fs::read_to_string(root.join("examples/provider/provider.tf")).unwrap_or_default();
    index += "```\n\n## Schema\n\n";
    section(&mut index, provider.config_attrs(), "", "###");
    pages.insert("docs/index.md".to_string(), index);
    for (name, schema) in provider.resources() {
        let short = name.trim_start_matches("sluice_");
        let mut page = format!(
            "# {name} (Resource)\n\nA Sluice `{}`.\n\n",
            schema.kind.slug()
        );
        let hcl = example(root, "resources", name, "resource.tf");
        if !hcl.is_empty() {
            page += &format!("## Example Usage\n\n```terraform\n{hcl}```\n\n");
        }
        page += "## Schema\n\n";
        section(&mut page, &schema.attrs, "", "###");
        let import = if schema.kind == sluice_proto::admin::v1::Kind::Gateway {
            "<id>"
        } else {
            "<gateway_id>/<id>"
        };
        page += &format!("## Import\n\n```shell\nterraform import {name}.example {import}\n```\n");
        pages.insert(format!("docs/resources/{short}.md"), page);
    }
    for (name, source) in provider.data_sources() {
        let short = name.trim_start_matches("sluice_");
        let mut page = format!("# {name} (Data Source)\n\n");
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

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_docs_are_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut stale = Vec::new();
        for (path, contents) in super::render(&root) {
            if std::fs::read_to_string(root.join(&path)).ok().as_deref() != Some(contents.as_str())
            {
                stale.push(path);
            }
        }
        assert!(
            stale.is_empty(),
            "stale docs {stale:?}: run `cargo run -p terraform-provider-sluice --bin sluice-provider-docs`"
        );
    }
}

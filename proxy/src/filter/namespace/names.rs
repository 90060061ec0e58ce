//! A virtual cluster's names as its clients see them and as the backend
//! cluster holds them: topic aliases, then the namespace prefix (hidden
//! or enforced) and the extra backend names it lets through. The one
//! rule both directions keep: a backend name is shown to a client only
//! as the name that maps back to it, so nothing a client sees can name
//! anything outside its namespace.

use std::collections::HashMap;

use sluice_proto::admin::v1::{
    NameSelector, Namespace, NamespaceMode, TopicAlias, name_selector::Selector as Pick,
};

/// What kind of name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A topic.
    Topic,
    /// A consumer group id.
    Group,
    /// A transactional id.
    TransactionalId,
}

/// How the prefix is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No namespace (aliases only): every name is itself.
    Open,
    /// Clients never see the prefix; every name they use gets it.
    Hide,
    /// Clients see and must use the prefix.
    Enforce,
}

/// Extra backend names visible as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Extra {
    #[default]
    None,
    Glob(String),
    Exact(Vec<String>),
}

impl Extra {
    fn compile(selector: Option<&NameSelector>) -> Extra {
        match selector.and_then(|s| s.selector.as_ref()) {
            Some(Pick::Glob(g)) if !g.is_empty() => Extra::Glob(g.clone()),
            Some(Pick::ExactList(list)) => Extra::Exact(list.names.clone()),
            _ => Extra::None,
        }
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            Extra::None => false,
            Extra::Glob(g) => glob(g, name),
            Extra::Exact(names) => names.iter().any(|n| n == name),
        }
    }
}

/// A virtual cluster's name mapping, compiled once per revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    mode: Mode,
    prefix: String,
    topics: Extra,
    groups: Extra,
    /// Alias → the topic it stands for (a client name).
    aliases: HashMap<String, String>,
}

impl Names {
    /// The mapping of a virtual cluster's `namespace` and `topic_aliases`.
    pub fn compile(namespace: Option<&Namespace>, aliases: &[TopicAlias]) -> Names {
        let (mode, prefix, topics, groups) = match namespace {
            Some(ns) => {
                let additional = ns.additional.as_ref();
                let mode = if ns.mode == NamespaceMode::EnforcePrefix as i32 {
                    Mode::Enforce
                } else {
                    Mode::Hide
                };
                (
                    mode,
                    ns.prefix.clone(),
                    Extra::compile(additional.and_then(|a| a.topics.as_ref())),
                    Extra::compile(additional.and_then(|a| a.consumer_groups.as_ref())),
                )
            }
            None => (Mode::Open, String::new(), Extra::None, Extra::None),
        };
        Names {
            mode,
            prefix,
            topics,
            groups,
            aliases: aliases
                .iter()
                .map(|a| (a.alias.clone(), a.topic.clone()))
                .collect(),
        }
    }

    /// Whether the prefix applies (hidden or enforced).
    pub fn namespaced(&self) -> bool {
        self.mode != Mode::Open
    }

    /// Whether any name is renamed (a namespace or an alias).
    pub fn renames(&self) -> bool {
        self.namespaced() || !self.aliases.is_empty()
    }

    fn extra(&self, resource: Resource) -> &Extra {
        match resource {
            Resource::Topic => &self.topics,
            Resource::Group => &self.groups,
            Resource::TransactionalId => &Extra::None,
        }
    }

    /// Whether the client's `name` is one shared through `additional`
    /// (visible as it is, not the tenant's own).
    pub fn is_extra(&self, resource: Resource, name: &str) -> bool {
        let name = match resource {
            Resource::Topic => self.aliases.get(name).map_or(name, String::as_str),
            _ => name,
        };
        self.mode != Mode::Open && self.extra(resource).contains(name)
    }

    /// The backend name of what a client calls `name`, or `None` when it
    /// is outside the namespace (enforce_prefix: refused).
    pub fn inward(&self, resource: Resource, name: &str) -> Option<String> {
        let name = match resource {
            Resource::Topic => self.aliases.get(name).map_or(name, String::as_str),
            _ => name,
        };
        match self.mode {
            Mode::Open => Some(name.to_string()),
            _ if self.extra(resource).contains(name) => Some(name.to_string()),
            Mode::Hide => Some(format!("{}{name}", self.prefix)),
            Mode::Enforce if name.starts_with(&self.prefix) => Some(name.to_string()),
            Mode::Enforce => None,
        }
    }

    /// What a client calls the backend's `name`, or `None` when the
    /// client may not see it. Only a name that maps back to `name` is
    /// shown (a prefixed name shadowed by an extra one stays hidden).
    pub fn outward(&self, resource: Resource, name: &str) -> Option<String> {
        let shown = match self.mode {
            Mode::Open => return Some(name.to_string()),
            // An empty group or transactional id is a name (the bare
            // prefix on the broker); an empty topic name is not.
            Mode::Hide => match name.strip_prefix(&self.prefix) {
                Some(stripped) if !stripped.is_empty() || resource != Resource::Topic => {
                    stripped.to_string()
                }
                _ => name.to_string(),
            },
            Mode::Enforce => name.to_string(),
        };
        (self.inward_canonical(resource, &shown).as_deref() == Some(name)).then_some(shown)
    }

    /// The topic a client's topic name stands for: the alias's topic, or
    /// the name itself (what ACL rules are written against).
    pub fn unalias<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map_or(name, String::as_str)
    }

    /// [`Names::inward`] without alias resolution: a name as it is, into
    /// the namespace.
    pub fn inward_unaliased(&self, resource: Resource, name: &str) -> Option<String> {
        self.inward_canonical(resource, name)
    }

    /// Whether the backend's `name` is one shared through `additional`.
    pub fn is_extra_backend(&self, resource: Resource, name: &str) -> bool {
        self.mode != Mode::Open && self.extra(resource).contains(name)
    }

    /// `inward` without alias resolution (a backend name's own client
    /// name is never an alias).
    fn inward_canonical(&self, resource: Resource, name: &str) -> Option<String> {
        match self.mode {
            Mode::Open => Some(name.to_string()),
            _ if self.extra(resource).contains(name) => Some(name.to_string()),
            Mode::Hide => Some(format!("{}{name}", self.prefix)),
            Mode::Enforce if name.starts_with(&self.prefix) => Some(name.to_string()),
            Mode::Enforce => None,
        }
    }
}

pub use sluice_proto::names::glob;

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{ExactList, NamespaceAdditional};

    use super::*;

    fn names(mode: NamespaceMode, topics: Option<Pick>, groups: Option<Pick>) -> Names {
        let selector = |p: Option<Pick>| p.map(|p| NameSelector { selector: Some(p) });
        Names::compile(
            Some(&Namespace {
                mode: mode as i32,
                prefix: "team-a.".into(),
                additional: Some(NamespaceAdditional {
                    topics: selector(topics),
                    consumer_groups: selector(groups),
                }),
            }),
            &[TopicAlias {
                alias: "orders-v2".into(),
                topic: "orders".into(),
            }],
        )
    }

    #[test]
    fn hide_prefix_maps_both_ways_and_hides_the_rest() {
        use Resource::*;
        let n = names(
            NamespaceMode::HidePrefix,
            Some(Pick::Glob("shared-*".into())),
            Some(Pick::ExactList(ExactList {
                names: vec!["ops".into()],
            })),
        );
        assert_eq!(n.inward(Topic, "orders").as_deref(), Some("team-a.orders"));
        assert_eq!(
            n.inward(Topic, "orders-v2").as_deref(),
            Some("team-a.orders")
        );
        assert_eq!(
            n.inward(Topic, "shared-events").as_deref(),
            Some("shared-events")
        );
        assert_eq!(n.inward(Group, "ops").as_deref(), Some("ops"));
        assert_eq!(n.inward(Group, "app").as_deref(), Some("team-a.app"));
        assert_eq!(
            n.inward(TransactionalId, "tx").as_deref(),
            Some("team-a.tx")
        );
        assert_eq!(n.outward(Topic, "team-a.orders").as_deref(), Some("orders"));
        assert_eq!(
            n.outward(Topic, "shared-events").as_deref(),
            Some("shared-events")
        );
        assert_eq!(n.outward(Topic, "team-b.orders"), None, "another tenant's");
        assert_eq!(n.outward(Topic, "orders"), None, "outside every namespace");
        assert_eq!(
            n.outward(Topic, "team-a.shared-x"),
            None,
            "shadowed by the extra topic shared-x"
        );
        assert_eq!(n.outward(Topic, "team-a."), None, "the bare prefix");
        assert_eq!(n.outward(Group, "ops").as_deref(), Some("ops"));
        assert_eq!(
            n.outward(Group, "shared-x"),
            None,
            "topic extras are not groups"
        );
    }

    #[test]
    fn enforce_prefix_shows_full_names_and_refuses_the_rest() {
        use Resource::*;
        let n = names(
            NamespaceMode::EnforcePrefix,
            Some(Pick::ExactList(ExactList {
                names: vec!["shared".into()],
            })),
            None,
        );
        assert_eq!(
            n.inward(Topic, "team-a.orders").as_deref(),
            Some("team-a.orders")
        );
        assert_eq!(n.inward(Topic, "orders"), None);
        assert_eq!(n.inward(Topic, "shared").as_deref(), Some("shared"));
        assert_eq!(n.inward(Group, "team-b.app"), None);
        assert_eq!(
            n.outward(Topic, "team-a.orders").as_deref(),
            Some("team-a.orders")
        );
        assert_eq!(n.outward(Topic, "team-b.orders"), None);
        assert_eq!(n.outward(Topic, "shared").as_deref(), Some("shared"));
    }

    #[test]
    fn aliases_alone_rename_only_the_alias() {
        let n = Names::compile(
            None,
            &[TopicAlias {
                alias: "new".into(),
                topic: "old".into(),
            }],
        );
        assert!(!n.namespaced());
        assert_eq!(n.inward(Resource::Topic, "new").as_deref(), Some("old"));
        assert_eq!(n.inward(Resource::Group, "new").as_deref(), Some("new"));
        assert_eq!(
            n.outward(Resource::Topic, "anything").as_deref(),
            Some("anything")
        );
    }
}

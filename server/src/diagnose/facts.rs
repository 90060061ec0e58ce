//! What a diagnosis knows before it judges: the request, the gateway and
//! its configuration (compiled the way a node compiles it), the other
//! gateways' listeners, the nodes' last reports and the probes' results.

use std::collections::HashMap;

use sluice_proto::{
    admin::v1::{DiagnoseRequest, DiagnosisProbe, DiagnosisProbeStep, Entity, Kind, NodeHopErrors},
    dataplane::v1::ConfigUpdate,
};
use sluice_proxy::config::Config;

use crate::{
    error::ApiError,
    store::{ListFilter, NodeRecord, Store, nodes::millis},
};

/// How a node's message relates to a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// It names the principal.
    Names,
    /// It names another principal.
    Other,
    /// It names none (a mechanism mismatch, a timeout).
    Unnamed,
}

/// Node errors older than this are history, not evidence.
pub const RECENT_MS: i64 = 10 * 60 * 1000;
/// A node this far behind the latest change is late, not busy applying it.
pub const APPLY_GRACE_MS: i64 = 5_000;
/// The most gateways searched for a listener of another gateway.
const MAX_GATEWAYS: u32 = 1000;

/// Everything a diagnosis judges from.
pub struct Facts {
    /// What was asked.
    pub request: DiagnoseRequest,
    /// The gateway asked for, when it exists.
    pub gateway: Option<Entity>,
    /// Every gateway (to recognise another gateway's listener).
    pub gateways: Vec<Entity>,
    /// The listeners of the other gateways.
    pub foreign_listeners: Vec<Entity>,
    /// The gateway's latest revision.
    pub revision: i64,
    /// The newest revision nodes receive (certificate and hook changes
    /// are not sent to nodes): what a node must have applied.
    pub target_revision: i64,
    /// When the gateway's configuration last changed (Unix ms).
    pub changed_at_ms: i64,
    /// Its entities by id (secrets in clear: never echoed).
    pub entities: HashMap<String, Entity>,
    /// The configuration as a node compiles it, or why a node could not.
    pub config: Result<Config, String>,
    /// Its nodes' last reports.
    pub nodes: Vec<NodeRecord>,
    /// Live probes, when asked.
    pub probes: Vec<DiagnosisProbe>,
    /// Now, in Unix ms.
    pub now_ms: i64,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// How long ago `at_ms` was, in words.
pub fn age(now_ms: i64, at_ms: i64) -> String {
    if at_ms <= 0 {
        return "at an unknown time".into();
    }
    let secs = (now_ms - at_ms).max(0) / 1000;
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

impl Facts {
    /// Reads what the diagnosis of `request` needs.
    pub async fn load(
        store: &Store,
        registry: &crate::sync::Registry,
        request: DiagnoseRequest,
    ) -> Result<Facts, ApiError> {
        let all = |kind, gateway_id: &str| ListFilter {
            kind: Some(kind),
            gateway_id: gateway_id.into(),
            page_size: MAX_GATEWAYS,
            ..Default::default()
        };
        let (gateways, _) = store.list(&all(Kind::Gateway, "")).await?;
        let wanted = request.gateway.trim();
        // Looked up directly (by id, then by name), not in the first page.
        let gateway = match store.get(Kind::Gateway, wanted).await {
            Ok(g) => Some(g),
            Err(ApiError::NotFound(_)) => {
                let by_name = ListFilter {
                    kind: Some(Kind::Gateway),
                    name: wanted.into(),
                    ..Default::default()
                };
                store.list(&by_name).await?.0.into_iter().next()
            }
            Err(e) => return Err(e),
        };
        let mut foreign_listeners = Vec::new();
        for other in gateways
            .iter()
            .filter(|g| Some(&g.id) != gateway.as_ref().map(|g| &g.id))
        {
            let (listeners, _) = store.list(&all(Kind::Listener, &other.id)).await?;
            foreign_listeners.extend(listeners);
        }
        let mut facts = Facts {
            request,
            gateway: gateway.clone(),
            gateways,
            foreign_listeners,
            revision: 0,
            target_revision: 0,
            changed_at_ms: 0,
            entities: HashMap::new(),
            config: Ok(Config::default()),
            nodes: Vec::new(),
            probes: Vec::new(),
            now_ms: now_ms(),
        };
        let Some(gateway) = gateway else {
            return Ok(facts);
        };
        let (revision, entities) = store.snapshot(&gateway.id).await?;
        facts.revision = revision;
        (facts.target_revision, facts.changed_at_ms) =
            store.latest_data_plane_change(&gateway.id).await?;
        facts.config = Config::default().apply(&ConfigUpdate {
            revision,
            snapshot: true,
            upserted: entities.clone(),
            ..Default::default()
        });
        facts.entities = entities.into_iter().map(|e| (e.id.clone(), e)).collect();
        facts.nodes = registry.list(&gateway.id).await?;
        Ok(facts)
    }

    /// The gateway's id ("" when it does not exist).
    pub fn gateway_id(&self) -> &str {
        self.gateway.as_ref().map_or("", |g| g.id.as_str())
    }

    /// `name (id)` of an entity of the gateway, or the id.
    pub fn label(&self, id: &str) -> String {
        match self.entities.get(id) {
            Some(e) if !e.name.is_empty() => format!("{} ({id})", e.name),
            _ => id.to_string(),
        }
    }

    /// The entities of one kind, oldest first.
    pub fn of_kind(&self, kind: Kind) -> Vec<&Entity> {
        let mut found: Vec<&Entity> = self
            .entities
            .values()
            .filter(|e| e.kind() == kind)
            .collect();
        found.sort_by_key(|e| millis(e.created_at.as_ref()));
        found
    }

    /// Finds an entity of `kind` by id or name.
    pub fn find(&self, kind: Kind, id_or_name: &str) -> Option<&Entity> {
        let of = self.of_kind(kind);
        of.iter()
            .find(|e| e.id == id_or_name)
            .or_else(|| of.iter().find(|e| e.name == id_or_name))
            .copied()
    }

    /// Why nodes refuse a virtual cluster's connections at `hop`, if they
    /// do (configuration they cannot enforce or use, as compiled here).
    pub fn refusal(
        &self,
        vc_id: &str,
        hop: sluice_proxy::hop::Hop,
    ) -> Option<sluice_proxy::hop::HopError> {
        let config = self.config.as_ref().ok()?;
        let refused = config
            .compiled()
            .virtual_clusters
            .get(vc_id)?
            .refused
            .clone()?;
        (refused.hop == hop).then_some(refused)
    }

    /// The connected nodes.
    pub fn connected(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().filter(|n| n.connected)
    }

    /// Errors the nodes reported at `hop` about any of `entities` within
    /// [`RECENT_MS`] (or at an unknown time), newest first.
    pub fn recent_errors(
        &self,
        hop: &str,
        entities: &[&str],
    ) -> Vec<(&NodeRecord, &NodeHopErrors)> {
        let mut found: Vec<(&NodeRecord, &NodeHopErrors)> = self
            .nodes
            .iter()
            .flat_map(|n| n.errors.iter().map(move |e| (n, e)))
            .filter(|(_, e)| e.hop == hop && entities.contains(&e.entity.as_str()))
            .filter(|(node, e)| {
                // Errors from before the node applied its current revision
                // may be about configuration that has changed since.
                let at = millis(e.last_at.as_ref());
                at <= 0 || (self.now_ms - at <= RECENT_MS && at >= node.applied_at)
            })
            .collect();
        found.sort_by_key(|(_, e)| std::cmp::Reverse(millis(e.last_at.as_ref())));
        found
    }

    /// How a node's message relates to `principal`, from the forms the
    /// proxy writes principals in: `User:alice ` (ACLs, quotas),
    /// `(username "alice")` (PLAIN), or the name quoted (relayed and
    /// token failures).
    pub fn concerns(message: &str, principal: &str) -> Concern {
        let quoted = format!("{principal:?}");
        let forms = [format!("User:{principal} "), format!("(username {quoted})")];
        if forms.iter().any(|f| message.contains(f.as_str()))
            || message.ends_with(&format!("User:{principal}"))
        {
            return Concern::Names;
        }
        // Another principal in one of those forms: someone else's.
        if message.contains("User:") || message.contains("(username ") {
            return Concern::Other;
        }
        match message.contains(&quoted) {
            true => Concern::Names,
            false => Concern::Unnamed,
        }
    }

    /// Of a hop's errors, the one about `principal`: one naming it, else
    /// one naming no principal; any when no principal was asked about.
    pub fn about<'a>(
        errors: &'a [(&'a NodeRecord, &'a NodeHopErrors)],
        principal: &str,
    ) -> Option<&'a (&'a NodeRecord, &'a NodeHopErrors)> {
        if principal.is_empty() {
            return errors.first();
        }
        let of = |c: Concern| {
            errors
                .iter()
                .find(|(_, e)| Facts::concerns(&e.last_message, principal) == c)
        };
        of(Concern::Names).or_else(|| of(Concern::Unnamed))
    }

    /// A node error as a sentence with its age.
    pub fn describe_error(&self, node: &NodeRecord, e: &NodeHopErrors) -> String {
        format!(
            "node {} counted {} {}/{} on {} (last {}): {}",
            node.id,
            e.count,
            e.hop,
            e.kind,
            self.label(&e.entity),
            age(self.now_ms, millis(e.last_at.as_ref())),
            e.last_message
        )
    }

    /// The probe steps about `entity_id` at `target`, with their node:
    /// only from nodes that probed with the configuration's revision (a
    /// node still applying a change probes the old one).
    pub fn probe_steps(&self, target: &str, entity_id: &str) -> Vec<(&str, &DiagnosisProbeStep)> {
        self.probes
            .iter()
            .filter(|p| p.status == "done")
            .flat_map(|p| p.steps.iter().map(move |s| (p.node_id.as_str(), s)))
            // A listener step before the node found the listener has no id.
            .filter(|(_, s)| {
                s.target == target
                    && (s.entity_id == entity_id
                        || (target == "listener" && s.entity_id.is_empty()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Facts, age};

    #[test]
    fn a_message_concerns_the_principal_it_names_or_none() {
        use super::Concern::{Names, Other, Unnamed};
        let c = Facts::concerns;
        // As the proxy writes them (auth/check.rs, auth/gate.rs,
        // namespace/gate.rs, quota/meter.rs).
        let plain = "client 127.0.0.1:5: PLAIN: wrong username or password (username \"alice\")";
        let acl = "User:bob Produce: write on topic \"alice\": no rule allows it (denied by default); refused";
        let cert = "User:CN=app,O=acme Produce: write on topic \"t\": no rule allows it";
        let quota = "max_connections=2 (gateway-wide) reached for principal User:alice on virtual cluster v";
        let relayed = "SCRAM-SHA-256: the broker refused \"alice\" (error 58)";
        let mechanism = "UNSUPPORTED: the client asked for mechanism SCRAM-SHA-256; this virtual cluster offers PLAIN";
        assert_eq!((c(plain, "alice"), c(plain, "bob")), (Names, Other));
        assert_eq!((c(acl, "bob"), c(acl, "alice")), (Names, Other));
        assert_eq!(
            (c(cert, "CN=app,O=acme"), c(cert, "CN=app")),
            (Names, Other)
        );
        assert_eq!((c(quota, "alice"), c(quota, "alic")), (Names, Other));
        assert_eq!((c(relayed, "alice"), c(relayed, "bob")), (Names, Unnamed));
        assert_eq!(c(mechanism, "alice"), Unnamed);
        assert_eq!(c("User:alice2 Produce: write", "alice"), Other);
    }

    #[test]
    fn ages_read_like_an_operator_says_them() {
        assert_eq!(age(100_000, 97_000), "3 s ago");
        assert_eq!(age(10_000_000, 9_400_000), "10 min ago");
        assert_eq!(age(1, 0), "at an unknown time");
    }
}

//! One check per hop, in path order: each says pass, fail or unknown,
//! with its evidence, and a failing one says which failure domain it is
//! and what to change.

pub mod access;
pub mod clusters;
pub mod gateway;
pub mod listener;

use sluice_proto::admin::v1::{DiagnosisEvidence, DiagnosisFix, Entity, HopCheck};

/// The failure domains a diagnosis names (exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// The wrong gateway or environment: what serves the client is not
    /// this configuration (another gateway, no node, a node behind).
    Environment,
    /// An object the path needs does not exist.
    MissingObject,
    /// The listener or host name mapping.
    ListenerMapping,
    /// Virtual cluster ▸ backend cluster routing (the backend included).
    Routing,
    /// Client authentication.
    Auth,
    /// A policy refused.
    Policy,
}

impl Domain {
    /// The name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Environment => "environment",
            Domain::MissingObject => "missing_object",
            Domain::ListenerMapping => "listener_mapping",
            Domain::Routing => "routing",
            Domain::Auth => "auth",
            Domain::Policy => "policy",
        }
    }

    /// The domain in words.
    pub fn title(self) -> &'static str {
        match self {
            Domain::Environment => "wrong gateway or environment",
            Domain::MissingObject => "missing object in the chain",
            Domain::ListenerMapping => "listener or host name mapping",
            Domain::Routing => "virtual cluster to backend cluster routing",
            Domain::Auth => "authentication mismatch",
            Domain::Policy => "policy denial",
        }
    }
}

/// Why a check failed.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The failure domain.
    pub domain: Domain,
    /// What to change.
    pub fix: DiagnosisFix,
}

/// One hop's check.
#[derive(Debug, Clone)]
pub struct Check {
    /// The hop.
    pub hop: &'static str,
    /// pass | fail | unknown
    pub status: &'static str,
    /// One line.
    pub summary: String,
    /// The facts behind it.
    pub evidence: Vec<DiagnosisEvidence>,
    /// Set when it failed.
    pub finding: Option<Finding>,
}

impl Check {
    /// A check that passed.
    pub fn pass(hop: &'static str, summary: impl Into<String>) -> Check {
        Check {
            hop,
            status: "pass",
            summary: summary.into(),
            evidence: Vec::new(),
            finding: None,
        }
    }

    /// A check that could not be made.
    pub fn unknown(hop: &'static str, summary: impl Into<String>) -> Check {
        Check {
            hop,
            status: "unknown",
            summary: summary.into(),
            evidence: Vec::new(),
            finding: None,
        }
    }

    /// A check that failed, in `domain`, fixed by `fix`.
    pub fn fail(
        hop: &'static str,
        domain: Domain,
        summary: impl Into<String>,
        fix: DiagnosisFix,
    ) -> Check {
        Check {
            hop,
            status: "fail",
            summary: summary.into(),
            evidence: Vec::new(),
            finding: Some(Finding { domain, fix }),
        }
    }

    /// Adds a fact.
    pub fn with(
        mut self,
        source: &str,
        fact: impl Into<String>,
        entity_id: &str,
        node_id: &str,
    ) -> Check {
        self.evidence.push(DiagnosisEvidence {
            source: source.into(),
            fact: fact.into(),
            entity_id: entity_id.into(),
            node_id: node_id.into(),
        });
        self
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        self.status == "fail"
    }

    /// The answer's form.
    pub fn to_proto(&self) -> HopCheck {
        HopCheck {
            hop: self.hop.into(),
            status: self.status.into(),
            summary: self.summary.clone(),
            evidence: self.evidence.clone(),
        }
    }
}

/// A fix: change `attribute` of `resource` (on `entity`, when it exists).
pub fn fix(
    resource: &str,
    attribute: &str,
    entity: Option<&Entity>,
    action: impl Into<String>,
) -> DiagnosisFix {
    DiagnosisFix {
        resource: resource.into(),
        attribute: attribute.into(),
        entity_id: entity.map(|e| e.id.clone()).unwrap_or_default(),
        entity_name: entity.map(|e| e.name.clone()).unwrap_or_default(),
        action: action.into(),
    }
}

/// The Terraform resource type of an entity.
pub fn resource_of(entity: &Entity) -> String {
    format!("sluice_{}", entity.kind().slug())
}

//! The auth hop: who a client is. Every connection gets a [`Session`]
//! (its principal and the rule that admitted it) before any request
//! other than ApiVersions and SASL reaches its virtual cluster:
//!
//! - a virtual cluster whose rules take SASL starts each connection in
//!   the [`gate`], a lockstep exchange where the gateway answers the
//!   client's SASL itself (`terminate`) or relays it to the broker on the
//!   client's own upstream (`passthrough`);
//! - one with only `anonymous` / `client_certificate` rules admits the
//!   client at once, and refuses SASL it is offered ([`in_session`]).
//!
//! Failures are counted at hop `auth` per virtual cluster and mechanism,
//! and sent as sampled `auth_failed` events; the client is told
//! `SASL_AUTHENTICATION_FAILED` with a message naming the virtual
//! cluster, never which half of its credentials was wrong.

mod answers;
pub mod check;
pub mod gate;
pub mod jwks;
pub mod oauth;
pub mod plain;
pub mod rules;
pub mod session;
mod upstream;

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::SystemTime,
};

use sluice_proto::dataplane::v1::DataPlaneEvent;

use crate::{
    hop::{Hop, HopError, Kind},
    node::Node,
    tls::identity::ClientCertificate,
};
use jwks::KeySets;
pub use rules::{Rule, Rules};
pub use session::{InSession, Live, in_session};

/// Kafka's `UNSUPPORTED_SASL_MECHANISM`.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Kafka's `ILLEGAL_SASL_STATE`.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// Kafka's `SASL_AUTHENTICATION_FAILED`.
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// An authenticated identity, Kafka style (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    user: String,
    /// The client certificate's subject alternative names, when it was
    /// identified by one (kept for logs and later rules).
    pub alternative_names: Vec<String>,
}

impl Principal {
    /// `User:ANONYMOUS`.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// `User:<name>`.
    pub fn user(name: &str) -> Principal {
        Principal {
            user: name.to_string(),
            alternative_names: Vec::new(),
        }
    }

    /// The principal of a verified client certificate: its subject's
    /// common name (the whole subject when it has none).
    pub fn of_certificate(certificate: &ClientCertificate) -> Principal {
        Principal {
            user: certificate
                .common_name
                .clone()
                .unwrap_or_else(|| certificate.subject.clone()),
            alternative_names: certificate.alternative_names.clone(),
        }
    }

    /// The name after `User:`.
    pub fn name(&self) -> &str {
        &self.user
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "User:{}", self.user)
    }
}

/// How a connection was admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who the client is.
    pub principal: Principal,
    /// `PLAIN`, `SCRAM-SHA-512`, … or `ANONYMOUS` / `MTLS` without SASL.
    pub mechanism: &'static str,
    /// The position of the rule that admitted it.
    pub rule: usize,
    /// Whether its SASL exchange was relayed to the broker (its upstream
    /// is authenticated as the client).
    pub relayed: bool,
    /// When it ends unless the client re-authenticates (KIP-368): the
    /// `exp` of the OAUTHBEARER token the gateway checked.
    pub expires_at: Option<SystemTime>,
}

/// The JWKS documents this node fetched, shared by every virtual cluster
/// and kept across revisions.
pub fn key_sets() -> Arc<KeySets> {
    static KEYS: OnceLock<Arc<KeySets>> = OnceLock::new();
    KEYS.get_or_init(|| Arc::new(KeySets::new())).clone()
}

/// Counts and reports one failed authentication of a client at
/// `client` to virtual cluster `vc`, and returns the error that ends the
/// connection.
pub fn failed(
    node: &Node,
    vc: &str,
    mechanism: &'static str,
    client: &str,
    message: String,
) -> HopError {
    let error = HopError::new(
        Hop::Auth,
        vc,
        Kind::AuthFailed,
        format!("{mechanism}: {message}"),
    )
    .with_detail(mechanism);
    node.telemetry.event(DataPlaneEvent {
        event: "auth_failed".into(),
        key: format!("{vc}/{mechanism}"),
        count: 1,
        hop: Hop::Auth.as_str().into(),
        entity_id: vc.to_string(),
        message: format!("client {client}: {}", error.message),
        shadow: false,
    });
    error
}

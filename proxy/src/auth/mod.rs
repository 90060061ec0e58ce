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
pub mod gate;
pub mod plain;
pub mod rules;

use std::fmt;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use sluice_proto::dataplane::v1::DataPlaneEvent;

use crate::{
    hop::{Hop, HopError, Kind},
    node::Node,
    tls::identity::ClientCertificate,
};
pub use rules::{Rule, Rules};

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
    });
    error
}

/// What an admitted connection's SASL request gets.
#[derive(Debug)]
pub enum InSession {
    /// Not SASL, or a relayed session (its broker answers
    /// re-authentication itself): carried on.
    Pass,
    /// The gateway's answer.
    Answer(Bytes),
    /// SASL in a version this proxy cannot answer: the connection ends.
    Refuse,
}

/// What an admitted connection's SASL request gets. The gateway offers no
/// re-authentication (it answers `session_lifetime_ms = 0`), so SASL on a
/// connection it admitted is out of order, and SASL offered to a virtual
/// cluster that takes none is an unsupported mechanism.
pub fn in_session(
    session: &Session,
    rules: &Rules,
    api_key: i16,
    version: i16,
    correlation_id: i32,
) -> InSession {
    let answer = if session.relayed {
        return InSession::Pass;
    } else if api_key == ApiKey::SaslHandshake as i16 {
        let code = if rules.takes_sasl() {
            ILLEGAL_SASL_STATE
        } else {
            UNSUPPORTED_SASL_MECHANISM
        };
        answers::handshake(correlation_id, version, code, &[])
    } else if api_key == ApiKey::SaslAuthenticate as i16 {
        answers::authenticate(
            correlation_id,
            version,
            ILLEGAL_SASL_STATE,
            Some(
                "this connection is already authenticated; the gateway offers no re-authentication",
            ),
        )
    } else {
        return InSession::Pass;
    };
    answer.map_or(InSession::Refuse, InSession::Answer)
}

//! The virtual-cluster hop's policies, as filters in a chain (after
//! Kroxylicious's filter API). A filter declares which API keys and
//! versions it intercepts; the [`Chain`] of a virtual cluster decodes a
//! frame only when one of its filters wants it, runs the interested
//! filters in order (requests) or in reverse order (responses), and
//! re-encodes. Every other frame passes as opaque bytes.
//!
//! A filter sees a decoded message, the connection's [`Context`] (its
//! route and compiled configuration) and, for a response, the request it
//! answers ([`InFlight`]). It never reaches into the listener, the
//! backend or the sync client; what it learns on the way (broker
//! addresses, warnings) it leaves in the context for the connection.

pub mod acl;
mod addresses;
mod api_versions;
mod chain;
pub(crate) mod conditions;
mod interest;
pub mod namespace;
pub mod records;
mod session_lifetime;

pub use addresses::BrokerAddresses;
pub use api_versions::ApiVersionsCap;
pub use chain::{Chain, RequestOutcome};
pub use interest::Interest;
pub use namespace::Namespace;
pub use records::RecordPolicies;
pub use session_lifetime::{LifetimeCap, SessionLifetime};

use std::any::Any;

use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};

use sluice_proto::dataplane::v1::DataPlaneEvent;

use crate::{auth::Principal, hop::HopError, listener::routes::Route};

/// What a filter decides about a message.
#[derive(Debug)]
pub enum Verdict {
    /// Pass it on (possibly modified in place).
    Forward,
    /// Answer with this instead: on a request, the client gets it without
    /// the broker being asked; on a response, it replaces the broker's.
    Respond(ResponseKind),
    /// End the connection with this error.
    Close(HopError),
}

/// One policy of a virtual cluster.
pub trait Filter: Send + Sync + 'static {
    /// A short name for logs and errors.
    fn name(&self) -> &'static str;

    /// The requests and responses this filter wants decoded.
    fn interest(&self) -> Interest;

    /// Whether it only observes requests (never changes, answers or
    /// refuses one): a request only such filters want is forwarded as it
    /// came, even when it cannot be decoded.
    fn observes_only(&self) -> bool {
        false
    }

    /// Called with every request it declared an interest in, in chain order.
    fn on_request(
        &self,
        _cx: &mut Context<'_>,
        _header: &mut RequestHeader,
        _body: &mut RequestKind,
    ) -> Verdict {
        Verdict::Forward
    }

    /// Called with every response it declared an interest in, in reverse
    /// chain order, with the request it answers.
    fn on_response(
        &self,
        _cx: &mut Context<'_>,
        _body: &mut ResponseKind,
        _in_flight: &InFlight,
    ) -> Verdict {
        Verdict::Forward
    }
}

/// What a filter sees of its connection.
pub struct Context<'a> {
    /// The route the connection came in on: listener, port mapping,
    /// virtual cluster and backend, compiled.
    pub route: &'a Route,
    /// Who the client is, once authenticated (`None` on responses and
    /// while a SASL exchange is relayed).
    pub principal: Option<&'a Principal>,
    /// Notes on the request being handled: left by filters on the way
    /// in, read by them again on its response.
    pub notes: &'a mut Notes,
    /// What filters learned that the connection acts on.
    pub findings: &'a mut Findings,
}

/// What filters learned while handling a message, for the connection to
/// act on (the filters themselves stay free of I/O and shared state).
#[derive(Debug, Default)]
pub struct Findings {
    /// Real broker addresses seen (id, host, port), for the broker directory.
    pub brokers: Vec<(i32, String, i32)>,
    /// Problems that do not end the connection; counted and logged.
    pub warnings: Vec<HopError>,
    /// Data-plane events to send (sampled): ACL denials.
    pub events: Vec<DataPlaneEvent>,
    /// What record policies did, per policy and outcome.
    pub outcomes: Vec<records::PolicyOutcome>,
}

impl Findings {
    /// Whether there is nothing to act on.
    pub fn is_empty(&self) -> bool {
        self.brokers.is_empty()
            && self.warnings.is_empty()
            && self.events.is_empty()
            && self.outcomes.is_empty()
    }
}

/// The request a response answers. Kafka answers a connection's
/// requests in order, so responses are matched to requests by position
/// (and checked against the correlation id), never looked up by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// The request's API key.
    pub api_key: i16,
    /// The request's API version.
    pub version: i16,
    /// The request's correlation id (the response must carry it).
    pub correlation_id: i32,
}

/// Per-request values filters leave for their own response handling (the
/// topic names a namespace filter renamed, say), one per type.
#[derive(Default)]
pub struct Notes(Vec<Box<dyn Any + Send>>);

impl Notes {
    /// Keeps `value`, replacing an earlier one of the same type.
    pub fn put<T: Any + Send>(&mut self, value: T) {
        self.0.retain(|v| !v.is::<T>());
        self.0.push(Box::new(value));
    }

    /// The value of type `T`, if one was left.
    pub fn get<T: Any + Send>(&self) -> Option<&T> {
        self.0.iter().find_map(|v| v.downcast_ref::<T>())
    }

    /// Takes the value of type `T` out.
    pub fn take<T: Any + Send>(&mut self) -> Option<T> {
        let i = self.0.iter().position(|v| v.is::<T>())?;
        self.0.swap_remove(i).downcast::<T>().ok().map(|b| *b)
    }
}

impl std::fmt::Debug for Notes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notes({})", self.0.len())
    }
}

#[cfg(test)]
mod tests;

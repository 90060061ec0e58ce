//! Where something failed. Users debug a gateway by asking "which hop
//! failed?" (client ▸ listener ▸ virtual cluster ▸ backend cluster ▸ auth
//! ▸ policy), so every error the proxy returns, logs or counts is a
//! [`HopError`]: the hop, the entity involved and a reason from a closed
//! set. The listener, the filters and the backend all use this one type.

use std::fmt;

/// The hops a request travels, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hop {
    /// The port a client connected to.
    Listener,
    /// The virtual cluster the port forwards to (and its filter chain).
    VirtualCluster,
    /// The real Kafka cluster behind it.
    BackendCluster,
    /// Client authentication.
    Auth,
    /// A virtual-cluster policy.
    Policy,
}

impl Hop {
    /// The name used in logs, node status and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Hop::Listener => "listener",
            Hop::VirtualCluster => "virtual_cluster",
            Hop::BackendCluster => "backend_cluster",
            Hop::Auth => "auth",
            Hop::Policy => "policy",
        }
    }
}

/// What went wrong, from a closed set so counts aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// No forward policy routes the port a client reached.
    NoForwardPolicy,
    /// The path is configured with something this node does not enforce,
    /// so its connections are refused (fail closed).
    NotEnforced,
    /// A port could not be bound.
    BindFailed,
    /// The listener is at its connection limit.
    ConnectionLimit,
    /// Accepting a connection failed (out of file descriptors, say).
    AcceptFailed,
    /// A client sent no whole request in time.
    Timeout,
    /// A frame was malformed, oversized or cut short.
    BadFrame,
    /// A request could not be decoded for a filter that intercepts it.
    UndecodableRequest,
    /// A response could not be decoded for a filter that intercepts it.
    UndecodableResponse,
    /// A filter's answer could not be encoded.
    UnencodableMessage,
    /// A response arrived that does not answer the oldest request in flight.
    OutOfOrderResponse,
    /// Writing to the peer failed.
    WriteFailed,
    /// A request of an API the proxy cannot carry safely.
    UnsupportedApi,
    /// A draining connection's requests were not all answered in time.
    DrainTimeout,
    /// No broker could be reached.
    Unreachable,
    /// The backend reports no broker with the addressed id.
    UnknownBroker,
    /// The backend named a broker the listener has no port for.
    BrokerOutsideMapping,
    /// Refreshing the backend's broker list failed.
    MetadataRefreshFailed,
    /// A plaintext client reached a listener that requires TLS.
    TlsRequired,
    /// A TLS handshake failed (with a client or a broker).
    TlsHandshake,
    /// No turn to check a client's credentials in time (a login storm):
    /// the client is closed without an answer and retries.
    Busy,
    /// No virtual cluster serves the SNI host name a client asked for.
    UnknownServerName,
    /// A PROXY protocol header was missing, malformed or untrusted.
    ProxyHeader,
    /// Authenticating failed (the gateway to a broker, say).
    AuthFailed,
    /// Configuration this node cannot use as given (a certificate that
    /// does not parse, say): its connections are refused.
    InvalidConfig,
    /// A request of an API the virtual cluster's policies do not police
    /// (its names would reach the backend unchecked): refused.
    UnpolicedApi,
    /// Names outside the virtual cluster's namespace (or shared names a
    /// tenant may not change) were refused with Kafka's authorization
    /// errors; the rest of the request went on.
    OutsideNamespace,
    /// The gateway ACLs denied an operation (or would have, in shadow).
    AclDenied,
    /// A policy's condition could not be evaluated for a request.
    ConditionFailed,
    /// A quota's max_connections refused a connection.
    QuotaExceeded,
}

impl Kind {
    /// The name used in logs, node status and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NoForwardPolicy => "no_forward_policy",
            Kind::NotEnforced => "not_enforced",
            Kind::BindFailed => "bind_failed",
            Kind::ConnectionLimit => "connection_limit",
            Kind::AcceptFailed => "accept_failed",
            Kind::Timeout => "timeout",
            Kind::BadFrame => "bad_frame",
            Kind::UndecodableRequest => "undecodable_request",
            Kind::UndecodableResponse => "undecodable_response",
            Kind::UnencodableMessage => "unencodable_message",
            Kind::OutOfOrderResponse => "out_of_order_response",
            Kind::WriteFailed => "write_failed",
            Kind::UnsupportedApi => "unsupported_api",
            Kind::DrainTimeout => "drain_timeout",
            Kind::Unreachable => "unreachable",
            Kind::UnknownBroker => "unknown_broker",
            Kind::BrokerOutsideMapping => "broker_outside_mapping",
            Kind::MetadataRefreshFailed => "metadata_refresh_failed",
            Kind::TlsRequired => "tls_required",
            Kind::TlsHandshake => "tls_handshake_failed",
            Kind::UnknownServerName => "unknown_sni_name",
            Kind::ProxyHeader => "proxy_protocol",
            Kind::AuthFailed => "auth_failed",
            Kind::Busy => "busy",
            Kind::InvalidConfig => "invalid_config",
            Kind::UnpolicedApi => "unpoliced_api",
            Kind::OutsideNamespace => "outside_namespace",
            Kind::AclDenied => "acl_denied",
            Kind::ConditionFailed => "condition_failed",
            Kind::QuotaExceeded => "quota_exceeded",
        }
    }
}

/// The longest message an error keeps (bytes); longer ones are cut.
pub const MAX_MESSAGE: usize = 2048;

/// A failure at a hop, naming the entity involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopError {
    /// The hop that failed.
    pub hop: Hop,
    /// The id of the entity involved (listener, virtual cluster, ...).
    pub entity: String,
    /// Why, from a closed set.
    pub kind: Kind,
    /// What happened, for a person.
    pub message: String,
    /// What counts are split by within the entity and kind (the SASL
    /// mechanism of an auth failure), or empty.
    pub detail: &'static str,
    /// How many occurrences this one error stands for (the denials of
    /// one request, say); at least 1.
    pub count: u64,
}

impl HopError {
    /// An error at `hop` for `entity`.
    pub fn new(
        hop: Hop,
        entity: impl Into<String>,
        kind: Kind,
        message: impl Into<String>,
    ) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE {
            // Broker names and client input end up in messages: bound
            // what one error can make logs, node status and events carry.
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        Self {
            hop,
            entity: entity.into(),
            kind,
            message,
            detail: "",
            count: 1,
        }
    }

    /// The same error standing for `count` occurrences.
    pub fn times(mut self, count: u64) -> Self {
        self.count = count.max(1);
        self
    }

    /// The same error, counted apart by `detail` (a SASL mechanism, say).
    pub fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = detail;
        self
    }
}

impl fmt::Display for HopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hop={} entity={} kind={}: {}",
            self.hop.as_str(),
            self.entity,
            self.kind.as_str(),
            self.message
        )
    }
}

impl std::error::Error for HopError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_hop_entity_and_kind() {
        let e = HopError::new(
            Hop::BackendCluster,
            "b1",
            Kind::Unreachable,
            "no bootstrap server answered",
        );
        assert_eq!(
            e.to_string(),
            "hop=backend_cluster entity=b1 kind=unreachable: no bootstrap server answered"
        );
    }
}

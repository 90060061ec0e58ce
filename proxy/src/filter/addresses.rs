//! Broker address rewriting, always first in every chain: clients only
//! ever see the listener's advertised host and ports (or, under SNI
//! routing, each broker's host name), never a real broker. Covers Metadata, FindCoordinator (every version, batched keys
//! too), DescribeCluster and the KIP-951 `node_endpoints` of Produce
//! (v10+) and Fetch (v16+).

use kafka_protocol::{
    messages::{ApiKey, ResponseKind},
    protocol::StrBytes,
};

use super::{Context, Filter, InFlight, Interest, Verdict};
use crate::hop::{Hop, HopError, Kind};

/// `COORDINATOR_NOT_AVAILABLE`: what a client sees for a coordinator the
/// listener has no port for (it retries).
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Rewrites broker addresses to the route's port mapping.
#[derive(Debug, Default)]
pub struct BrokerAddresses;

impl Filter for BrokerAddresses {
    fn name(&self) -> &'static str {
        "broker_addresses"
    }

    fn interest(&self) -> Interest {
        Interest::new()
            .responses(ApiKey::Metadata, ..)
            .responses(ApiKey::FindCoordinator, ..)
            .responses(ApiKey::DescribeCluster, ..)
            .responses(ApiKey::Produce, 10..)
            .responses(ApiKey::Fetch, 16..)
    }

    fn on_response(
        &self,
        cx: &mut Context<'_>,
        body: &mut ResponseKind,
        in_flight: &InFlight,
    ) -> Verdict {
        match body {
            ResponseKind::Metadata(m) => m
                .brokers
                .retain_mut(|b| advertise(cx, b.node_id.0, &mut b.host, &mut b.port)),
            // Before v4 one coordinator in the body; from v4 a batch.
            ResponseKind::FindCoordinator(f) if in_flight.version < 4 => {
                coordinator(cx, &mut f.error_code, f.node_id.0, &mut f.host, &mut f.port);
            }
            ResponseKind::FindCoordinator(f) => {
                for c in &mut f.coordinators {
                    coordinator(cx, &mut c.error_code, c.node_id.0, &mut c.host, &mut c.port);
                }
            }
            ResponseKind::DescribeCluster(d) => d
                .brokers
                .retain_mut(|b| advertise(cx, b.broker_id.0, &mut b.host, &mut b.port)),
            ResponseKind::Produce(p) => p
                .node_endpoints
                .retain_mut(|n| advertise(cx, n.node_id.0, &mut n.host, &mut n.port)),
            ResponseKind::Fetch(f) => f
                .node_endpoints
                .retain_mut(|n| advertise(cx, n.node_id.0, &mut n.host, &mut n.port)),
            _ => {}
        }
        Verdict::Forward
    }
}

/// Rewrites a coordinator's address; one the listener has no port for
/// becomes `COORDINATOR_NOT_AVAILABLE` (the client asks again).
fn coordinator(
    cx: &mut Context<'_>,
    error_code: &mut i16,
    id: i32,
    host: &mut StrBytes,
    port: &mut i32,
) {
    if *error_code == 0 && !advertise(cx, id, host, port) {
        *error_code = COORDINATOR_NOT_AVAILABLE;
        *host = StrBytes::default();
        *port = -1;
    }
}

/// Replaces one broker's address with the listener's; false (and a
/// listener-hop warning) when the listener has no port for it.
fn advertise(cx: &mut Context<'_>, id: i32, host: &mut StrBytes, port: &mut i32) -> bool {
    cx.findings
        .brokers
        .push((id, host.as_str().to_string(), *port));
    let mapping = &cx.route.mapping;
    match mapping.address_of(id) {
        Ok((advertised, p)) => {
            *host = StrBytes::from_string(advertised);
            *port = i32::from(p);
            true
        }
        Err(message) => {
            cx.findings.warnings.push(HopError::new(
                Hop::Listener,
                cx.route.listener_id.clone(),
                Kind::BrokerOutsideMapping,
                message,
            ));
            false
        }
    }
}

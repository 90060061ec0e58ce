//! Quotas (`cluster_policy_quota`): rates and connection counts per
//! tenant, held gateway-wide.
//!
//! - [`QuotaPolicies`]: a virtual cluster's quota policies, compiled per
//!   revision (limits, what one bucket holds, conditions, shadow).
//! - [`Quotas`]: the node's buckets, one per (policy, metric, key): token
//!   buckets for rates, counters for connections, each at the share of
//!   its limit the control plane gave this node; what they used goes back
//!   to the control plane every second, which splits each limit among the
//!   nodes by that (ARCHITECTURE.md, "Quotas across nodes").
//! - [`Meter`]: one connection's view: which buckets its requests count
//!   against, the throttle they earn, and when the connection may be read
//!   again (KIP-219: answer at once with `throttle_time_ms`, then mute).
//! - [`throttle`]: writing `throttle_time_ms` into Produce and Fetch answers.
//!
//! A virtual cluster without quota policies has no meter: its requests
//! never touch this module.

mod buckets;
mod meter;
pub(crate) mod policies;
#[cfg(test)]
mod tests;
pub mod throttle;

pub use buckets::{ConnectionSlot, Quotas};
pub use meter::{Meter, Who};
pub use policies::QuotaPolicies;

/// What a bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Produce request bytes per second.
    ProduceBytes,
    /// Fetch response bytes per second.
    FetchBytes,
    /// Requests per second.
    Requests,
    /// Open connections.
    Connections,
}

impl Metric {
    /// Its name on the sync stream.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ProduceBytes => "produce_bytes",
            Metric::FetchBytes => "fetch_bytes",
            Metric::Requests => "requests",
            Metric::Connections => "connections",
        }
    }

    /// The metric named by [`Metric::as_str`].
    pub fn from_name(name: &str) -> Option<Metric> {
        [
            Metric::ProduceBytes,
            Metric::FetchBytes,
            Metric::Requests,
            Metric::Connections,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }

    /// Whether it is a rate (token bucket) rather than a count.
    pub fn is_rate(self) -> bool {
        self != Metric::Connections
    }
}

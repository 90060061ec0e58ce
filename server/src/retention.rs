//! How long finished event deliveries and departed data-plane nodes are
//! kept, and the task that prunes them.

use std::time::Duration;

use crate::store::Store;

/// Prune at least this often (and at start).
const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// Prune at most this often.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Retention settings (None: keep forever).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Delivered and dead event deliveries, after they finished.
    pub event_deliveries: Option<Duration>,
    /// Data-plane nodes, after they disconnected and were last seen.
    pub dataplane_nodes: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            event_deliveries: Some(DEFAULT),
            dataplane_nodes: Some(DEFAULT),
        }
    }
}

/// The default retention of both (a week).
pub const DEFAULT: Duration = Duration::from_secs(7 * 86_400);

impl Retention {
    /// How often to prune: half the shortest retention, within 1 s..10 min.
    pub fn interval(&self) -> Duration {
        [self.event_deliveries, self.dataplane_nodes]
            .into_iter()
            .flatten()
            .map(|d| d / 2)
            .min()
            .unwrap_or(MAX_INTERVAL)
            .clamp(MIN_INTERVAL, MAX_INTERVAL)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Prunes now and then every [`Retention::interval`], until the process
/// ends. Failures are logged and retried at the next tick.
pub async fn run(store: Store, retention: Retention) {
    if retention.event_deliveries.is_none() && retention.dataplane_nodes.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(retention.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(keep) = retention.event_deliveries {
            match store.prune_event_deliveries(millis(keep)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "pruned finished event deliveries"),
                Err(e) => tracing::warn!(error = %e, "could not prune event deliveries"),
            }
        }
        if let Some(keep) = retention.dataplane_nodes {
            match store.prune_disconnected_nodes(millis(keep)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "pruned long-disconnected data-plane nodes"),
                Err(e) => tracing::warn!(error = %e, "could not prune data-plane nodes"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_follows_the_shortest_retention() {
        assert_eq!(Retention::default().interval(), MAX_INTERVAL);
        let short = Retention {
            event_deliveries: Some(Duration::from_secs(60)),
            dataplane_nodes: None,
        };
        assert_eq!(short.interval(), Duration::from_secs(30));
        let tiny = Retention {
            event_deliveries: None,
            dataplane_nodes: Some(Duration::from_millis(10)),
        };
        assert_eq!(tiny.interval(), MIN_INTERVAL);
    }
}

//! One connection's quotas: which buckets its requests count against
//! (decided once per connection, client id and API — conditions are not
//! evaluated per request), the throttle each request or answer earns,
//! and until when the connection is muted (not read) after one.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use kafka_protocol::messages::ApiKey;
use sluice_proto::condition::Condition;

use super::{
    Metric, QuotaPolicies,
    buckets::{Bucket, ConnectionSlot, Quotas},
    policies::{Per, Policy},
};
use crate::{
    filter::records::{Outcome, PolicyOutcome},
    hop::{Hop, HopError, Kind},
    telemetry::Telemetry,
};

/// Who a connection is, for conditions and bucket keys.
#[derive(Debug, Clone)]
pub struct Who {
    /// The authenticated principal (`User:alice`).
    pub principal: String,
    /// The listener it came in on.
    pub listener: String,
    /// Its virtual cluster.
    pub virtual_cluster: String,
}

/// One bucket a request counts against.
#[derive(Debug, Clone)]
struct Applied {
    policy_id: Arc<str>,
    metric: Metric,
    limit: f64,
    shadow: bool,
    bucket: Arc<Bucket>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The policies the cache below was decided under.
    policies: Option<Arc<QuotaPolicies>>,
    /// The client id it was decided for (when policies read it).
    client_id: Vec<u8>,
    /// The buckets per API key (-1 for all, when no condition reads `api`).
    by_api: HashMap<i16, Arc<[Applied]>>,
}

/// A connection's quotas.
pub struct Meter {
    quotas: Arc<Quotas>,
    telemetry: Arc<Telemetry>,
    who: Who,
    inner: Mutex<Inner>,
    /// When the meter was made: `muted` counts from it.
    base: Instant,
    /// Not read again before `base` + this many nanoseconds (0: not
    /// muted); an atomic, so the unmetered path costs one load.
    muted: AtomicU64,
}

impl Meter {
    /// The meter of a connection of `who`.
    pub fn new(quotas: Arc<Quotas>, telemetry: Arc<Telemetry>, who: Who) -> Self {
        Self {
            quotas,
            telemetry,
            who,
            inner: Mutex::default(),
            base: Instant::now(),
            muted: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request of `bytes` (frame size) under `policies` — one
    /// request, and its bytes if it is a Produce — if its buckets are out
    /// of debt: `Ok` with the throttle its answer carries (zero within
    /// every share; the connection is muted for it), or `Err` with how
    /// long until they are, nothing counted. Debt run up by any
    /// connection holds it, so a client that ignores throttles or
    /// spreads over connections is held to the rate all the same. Group
    /// membership, SASL and ApiVersions requests are never held (a late
    /// Heartbeat costs a rebalance) and never mute the connection; they
    /// still count. `first`: the request's first try (a hold is counted
    /// once).
    pub fn try_request(
        &self,
        policies: &Arc<QuotaPolicies>,
        api_key: i16,
        client_id: &[u8],
        bytes: usize,
        first: bool,
    ) -> Result<Duration, Duration> {
        let now = Instant::now();
        let default = self.quotas.default_share();
        let applied = self.applied(policies, api_key, client_id);
        let exempt = never_held(api_key);
        let mut taken: Vec<(&Applied, f64)> = Vec::new();
        let mut throttle = Duration::ZERO;
        for a in applied.iter() {
            let cost = match a.metric {
                Metric::Requests => 1.0,
                Metric::ProduceBytes if api_key == ApiKey::Produce as i16 => bytes as f64,
                // A Fetch's bytes count on its answer; its request waits
                // out their debt.
                Metric::FetchBytes if api_key == ApiKey::Fetch as i16 => 0.0,
                _ => continue,
            };
            let shadow = a.shadow || exempt;
            match a.bucket.try_charge(cost, a.limit, default, shadow, now) {
                Ok(wait) => {
                    if !wait.is_zero() && (a.shadow || !exempt) && cost > 0.0 {
                        self.count(&a.policy_id, Outcome::Throttled, a.shadow);
                    }
                    if !a.shadow && !exempt {
                        throttle = throttle.max(wait);
                    }
                    taken.push((a, cost));
                }
                Err(wait) => {
                    for (b, cost) in taken {
                        b.bucket.refund(cost);
                    }
                    if first {
                        self.count(&a.policy_id, Outcome::Throttled, false);
                    }
                    return Err(wait);
                }
            }
        }
        self.mute(now, throttle);
        Ok(throttle)
    }

    /// Counts an answer of `bytes` (frame size): its bytes if it answers
    /// a Fetch. Returns the throttle it earned; the connection is muted
    /// for it.
    pub fn on_response(
        &self,
        policies: &Arc<QuotaPolicies>,
        api_key: i16,
        bytes: usize,
    ) -> Duration {
        if api_key != ApiKey::Fetch as i16 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let applied = {
            let inner = self.lock();
            let key = if policies.reads_api { api_key } else { -1 };
            match (&inner.policies, inner.by_api.get(&key)) {
                (Some(p), Some(a)) if Arc::ptr_eq(p, policies) => a.clone(),
                // The request was counted under other policies: the
                // answer is counted under these, decided now.
                _ => {
                    let client_id = inner.client_id.clone();
                    drop(inner);
                    self.applied(policies, api_key, &client_id)
                }
            }
        };
        let throttle = self.charge(&applied, now, |metric| {
            (metric == Metric::FetchBytes).then_some(bytes as f64)
        });
        self.mute(now, throttle);
        throttle
    }

    /// Until when the connection is not to be read, if it is muted.
    pub fn muted_until(&self) -> Option<Instant> {
        let nanos = self.muted.load(Ordering::Relaxed);
        if nanos == 0 {
            return None;
        }
        let until = self.base + Duration::from_nanos(nanos);
        (until > Instant::now()).then_some(until)
    }

    fn mute(&self, now: Instant, throttle: Duration) {
        if throttle.is_zero() {
            return;
        }
        let until = (now + throttle).saturating_duration_since(self.base);
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.muted.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Charges each applied bucket what `cost` says of its metric; the
    /// longest throttle of an enforced one (shadow ones are counted only).
    fn charge(
        &self,
        applied: &[Applied],
        now: Instant,
        cost: impl Fn(Metric) -> Option<f64>,
    ) -> Duration {
        let default = self.quotas.default_share();
        let mut throttle = Duration::ZERO;
        for a in applied {
            let Some(cost) = cost(a.metric) else { continue };
            let wait = a.bucket.charge(cost, a.limit, default, now);
            if wait.is_zero() {
                continue;
            }
            self.count(&a.policy_id, Outcome::Throttled, a.shadow);
            if !a.shadow {
                throttle = throttle.max(wait);
            }
        }
        throttle
    }

    /// Counts a throttle or refusal in node status, and as a (sampled)
    /// `quota_exceeded` event.
    fn count(&self, policy_id: &str, outcome: Outcome, shadow: bool) {
        let outcome = PolicyOutcome {
            policy_id: policy_id.to_string(),
            outcome,
            shadow,
            count: 1,
            message: None,
        };
        self.telemetry.outcome(&outcome);
        if let Some(event) = outcome.event() {
            self.telemetry.event(event);
        }
    }

    /// The buckets a request of `api_key` from `client_id` counts
    /// against, decided once and cached.
    fn applied(
        &self,
        policies: &Arc<QuotaPolicies>,
        api_key: i16,
        client_id: &[u8],
    ) -> Arc<[Applied]> {
        let mut inner = self.lock();
        if !inner
            .policies
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, policies))
        {
            inner.policies = Some(policies.clone());
            inner.by_api.clear();
        }
        if policies.reads_client_id && inner.client_id != client_id {
            inner.client_id = client_id.to_vec();
            inner.by_api.clear();
        }
        let key = if policies.reads_api { api_key } else { -1 };
        if let Some(a) = inner.by_api.get(&key) {
            return a.clone();
        }
        let client_id = String::from_utf8_lossy(client_id);
        let api = ApiKey::try_from(api_key).map_or_else(|_| String::new(), |k| format!("{k:?}"));
        let applied: Arc<[Applied]> = policies
            .policies
            .iter()
            .filter(|p| self.holds(p, &client_id, &api))
            .flat_map(|p| {
                let key = key_of(p, &self.who, &client_id);
                [Metric::ProduceBytes, Metric::FetchBytes, Metric::Requests]
                    .into_iter()
                    .filter_map(move |metric| Some((p, metric, p.limit(metric)?, key.clone())))
            })
            .map(|(p, metric, limit, key)| Applied {
                policy_id: p.id.clone(),
                metric,
                limit: limit as f64,
                shadow: p.shadow,
                bucket: self.quotas.bucket(&p.id, metric, &key),
            })
            .collect();
        // A hostile client cycling through API keys grows this by at most
        // the keys there are.
        inner.by_api.insert(key, applied.clone());
        applied
    }

    /// Whether `policy`'s conditions hold; one that cannot be evaluated
    /// counts as holding (a quota fails closed) and is reported.
    fn holds(&self, policy: &Policy, client_id: &str, api: &str) -> bool {
        self.holds_where(policy, client_id, api, |_| true)
    }

    /// [`Meter::holds`] over the conditions `which` picks (the others are
    /// taken to hold).
    fn holds_where(
        &self,
        policy: &Policy,
        client_id: &str,
        api: &str,
        which: impl Fn(&Condition) -> bool,
    ) -> bool {
        let values = [
            ("principal", self.who.principal.as_str()),
            ("client_id", client_id),
            ("virtual_cluster", self.who.virtual_cluster.as_str()),
            ("listener", self.who.listener.as_str()),
            ("api", api),
        ];
        policy
            .conditions
            .iter()
            .filter(|c| which(c))
            .all(|c| match c.holds(&values) {
                Ok(holds) => holds,
                Err(e) => {
                    self.telemetry.error(&HopError::new(
                        Hop::Policy,
                        policy.id.to_string(),
                        Kind::ConditionFailed,
                        format!("condition: {e}; the quota applies"),
                    ));
                    true
                }
            })
    }

    /// Counts a new connection against every `max_connections` quota
    /// whose conditions hold (`api` empty), or refuses it with the
    /// policy-hop error of the first one it would exceed. The slots hold
    /// the connection counted until dropped.
    pub fn admit(
        &self,
        policies: &QuotaPolicies,
        client_id: &str,
    ) -> Result<Vec<ConnectionSlot>, HopError> {
        let default = self.quotas.default_share();
        let mut slots = Vec::new();
        for p in &policies.policies {
            let Some(limit) = p.limit(Metric::Connections) else {
                continue;
            };
            // `api` is empty when a client connects: a condition (of the
            // policy or a parent) reading it is taken to hold — the limit
            // applies rather than silently not.
            if !self.holds_where(p, client_id, "", |c| !c.reads("api")) {
                continue;
            }
            let key = key_of(p, &self.who, client_id);
            let bucket = self.quotas.bucket(&p.id, Metric::Connections, &key);
            let within = bucket.open(limit as f64, default, !p.shadow);
            if !within {
                self.count(&p.id, Outcome::Refused, p.shadow);
            }
            if within || p.shadow {
                slots.push(ConnectionSlot::new(bucket));
                continue;
            }
            let whose = match p.per {
                Per::VirtualCluster => "this virtual cluster".to_string(),
                Per::Principal => format!("principal {}", key.escape_debug()),
                Per::ClientId => format!("client id {:?}", key.escape_debug().to_string()),
            };
            return Err(HopError::new(
                Hop::Policy,
                p.id.to_string(),
                Kind::QuotaExceeded,
                format!(
                    "max_connections={limit} (gateway-wide) reached for {whose} on virtual cluster {}: the connection is refused",
                    self.who.virtual_cluster
                ),
            ));
        }
        Ok(slots)
    }
}

/// The bucket key of `policy` for a connection of `who` and `client_id`.
/// Keys are cut to [`MAX_KEY`] bytes (a client id can be 32 KiB).
fn key_of(policy: &Policy, who: &Who, client_id: &str) -> String {
    let key = match policy.per {
        Per::VirtualCluster => "",
        Per::Principal => who.principal.as_str(),
        Per::ClientId => client_id,
    };
    let mut end = key.len().min(MAX_KEY);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key[..end].to_string()
}

/// The longest bucket key kept, in bytes.
const MAX_KEY: usize = 256;

/// Requests never held or muted for: group membership (held, they would
/// cost a rebalance), SASL and ApiVersions (a held login can outlive the
/// session it renews).
fn never_held(api_key: i16) -> bool {
    [
        ApiKey::Heartbeat,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::LeaveGroup,
        ApiKey::ConsumerGroupHeartbeat,
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
        ApiKey::ApiVersions,
    ]
    .iter()
    .any(|k| *k as i16 == api_key)
}

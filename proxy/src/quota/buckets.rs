//! The node's quota buckets: one per (policy, metric, key), shared by
//! every connection that counts against it. A rate bucket is a token
//! bucket filling at its share of the limit, one second deep, that may go
//! into debt: a request goes on once its buckets are out of debt (it is
//! held until then), and the debt it leaves becomes the throttle its
//! answer carries. Debt is capped at [`MAX_DEBT`] of the rate: one request
//! or answer costing more is counted as that much (as a broker's quota
//! window forgets). A connections bucket counts open connections against
//! its share of the limit (rounded up, at least one).
//!
//! Shares come from the control plane as fractions of each limit; a
//! bucket it has not given one runs at the node's default share (1 / the
//! nodes of the gateway), and keeps its last share when the control
//! plane is away.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sluice_proto::dataplane::v1::{QuotaShares, QuotaUse};

use super::Metric;

/// The most buckets a node keeps per policy; past it, new keys of that
/// policy share its overflow bucket (stricter, never looser) until idle
/// ones are dropped. Per policy, so one tenant's keys cannot crowd out
/// another's.
const MAX_BUCKETS: usize = 10_000;
/// A bucket nobody uses for this long is dropped, with its share.
const IDLE: Duration = Duration::from_secs(60);
/// Bucket depth: a burst of this long at the bucket's rate.
const BURST: f64 = 1.0;
/// The longest throttle one answer carries; debt beyond it holds the
/// next requests.
pub(crate) const MAX_THROTTLE: Duration = Duration::from_secs(10);
/// The most debt a bucket keeps, in seconds of its rate.
pub(crate) const MAX_DEBT: Duration = Duration::from_secs(30);
/// How long an idle bucket that holds a share is still reported (so the
/// control plane shrinks its share rather than giving it away twice);
/// after that its share is dropped and it runs at the default again.
const IDLE_REPORT: Duration = Duration::from_secs(10);
/// The smallest share a bucket runs at (a share of 0 would stop it for good).
const MIN_SHARE: f64 = 0.001;
/// The most uses one report carries (the largest, when there are more).
const MAX_REPORT: usize = 2048;
/// The key of a policy's overflow bucket: longer than any key a client
/// can bring (those are cut to 256 bytes), so none is mistaken for it.
fn overflow_key() -> String {
    format!("(overflow){}", "-".repeat(300))
}

/// What a bucket is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Id {
    policy: Arc<str>,
    metric: Metric,
    key: Arc<str>,
}

/// One bucket.
#[derive(Debug)]
pub struct Bucket {
    id: Id,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The control plane's share for this bucket, if it gave one.
    share: Option<f64>,
    /// Tokens (bytes or requests) available; negative is debt.
    tokens: f64,
    /// When tokens were last added (none yet: the bucket starts full).
    last: Option<Instant>,
    /// Used since the last report.
    used: f64,
    /// Held traffic back since the last report.
    limited: bool,
    /// The limit it last ran under (reports are fractions of it).
    limit: f64,
    /// Open connections (connections buckets).
    open: u64,
    /// Whether it last ran for a shadow policy.
    shadow: bool,
    /// Last used.
    touched: Instant,
}

impl Bucket {
    fn new(id: Id) -> Self {
        Self {
            id,
            state: Mutex::new(State {
                share: None,
                tokens: 0.0,
                last: None,
                used: 0.0,
                limited: false,
                limit: 0.0,
                open: 0,
                shadow: false,
                touched: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rate it runs at under `limit`, and its tokens brought up to `now`.
    fn refill(s: &mut State, limit: f64, default: f64, now: Instant) -> f64 {
        let rate =
            (limit * s.share.unwrap_or(default).clamp(MIN_SHARE, 1.0)).max(f64::MIN_POSITIVE);
        let depth = rate * BURST;
        s.tokens = match s.last {
            None => depth,
            Some(t) => {
                (s.tokens + rate * now.saturating_duration_since(t).as_secs_f64()).min(depth)
            }
        };
        s.last = Some(now);
        s.limit = limit;
        rate
    }

    /// Takes `cost` if the bucket is out of debt (checked and charged
    /// under one lock, so requests released together cannot all pass):
    /// `Ok` with the throttle the request's answer carries (the debt it
    /// leaves, at most [`MAX_THROTTLE`]; zero within the share), or `Err`
    /// with how long until the bucket is out of debt, nothing taken. A
    /// shadow bucket always takes. A bucket switching between shadow and
    /// enforce starts afresh (shadow debt is not made anyone's).
    pub fn try_charge(
        &self,
        cost: f64,
        limit: f64,
        default: f64,
        shadow: bool,
        now: Instant,
    ) -> Result<Duration, Duration> {
        let mut s = self.lock();
        if s.shadow != shadow {
            s.shadow = shadow;
            s.last = None;
        }
        let rate = Self::refill(&mut s, limit, default, now);
        s.touched = now;
        if s.tokens < 0.0 && !shadow {
            s.limited = true;
            return Err(Duration::from_secs_f64(
                (-s.tokens / rate).clamp(0.0, MAX_DEBT.as_secs_f64()),
            ));
        }
        s.used += cost;
        s.tokens = (s.tokens - cost).max(-rate * MAX_DEBT.as_secs_f64());
        if s.tokens >= 0.0 {
            return Ok(Duration::ZERO);
        }
        s.limited = true;
        Ok(Duration::from_secs_f64(
            (-s.tokens / rate).clamp(0.0, MAX_THROTTLE.as_secs_f64()),
        ))
    }

    /// Gives back what [`Bucket::try_charge`] took, when another bucket
    /// of the same request held it back.
    pub fn refund(&self, cost: f64) {
        let mut s = self.lock();
        s.used = (s.used - cost).max(0.0);
        s.tokens += cost;
    }

    /// Counts `cost` whatever the debt (an answer's bytes, known only
    /// once the broker answered); returns the throttle it carries.
    pub fn charge(&self, cost: f64, limit: f64, default: f64, now: Instant) -> Duration {
        let mut s = self.lock();
        let rate = Self::refill(&mut s, limit, default, now);
        s.touched = now;
        s.used += cost;
        s.tokens = (s.tokens - cost).max(-rate * MAX_DEBT.as_secs_f64());
        if s.tokens >= 0.0 {
            return Duration::ZERO;
        }
        s.limited = true;
        Duration::from_secs_f64((-s.tokens / rate).clamp(0.0, MAX_THROTTLE.as_secs_f64()))
    }

    /// Opens a connection against a connections `limit`: whether it is
    /// within this node's share. Over it, an enforced bucket refuses (the
    /// count is unchanged); a shadow one counts it anyway.
    pub fn open(&self, limit: f64, default: f64, enforce: bool) -> bool {
        let mut s = self.lock();
        let cap = (limit * s.share.unwrap_or(default).clamp(MIN_SHARE, 1.0))
            .ceil()
            .max(1.0);
        s.touched = Instant::now();
        s.limit = limit;
        let within = (s.open as f64) < cap;
        if !within {
            s.limited = true;
            if enforce {
                return false;
            }
        }
        s.open += 1;
        within
    }

    fn close(&self) {
        let mut s = self.lock();
        s.open = s.open.saturating_sub(1);
        s.touched = Instant::now();
    }

    /// What it used since the last call, as a fraction of its limit (a
    /// rate over `period`, or the open count), and whether it held
    /// traffic back; `None` when idle.
    fn take_use(&self, period: Duration) -> Option<QuotaUse> {
        let mut s = self.lock();
        let (used, limited) = (std::mem::take(&mut s.used), std::mem::take(&mut s.limited));
        if s.limit <= 0.0 {
            return None;
        }
        // A bucket holding a share is reported while idle for a while, so
        // the control plane shrinks its share rather than giving the whole
        // limit to others while it could still use it; then it lets go.
        let idle_for = Instant::now().saturating_duration_since(s.touched);
        if s.share.is_some() && s.open == 0 && idle_for >= IDLE_REPORT {
            s.share = None;
        }
        let held = s.share.is_some();
        let fraction = if self.id.metric.is_rate() {
            if used == 0.0 && !limited && !held {
                return None;
            }
            used / period.as_secs_f64().max(0.001) / s.limit
        } else {
            if s.open == 0 && !limited && !held {
                return None;
            }
            s.open as f64 / s.limit
        };
        Some(QuotaUse {
            policy_id: self.id.policy.to_string(),
            metric: self.id.metric.as_str().into(),
            key: self.id.key.to_string(),
            used: fraction,
            limited,
        })
    }

    /// Whether nobody has used it for [`IDLE`] and it holds no connection.
    fn idle(&self, now: Instant) -> bool {
        let s = self.lock();
        s.open == 0 && now.saturating_duration_since(s.touched) >= IDLE
    }
}

/// A connection counted against a connections bucket, until dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<Bucket>);

impl ConnectionSlot {
    /// Holds a connection `bucket` counted (it was opened).
    pub(crate) fn new(bucket: Arc<Bucket>) -> Self {
        Self(bucket)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The buckets, by id, and how many each policy has.
#[derive(Debug, Default)]
struct Map {
    buckets: HashMap<Id, Arc<Bucket>>,
    /// Buckets per policy.
    per_policy: HashMap<Arc<str>, usize>,
}

/// Every bucket of the node.
#[derive(Debug)]
pub struct Quotas {
    buckets: Mutex<Map>,
    /// The default share, as f64 bits.
    default_share: AtomicU64,
    /// When usage was last taken.
    reported: Mutex<Instant>,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            buckets: Mutex::default(),
            default_share: AtomicU64::new(1.0f64.to_bits()),
            reported: Mutex::new(Instant::now()),
        }
    }
}

impl Quotas {
    fn map(&self) -> MutexGuard<'_, Map> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The share of a bucket the control plane has given none.
    pub fn default_share(&self) -> f64 {
        f64::from_bits(self.default_share.load(Ordering::Relaxed))
    }

    /// The bucket of `policy`'s `metric` for `key` (created on first use).
    pub fn bucket(&self, policy: &Arc<str>, metric: Metric, key: &str) -> Arc<Bucket> {
        let mut map = self.map();
        let mut id = Id {
            policy: policy.clone(),
            metric,
            key: key.into(),
        };
        if let Some(b) = map.buckets.get(&id) {
            return b.clone();
        }
        if map.per_policy.get(policy).copied().unwrap_or(0) >= MAX_BUCKETS {
            id.key = overflow_key().into();
            if let Some(b) = map.buckets.get(&id) {
                return b.clone();
            }
        }
        *map.per_policy.entry(policy.clone()).or_default() += 1;
        let bucket = Arc::new(Bucket::new(id.clone()));
        map.buckets.insert(id, bucket.clone());
        bucket
    }

    /// What the buckets used since the last call (about a second), for
    /// the control plane; drops buckets idle for a minute.
    pub fn usage(&self) -> (Vec<QuotaUse>, Duration) {
        let now = Instant::now();
        let period = {
            let mut last = self.reported.lock().unwrap_or_else(|p| p.into_inner());
            let period = now.saturating_duration_since(*last);
            *last = now;
            period
        };
        let mut map = self.map();
        let mut uses: Vec<(Arc<Bucket>, QuotaUse)> = map
            .buckets
            .values()
            .filter_map(|b| Some((b.clone(), b.take_use(period)?)))
            .collect();
        let Map {
            buckets,
            per_policy,
        } = &mut *map;
        buckets.retain(|id, b| {
            let keep = Arc::strong_count(b) > 1 || !b.idle(now);
            if !keep && let Some(n) = per_policy.get_mut(&id.policy) {
                *n = n.saturating_sub(1);
            }
            keep
        });
        per_policy.retain(|_, n| *n > 0);
        drop(map);
        if uses.len() > MAX_REPORT {
            uses.sort_by(|a, b| b.1.used.total_cmp(&a.1.used));
            // What is not reported lets go of its share: the control
            // plane, not hearing of it, gives that part to others.
            for (bucket, _) in uses.drain(MAX_REPORT..) {
                bucket.lock().share = None;
            }
        }
        (uses.into_iter().map(|(_, u)| u).collect(), period)
    }

    /// Takes the shares the control plane sent. Values that are not a
    /// fraction are ignored.
    pub fn apply(&self, shares: &QuotaShares) {
        let default = match shares.default_share {
            d if d > 0.0 && d <= 1.0 => d,
            _ => 1.0,
        };
        self.default_share
            .store(default.to_bits(), Ordering::Relaxed);
        let map = self.map();
        for s in &shares.shares {
            let Some(metric) = Metric::from_name(&s.metric) else {
                continue;
            };
            if !(0.0..=1.0).contains(&s.share) {
                continue;
            }
            let id = Id {
                policy: s.policy_id.as_str().into(),
                metric,
                key: s.key.as_str().into(),
            };
            if let Some(b) = map.buckets.get(&id) {
                b.lock().share = Some(s.share);
            }
        }
    }
}

//! Quotas across nodes: each `cluster_policy_quota` limit holds for the
//! whole gateway, however many nodes a tenant's traffic goes through.
//! Nodes report what each bucket used every second (as a fraction of its
//! limit, and whether it held traffic back); the server splits each
//! limit among the nodes that use it and sends each node its shares.
//!
//! The split, per bucket (policy, metric, key), over the nodes that
//! reported it in the last [`STALE`] (a minute: a node that stops
//! reporting may be cut off and still serving at its last shares):
//! - a node that was not held back wants what it used plus headroom
//!   (`1.25 × used + 0.02`; `1.1 × used + 0.01` while another node is
//!   held back); one that was held back wants more than there is;
//! - the limit is filled max-min fair: the smallest wants are met first,
//!   what is left is split equally among the rest (the nodes held back);
//! - if every want is met, what is left is spread in proportion to the
//!   wants — shares follow recent usage.
//!
//! Shares always add up to the whole limit, so the gateway-wide rate
//! stays within it once shares arrive (about a second). A bucket a node
//! has no share for yet runs at the default share, 1 / the connected
//! nodes. Nodes keep their last shares when the control plane is away,
//! and report buckets that hold a share even while idle, so an idle
//! node's share shrinks instead of being given away twice.

use std::{
    collections::{HashMap, HashSet},
    ops::AddAssign,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sluice_proto::dataplane::v1::{QuotaShare, QuotaShares, QuotaUsage};

/// How long a node's last report of a bucket counts. Long, on purpose: a
/// node that stops reporting may be cut off and still serving at its last
/// shares (a node that merely stopped using a bucket reports it idle for
/// ten seconds first, so what is kept of it is a small want).
pub const STALE: Duration = Duration::from_secs(60);
/// How long a report of an idle bucket counts.
const IDLE_STALE: Duration = Duration::from_secs(3);
/// How much more than it used a node that was not held back gets, while
/// no node is held back.
const HEADROOM: f64 = 1.25;
/// ... and while others are held back (less idle headroom).
const HEADROOM_CONTENDED: f64 = 1.1;
/// What a node that was not held back gets beyond that (of the limit).
const FLOOR: f64 = 0.02;
/// ... while others are held back.
const FLOOR_CONTENDED: f64 = 0.01;
/// Splits are computed at most this often per gateway; every session in
/// between reads the last one.
const RECOMPUTE: Duration = Duration::from_millis(900);
/// The most uses taken from one report.
const MAX_USES: usize = 4096;
/// The most buckets tracked per gateway; uses of others are ignored
/// (their nodes run them at the default share, which is safe).
const MAX_BUCKETS: usize = 100_000;
/// The longest policy id, metric or key taken.
const MAX_FIELD: usize = 512;
/// A share is sent again when it moved by more than this.
const RESEND: f64 = 0.005;

/// One bucket, as nodes name it.
type Bucket = (String, String, String);

/// One node's report of one bucket.
#[derive(Debug, Clone, Copy)]
struct Use {
    used: f64,
    limited: bool,
    at: Instant,
}

#[derive(Debug, Default)]
struct Gateway {
    /// Connected nodes (by id), with their open streams (a reconnecting
    /// node's old stream may end after its new one began).
    nodes: HashMap<String, u32>,
    /// Each bucket's latest use per node.
    buckets: HashMap<Bucket, HashMap<String, Use>>,
    /// The last split: each node's shares, and when it was computed.
    split: Option<(Instant, HashMap<String, Vec<QuotaShare>>)>,
}

/// The quota state of every gateway.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    gateways: Arc<Mutex<HashMap<String, Gateway>>>,
}

impl Quotas {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Gateway>> {
        self.gateways.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A node of `gateway` connected.
    pub fn join(&self, gateway: &str, node: &str) {
        self.lock()
            .entry(gateway.to_string())
            .or_default()
            .nodes
            .entry(node.to_string())
            .or_default()
            .add_assign(1);
    }

    /// A node of `gateway` went away: the default share grows; its
    /// reports count until they are [`STALE`] (it may be serving still,
    /// cut off from us).
    pub fn leave(&self, gateway: &str, node: &str) {
        let mut all = self.lock();
        let Some(g) = all.get_mut(gateway) else {
            return;
        };
        match g.nodes.get_mut(node) {
            Some(streams) if *streams > 1 => *streams -= 1,
            _ => {
                g.nodes.remove(node);
            }
        }
        // With no node left nobody asks for shares: the reports go (a node
        // cut off and still serving keeps its shares all the same).
        if g.nodes.is_empty() {
            all.remove(gateway);
        }
    }

    /// Takes a node's report (bounded; what is not a fraction is ignored).
    pub fn report(&self, gateway: &str, node: &str, usage: QuotaUsage) {
        let now = Instant::now();
        let mut all = self.lock();
        let Some(g) = all.get_mut(gateway) else {
            return;
        };
        for u in usage.uses.into_iter().take(MAX_USES) {
            if !u.used.is_finite()
                || u.used < 0.0
                || [&u.policy_id, &u.metric, &u.key]
                    .iter()
                    .any(|f| f.len() > MAX_FIELD)
            {
                continue;
            }
            let bucket = (u.policy_id, u.metric, u.key);
            if !g.buckets.contains_key(&bucket) && g.buckets.len() >= MAX_BUCKETS {
                continue;
            }
            g.buckets.entry(bucket).or_default().insert(
                node.to_string(),
                Use {
                    used: u.used.min(1e6),
                    limited: u.limited,
                    at: now,
                },
            );
        }
    }

    /// The shares `node` is to run at now: one per bucket it reported
    /// lately, and the default for the rest. The split of every node is
    /// computed at once, at most every [`RECOMPUTE`] per gateway.
    pub fn shares(&self, gateway: &str, node: &str) -> (Vec<QuotaShare>, f64) {
        let now = Instant::now();
        let mut all = self.lock();
        let Some(g) = all.get_mut(gateway) else {
            return (Vec::new(), 1.0);
        };
        let default = 1.0 / g.nodes.len().max(1) as f64;
        let fresh = g
            .split
            .as_ref()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) < RECOMPUTE);
        if !fresh {
            g.split = Some((now, split_all(&mut g.buckets, now)));
        }
        let shares = g
            .split
            .as_ref()
            .and_then(|(_, by_node)| by_node.get(node).cloned())
            .unwrap_or_default();
        (shares, default)
    }
}

/// Every node's shares of every bucket; forgets stale reports.
fn split_all(
    buckets: &mut HashMap<Bucket, HashMap<String, Use>>,
    now: Instant,
) -> HashMap<String, Vec<QuotaShare>> {
    let mut by_node: HashMap<String, Vec<QuotaShare>> = HashMap::new();
    buckets.retain(|(policy_id, metric, key), uses| {
        // An idle report (nothing used, nothing held back) is kept only
        // briefly: its node is alive and said so; a busy one is kept for
        // STALE, in case its node is cut off and still serving.
        uses.retain(|_, u| {
            let keep = if u.used == 0.0 && !u.limited {
                IDLE_STALE
            } else {
                STALE
            };
            now.saturating_duration_since(u.at) < keep
        });
        let wants: Vec<(f64, bool)> = uses.values().map(|u| (u.used, u.limited)).collect();
        for (node, share) in uses.keys().zip(split(&wants)) {
            by_node.entry(node.clone()).or_default().push(QuotaShare {
                policy_id: policy_id.clone(),
                metric: metric.clone(),
                key: key.clone(),
                share,
            });
        }
        !uses.is_empty()
    });
    by_node
}

/// Splits a limit (1.0) among nodes that used `used` of it, `limited`
/// when they were held back: max-min fair on their wants, the rest in
/// proportion to the wants. The shares add up to 1.
pub fn split(nodes: &[(f64, bool)]) -> Vec<f64> {
    let contended = nodes.iter().any(|(_, limited)| *limited);
    let (headroom, floor) = match contended {
        true => (HEADROOM_CONTENDED, FLOOR_CONTENDED),
        false => (HEADROOM, FLOOR),
    };
    let wants: Vec<f64> = nodes
        .iter()
        .map(|&(used, limited)| {
            if limited {
                f64::INFINITY
            } else {
                used * headroom + floor
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by(|&a, &b| wants[a].total_cmp(&wants[b]));
    let mut shares = vec![0.0; wants.len()];
    let mut left = 1.0f64;
    for (served, &i) in order.iter().enumerate() {
        let fair = left / (order.len() - served) as f64;
        shares[i] = wants[i].min(fair);
        left -= shares[i];
    }
    if left > 1e-9 {
        let total: f64 = shares.iter().sum();
        for s in &mut shares {
            *s += if total > 0.0 {
                left * *s / total
            } else {
                left / wants.len() as f64
            };
        }
    }
    shares
}

/// What one session last sent its node, to send only what changed.
#[derive(Debug, Default)]
pub struct Sent {
    shares: HashMap<Bucket, f64>,
    default: Option<f64>,
}

impl Sent {
    /// The message to send for `shares` and `default`, if anything changed.
    pub fn changes(&mut self, shares: Vec<QuotaShare>, default: f64) -> Option<QuotaShares> {
        let mut changed = Vec::new();
        let mut seen = HashSet::new();
        for s in shares {
            let bucket = (s.policy_id.clone(), s.metric.clone(), s.key.clone());
            let moved = self
                .shares
                .get(&bucket)
                .is_none_or(|last| (last - s.share).abs() > RESEND);
            if moved {
                self.shares.insert(bucket.clone(), s.share);
                changed.push(s);
            }
            seen.insert(bucket);
        }
        // Buckets the node stopped reporting are forgotten: when they are
        // used again, their share is sent again.
        self.shares.retain(|b, _| seen.contains(b));
        if changed.is_empty() && self.default == Some(default) {
            return None;
        }
        self.default = Some(default);
        Some(QuotaShares {
            shares: changed,
            default_share: default,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn one_node_gets_the_whole_limit() {
        assert!(close(&split(&[(0.3, false)]), &[1.0]));
        assert!(close(&split(&[(1.0, true)]), &[1.0]));
    }

    #[test]
    fn nodes_held_back_split_the_limit_equally() {
        // Whatever they used before: two producers pushing hard on two
        // nodes end up with half each, not stuck at an old ratio.
        assert!(close(&split(&[(0.9, true), (0.1, true)]), &[0.5, 0.5]));
    }

    #[test]
    fn a_light_user_keeps_its_use_and_the_rest_goes_to_the_busy_one() {
        let s = split(&[(0.2, false), (0.8, true)]);
        let light = 0.2 * HEADROOM_CONTENDED + FLOOR_CONTENDED;
        assert!(close(&s, &[light, 1.0 - light]), "{s:?}");
    }

    #[test]
    fn without_anyone_held_back_shares_follow_usage() {
        let s = split(&[(0.1, false), (0.3, false)]);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(s[1] > s[0] * 2.0, "{s:?}");
        let idle = split(&[(0.0, false), (0.0, false)]);
        assert!(close(&idle, &[0.5, 0.5]));
    }

    #[test]
    fn shares_add_up_to_the_limit() {
        for nodes in [
            vec![(0.5, false), (0.7, false), (0.2, true)],
            vec![(2.0, false), (3.0, false)],
            vec![(0.0, true), (0.0, true), (0.0, true), (0.9, false)],
        ] {
            let s = split(&nodes);
            assert!(
                (s.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{nodes:?}: {s:?}"
            );
            assert!(s.iter().all(|x| *x >= 0.0));
        }
    }

    #[test]
    fn shares_are_per_node_and_stale_reports_are_forgotten() {
        let q = Quotas::default();
        q.join("g", "a");
        q.join("g", "b");
        let report = |limited| QuotaUsage {
            uses: vec![sluice_proto::dataplane::v1::QuotaUse {
                policy_id: "p".into(),
                metric: "produce_bytes".into(),
                key: String::new(),
                used: 0.5,
                limited,
            }],
            period_ms: 1000,
        };
        q.report("g", "a", report(true));
        q.report("g", "b", report(true));
        let (a, default) = q.shares("g", "a");
        assert_eq!(default, 0.5);
        assert_eq!(a.len(), 1);
        assert!((a[0].share - 0.5).abs() < 1e-9);
        q.leave("g", "b");
        q.lock().get_mut("g").unwrap().split = None; // computed afresh
        let (a, default) = q.shares("g", "a");
        assert_eq!(default, 1.0);
        assert!(
            (a[0].share - 0.5).abs() < 1e-9,
            "b may still serve at its share, cut off: it keeps it for a while"
        );
        let (c, _) = q.shares("g", "c");
        assert!(
            c.is_empty(),
            "a node that reported nothing gets only the default"
        );
        let mut gateways = q.lock();
        let g = gateways.get_mut("g").unwrap();
        let by_node = split_all(&mut g.buckets, Instant::now() + STALE);
        assert!(by_node.is_empty(), "every report is stale by then");
    }

    #[test]
    fn only_changes_are_sent() {
        let mut sent = Sent::default();
        let share = |s| QuotaShare {
            policy_id: "p".into(),
            metric: "requests".into(),
            key: String::new(),
            share: s,
        };
        assert!(sent.changes(vec![share(0.5)], 0.5).is_some());
        assert!(sent.changes(vec![share(0.501)], 0.5).is_none());
        let m = sent.changes(vec![share(0.6)], 0.5).unwrap();
        assert_eq!(m.shares.len(), 1);
        assert!(sent.changes(vec![], 0.5).is_none());
        assert_eq!(sent.changes(vec![share(0.6)], 0.5).unwrap().shares.len(), 1);
    }
}

//! What a node tells the control plane about its traffic: error counts by
//! hop (in its status) and sampled events (for event hooks). Sampling
//! happens here, at the node: the first event of a key in a window is sent
//! at once, repeats only bump a count that goes out when the window ends,
//! so a flood of denials is one event per key per window.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use sluice_proto::dataplane::v1::{DataPlaneEvent, HopErrors, NodeStatus, PolicyOutcomes};
use tokio::sync::Notify;

use crate::{filter::records::PolicyOutcome, hop::HopError};

/// Default sampling window.
pub const WINDOW: Duration = Duration::from_secs(60);

struct Slot {
    started: Instant,
    repeats: u64,
    last: DataPlaneEvent,
}

/// Samples events per (event, key).
pub struct Sampler {
    window: Duration,
    slots: HashMap<(String, String), Slot>,
}

impl Sampler {
    /// A sampler with the given window.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            slots: HashMap::new(),
        }
    }

    /// Records one occurrence; returns the event to send now, if this is
    /// the first of its key in the window.
    pub fn record(&mut self, now: Instant, event: DataPlaneEvent) -> Option<DataPlaneEvent> {
        let key = (event.event.clone(), event.key.clone());
        match self.slots.get_mut(&key) {
            Some(slot) if now.duration_since(slot.started) < self.window => {
                slot.repeats += event.count.max(1);
                slot.last = event;
                None
            }
            _ => {
                let first = DataPlaneEvent {
                    count: event.count.max(1),
                    ..event.clone()
                };
                self.slots.insert(
                    key,
                    Slot {
                        started: now,
                        repeats: 0,
                        last: event,
                    },
                );
                Some(first)
            }
        }
    }

    /// Ends the windows that are over: each with repeats yields one event
    /// carrying their count.
    pub fn flush(&mut self, now: Instant) -> Vec<DataPlaneEvent> {
        let window = self.window;
        let mut out = Vec::new();
        self.slots.retain(|_, slot| {
            let over = now.duration_since(slot.started) >= window;
            if over && slot.repeats > 0 {
                out.push(DataPlaneEvent {
                    count: slot.repeats,
                    ..slot.last.clone()
                });
            }
            !over
        });
        out
    }
}

/// What error counts are kept apart by: hop, entity, kind, detail.
type ErrorKey = (&'static str, String, &'static str, &'static str);

/// A node's counters and event queue, shared by the hops (writers) and
/// the sync client (reader).
pub struct Telemetry {
    sampler: Mutex<Sampler>,
    ready: Mutex<Vec<DataPlaneEvent>>,
    errors: Mutex<HashMap<ErrorKey, HopErrors>>,
    outcomes: Mutex<HashMap<(String, &'static str, bool), PolicyOutcomes>>,
    /// Whether error counts changed since the last status report.
    errors_changed: std::sync::atomic::AtomicBool,
    /// Wakes the sync client when an event is ready to send.
    pub wake: Notify,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new(WINDOW)
    }
}

impl Telemetry {
    /// Telemetry sampling events over `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            sampler: Mutex::new(Sampler::new(window)),
            ready: Mutex::default(),
            errors: Mutex::default(),
            outcomes: Mutex::default(),
            errors_changed: std::sync::atomic::AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Counts an error at its hop for its entity.
    pub fn error(&self, error: &HopError) {
        let (hop, kind) = (error.hop.as_str(), error.kind.as_str());
        if let Ok(mut errors) = self.errors.lock() {
            let slot = errors
                .entry((hop, error.entity.clone(), kind, error.detail))
                .or_insert_with(|| HopErrors {
                    hop: hop.into(),
                    entity: error.entity.clone(),
                    kind: kind.into(),
                    detail: error.detail.into(),
                    ..Default::default()
                });
            slot.count += error.count.max(1);
            slot.last_message.clone_from(&error.message);
            slot.last_at_ms = unix_ms();
        }
        self.errors_changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts what a record policy did (outcomes go out with the errors).
    pub fn outcome(&self, o: &PolicyOutcome) {
        let outcome = o.outcome.as_str();
        if let Ok(mut outcomes) = self.outcomes.lock() {
            let slot = outcomes
                .entry((o.policy_id.clone(), outcome, o.shadow))
                .or_insert_with(|| PolicyOutcomes {
                    policy_id: o.policy_id.clone(),
                    outcome: outcome.into(),
                    shadow: o.shadow,
                    ..Default::default()
                });
            slot.count += o.count;
            if let Some(m) = &o.message {
                slot.last_message.clone_from(m);
            }
        }
        self.errors_changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The record policies' outcome counts so far.
    pub fn outcomes(&self) -> Vec<PolicyOutcomes> {
        let mut all: Vec<PolicyOutcomes> = self
            .outcomes
            .lock()
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| {
            (&a.policy_id, &a.outcome, a.shadow).cmp(&(&b.policy_id, &b.outcome, b.shadow))
        });
        all
    }

    /// A status report of a node at `applied_revision`: its errors and
    /// outcomes so far, stamped with this node's clock.
    pub fn status(&self, applied_revision: i64) -> NodeStatus {
        NodeStatus {
            applied_revision,
            errors: self.errors(),
            policy_outcomes: self.outcomes(),
            sent_at_ms: unix_ms(),
        }
    }

    /// Whether error counts changed since the last call.
    pub fn take_errors_changed(&self) -> bool {
        self.errors_changed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// The error counts so far, by hop and entity.
    pub fn errors(&self) -> Vec<HopErrors> {
        let mut all: Vec<HopErrors> = self
            .errors
            .lock()
            .map(|e| e.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| {
            (&a.hop, &a.entity, &a.kind, &a.detail).cmp(&(&b.hop, &b.entity, &b.kind, &b.detail))
        });
        all
    }

    /// Records an event (sampled).
    pub fn event(&self, event: DataPlaneEvent) {
        let now_send = self
            .sampler
            .lock()
            .ok()
            .and_then(|mut s| s.record(Instant::now(), event));
        if let Some(e) = now_send {
            if let Ok(mut ready) = self.ready.lock() {
                ready.push(e);
            }
            self.wake.notify_one();
        }
    }

    /// Events to send now: first occurrences, and the counts of windows
    /// that ended.
    pub fn take_events(&self) -> Vec<DataPlaneEvent> {
        let mut out: Vec<DataPlaneEvent> = self
            .ready
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        if let Ok(mut s) = self.sampler.lock() {
            out.extend(s.flush(Instant::now()));
        }
        out
    }
}

/// Now, in Unix milliseconds (when an error last happened).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(key: &str) -> DataPlaneEvent {
        DataPlaneEvent {
            event: "acl_denied".into(),
            key: key.into(),
            count: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_flood_is_one_event_now_and_one_count_per_window() {
        let mut s = Sampler::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(s.record(t0, denial("alice")).is_some());
        for i in 1..1000 {
            assert!(
                s.record(t0 + Duration::from_millis(i), denial("alice"))
                    .is_none()
            );
        }
        assert!(
            s.record(t0, denial("bob")).is_some(),
            "another key is its own"
        );
        assert!(
            s.flush(t0 + Duration::from_secs(5)).is_empty(),
            "the window is not over"
        );
        let later = s.flush(t0 + Duration::from_secs(10));
        assert_eq!(later.len(), 1);
        assert_eq!((later[0].key.as_str(), later[0].count), ("alice", 999));
        assert!(
            s.record(t0 + Duration::from_secs(11), denial("alice"))
                .is_some(),
            "a new window"
        );
    }

    #[test]
    fn errors_are_counted_by_hop_and_entity() {
        use crate::hop::{Hop, Kind};
        let t = Telemetry::default();
        t.error(&HopError::new(
            Hop::Listener,
            "l1",
            Kind::NoForwardPolicy,
            "port 9999",
        ));
        t.error(&HopError::new(
            Hop::Listener,
            "l1",
            Kind::NoForwardPolicy,
            "port 9998",
        ));
        t.error(&HopError::new(
            Hop::BackendCluster,
            "b1",
            Kind::Unreachable,
            "refused",
        ));
        let e = t.errors();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[1].hop.as_str(), e[1].count, e[1].last_message.as_str()),
            ("listener", 2, "port 9998")
        );
    }
}

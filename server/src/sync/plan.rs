//! The sync protocol of one node stream, without I/O: what the node has
//! ACKed, what was sent, what is in flight and what changed since, and from
//! that what to send next. The session (`session.rs`) reads the store and
//! writes the stream; every decision about the protocol is made here, so it
//! is tested without a server, a database or a network.

use std::{collections::BTreeMap, sync::Arc};

use crate::hub::Change;

/// What the session should send the node next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing now: an update is in flight, or nothing changed.
    Wait,
    /// A snapshot of the gateway: for a new node, or one that fell behind
    /// the change feed.
    Snapshot,
    /// The pending changes as one delta ([`Plan::take_pending`]).
    Delta,
    /// The changes after `since` (the node's last good revision), read from
    /// the revision log: when a node resumes, and after a NACK; what the log
    /// holds is then judged by [`Plan::after_log`].
    FromLog {
        /// The revision the changes must follow.
        since: i64,
    },
}

/// What the revision log holds after the revision a [`Next::FromLog`] asked
/// about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Log {
    /// Changes after it.
    Changes,
    /// Nothing after it; `latest` is the gateway's newest revision in the
    /// log (below `since` when the node is ahead of this store, say after a
    /// backup was restored).
    Unchanged {
        /// The gateway's newest revision.
        latest: i64,
    },
    /// It was compacted away: the log no longer reaches back that far.
    Compacted,
}

/// What to send once the log has answered a [`Next::FromLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FromLog {
    /// The log's changes, as one delta.
    Delta,
    /// A snapshot instead.
    Snapshot,
    /// Nothing: the node is up to date.
    Nothing,
}

/// An update sent and not yet answered.
#[derive(Debug, Clone)]
struct InFlight {
    nonce: String,
    revision: i64,
}

/// The protocol state of one node stream.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The newest revision the node ACKed (its last good one).
    acked: i64,
    /// The newest revision sent (or skipped as covered).
    sent: i64,
    in_flight: Option<InFlight>,
    /// Changes since `sent`, newest per entity.
    pending: BTreeMap<String, Arc<Change>>,
    /// The first update is still to be decided (snapshot or resume).
    starting: bool,
    /// The next update must be read from the log from `acked` (after a NACK).
    from_log: bool,
    /// The next update must be a snapshot (the stream lagged).
    need_snapshot: bool,
    nonces: u64,
}

impl Plan {
    /// The state of a stream whose node said hello with the revision it last
    /// applied (0: none).
    pub(crate) fn new(last_applied_revision: i64) -> Self {
        let acked = last_applied_revision.max(0);
        Self {
            acked,
            sent: acked,
            in_flight: None,
            pending: BTreeMap::new(),
            starting: true,
            from_log: false,
            need_snapshot: false,
            nonces: 0,
        }
    }

    /// The newest revision the node ACKed: what a delta builds on.
    pub(crate) fn acked(&self) -> i64 {
        self.acked
    }

    /// What to send next. One update is in flight at a time; changes that
    /// arrive meanwhile wait, and go out together as the next one.
    pub(crate) fn next(&self) -> Next {
        if self.in_flight.is_some() {
            Next::Wait
        } else if self.need_snapshot || (self.starting && self.acked == 0) {
            Next::Snapshot
        } else if self.starting {
            Next::FromLog { since: self.acked }
        } else if self.pending.is_empty() {
            Next::Wait
        } else if self.from_log {
            Next::FromLog { since: self.acked }
        } else {
            Next::Delta
        }
    }

    /// A snapshot is about to be sent: it replaces whatever was pending.
    pub(crate) fn snapshot_taken(&mut self) {
        self.starting = false;
        self.need_snapshot = false;
        self.from_log = false;
        self.pending.clear();
    }

    /// The pending changes, oldest first, for a [`Next::Delta`], and the
    /// revision the delta brings the node to.
    pub(crate) fn take_pending(&mut self) -> (i64, Vec<Arc<Change>>) {
        let mut changes: Vec<Arc<Change>> =
            std::mem::take(&mut self.pending).into_values().collect();
        changes.sort_by_key(|c| c.revision);
        let revision = changes.last().map_or(self.sent, |c| c.revision);
        (revision, changes)
    }

    /// Judges what the log holds after a [`Next::FromLog`]: it replaces
    /// whatever was pending. A resuming node that is current gets nothing,
    /// one ahead of the store or behind the log a snapshot.
    pub(crate) fn after_log(&mut self, log: Log) -> FromLog {
        let starting = std::mem::take(&mut self.starting);
        self.from_log = false;
        self.pending.clear();
        match log {
            Log::Compacted => FromLog::Snapshot,
            Log::Changes => FromLog::Delta,
            Log::Unchanged { latest } if starting && self.acked > latest => FromLog::Snapshot,
            Log::Unchanged { .. } if starting => FromLog::Nothing,
            // After a NACK: what the log holds, even if it is nothing new.
            Log::Unchanged { .. } => FromLog::Delta,
        }
    }

    /// Records an update at `revision` as sent and in flight; returns the
    /// nonce its ACK or NACK must carry.
    pub(crate) fn sent(&mut self, revision: i64) -> String {
        self.nonces += 1;
        let nonce = self.nonces.to_string();
        self.sent = self.sent.max(revision);
        self.in_flight = Some(InFlight {
            nonce: nonce.clone(),
            revision,
        });
        nonce
    }

    /// Records a snapshot at `revision` as sent and in flight; returns the
    /// nonce its ACK or NACK must carry. Unlike a delta it sets what was
    /// sent to its revision even when the node claimed a newer one: a node
    /// ahead of this store (a restored backup) is resynchronised from the
    /// snapshot, and the changes after it must reach it.
    pub(crate) fn snapshot_sent(&mut self, revision: i64) -> String {
        let nonce = self.sent(revision);
        self.sent = revision;
        nonce
    }

    /// A committed change from the gateway's feed: kept for the next delta
    /// unless the node already has it or never receives its kind. Returns
    /// whether it was kept.
    pub(crate) fn on_change(&mut self, change: Arc<Change>) -> bool {
        if change.revision <= self.sent || !change.kind().is_data_plane_config() {
            return false;
        }
        self.pending.insert(change.entity_id().to_string(), change);
        true
    }

    /// The feed dropped changes this stream had not read: the next update
    /// must be a snapshot.
    pub(crate) fn on_lagged(&mut self) {
        self.need_snapshot = true;
    }

    /// An ACK: the node is at the in-flight revision. Returns it, or None
    /// for a nonce that is not in flight.
    pub(crate) fn on_ack(&mut self, nonce: &str) -> Option<i64> {
        let f = self.in_flight.take_if(|f| f.nonce == nonce)?;
        self.acked = f.revision;
        Some(f.revision)
    }

    /// A NACK: the node stays at its last good revision. The rejected
    /// update is not resent: the next one waits for a newer change and is
    /// then rebuilt from the log since the last ACK. Returns the rejected
    /// revision, or None for a nonce that is not in flight.
    pub(crate) fn on_nack(&mut self, nonce: &str) -> Option<i64> {
        let f = self.in_flight.take_if(|f| f.nonce == nonce)?;
        // Changes that arrived while the update was in flight stay
        // pending: they are sent at once, rebuilt from the log after the
        // last ACK (a fix committed before the NACK came must not wait for
        // some later, unrelated write).
        self.from_log = true;
        Some(f.revision)
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::{Entity, Kind, entity::Spec};

    use super::*;
    use crate::hub::ChangeOp;

    fn change(revision: i64, id: &str) -> Arc<Change> {
        Arc::new(Change {
            gateway_id: "gw".into(),
            revision,
            op: ChangeOp::Upsert(Box::new(Entity {
                id: id.into(),
                spec: Some(Spec::Listener(Default::default())),
                ..Default::default()
            })),
        })
    }

    /// A stream that sent its first update and had it ACKed.
    fn running(revision: i64) -> Plan {
        let mut plan = Plan::new(0);
        plan.snapshot_taken();
        let nonce = plan.sent(revision);
        assert_eq!(plan.on_ack(&nonce), Some(revision));
        plan
    }

    #[test]
    fn a_new_node_gets_a_snapshot() {
        let mut plan = Plan::new(0);
        assert_eq!(plan.next(), Next::Snapshot);
        plan.snapshot_taken();
        plan.sent(5);
        assert_eq!(plan.next(), Next::Wait);
    }

    #[test]
    fn a_node_that_knows_a_revision_resumes_from_the_log() {
        let mut plan = Plan::new(7);
        assert_eq!(plan.next(), Next::FromLog { since: 7 });
        assert_eq!(plan.clone().after_log(Log::Changes), FromLog::Delta);
        assert_eq!(
            plan.clone().after_log(Log::Unchanged { latest: 7 }),
            FromLog::Nothing
        );
        // Ahead of this store (a restored backup), or behind the log.
        assert_eq!(
            plan.clone().after_log(Log::Unchanged { latest: 6 }),
            FromLog::Snapshot
        );
        assert_eq!(plan.clone().after_log(Log::Compacted), FromLog::Snapshot);
        // A current node waits for changes, which go out as deltas.
        assert_eq!(
            plan.after_log(Log::Unchanged { latest: 9 }),
            FromLog::Nothing
        );
        assert_eq!(plan.next(), Next::Wait);
        assert!(plan.on_change(change(8, "a")));
        assert_eq!(plan.next(), Next::Delta);
    }

    #[test]
    fn a_node_ahead_of_a_restored_store_follows_its_snapshot() {
        // The node ACKed 50 elsewhere; this store was restored at 40.
        let mut plan = Plan::new(50);
        assert_eq!(plan.next(), Next::FromLog { since: 50 });
        assert_eq!(
            plan.after_log(Log::Unchanged { latest: 40 }),
            FromLog::Snapshot
        );
        plan.snapshot_taken();
        let nonce = plan.snapshot_sent(40);
        assert_eq!(plan.on_ack(&nonce), Some(40));
        // The store's next revisions are news to the node.
        assert!(plan.on_change(change(41, "a")));
        assert_eq!(plan.next(), Next::Delta);
        assert_eq!(plan.take_pending().0, 41);
    }

    #[test]
    fn a_nack_rebuilds_the_next_update_from_the_last_ack() {
        let mut plan = running(10);
        assert!(plan.on_change(change(11, "a")));
        assert_eq!(plan.next(), Next::Delta);
        let (revision, changes) = plan.take_pending();
        assert_eq!((revision, changes.len()), (11, 1));
        let nonce = plan.sent(revision);
        assert_eq!(plan.on_nack("stale"), None);
        assert_eq!(plan.on_nack(&nonce), Some(11));
        // Not resent: nothing goes out until something newer changes...
        assert_eq!(plan.next(), Next::Wait);
        assert!(!plan.on_change(change(11, "a")));
        assert_eq!(plan.next(), Next::Wait);
        // ...and then the update comes from the log, after the last ACK.
        assert!(plan.on_change(change(12, "b")));
        assert_eq!(plan.next(), Next::FromLog { since: 10 });
        assert_eq!(plan.acked(), 10);
        assert_eq!(plan.after_log(Log::Changes), FromLog::Delta);
        plan.sent(12);
        assert_eq!(plan.next(), Next::Wait);
    }

    #[test]
    fn a_change_that_came_while_the_update_was_in_flight_follows_its_nack_at_once() {
        let mut plan = running(10);
        assert!(plan.on_change(change(11, "a")));
        let (revision, _) = plan.take_pending();
        let nonce = plan.sent(revision);
        // The operator's fix is committed before the node's NACK arrives.
        assert!(plan.on_change(change(12, "a")));
        assert_eq!(plan.on_nack(&nonce), Some(11));
        assert_eq!(plan.next(), Next::FromLog { since: 10 });
    }

    #[test]
    fn a_lagged_feed_means_a_snapshot() {
        let mut plan = running(10);
        assert!(plan.on_change(change(11, "a")));
        plan.on_lagged();
        assert_eq!(plan.next(), Next::Snapshot);
        plan.snapshot_taken();
        assert_eq!(plan.next(), Next::Wait);
    }

    #[test]
    fn one_update_in_flight_and_changes_coalesce_meanwhile() {
        let mut plan = running(10);
        assert!(plan.on_change(change(11, "a")));
        let (revision, _) = plan.take_pending();
        let nonce = plan.sent(revision);
        for (revision, id) in [(12, "b"), (13, "a"), (14, "b")] {
            assert!(plan.on_change(change(revision, id)));
            assert_eq!(plan.next(), Next::Wait);
        }
        // Even a lagged feed waits for the answer.
        plan.on_lagged();
        assert_eq!(plan.next(), Next::Wait);
        assert_eq!(plan.on_ack(&nonce), Some(11));
        assert_eq!(plan.next(), Next::Snapshot);
        plan.snapshot_taken();
        for (revision, id) in [(15, "b"), (16, "a"), (17, "b")] {
            assert!(plan.on_change(change(revision, id)));
        }
        let (revision, changes) = plan.take_pending();
        let newest: Vec<(i64, &str)> = changes
            .iter()
            .map(|c| (c.revision, c.entity_id()))
            .collect();
        assert_eq!((revision, newest), (17, vec![(16, "a"), (17, "b")]));
    }

    #[test]
    fn changes_the_node_has_or_never_gets_are_dropped() {
        let mut plan = running(10);
        assert!(!plan.on_change(change(9, "old")));
        let hook = Arc::new(Change {
            gateway_id: "gw".into(),
            revision: 11,
            op: ChangeOp::Remove(Kind::EventHook, "h".into()),
        });
        assert!(!plan.on_change(hook));
        assert_eq!(plan.next(), Next::Wait);
    }
}

//! Snoozing: a hook with `snooze_seconds` hears the first event of a key
//! and then nothing more of that key until the window has passed. Keys come
//! from nodes, so what is remembered is bounded twice over: each entry is a
//! fixed-size digest of (hook, key), and the table holds at most a fixed
//! number of entries (expired ones go first, then the oldest).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

/// Entries kept by default (a digest, an instant and a window each: a few
/// MiB at most).
pub const DEFAULT_CAPACITY: usize = 65_536;

/// When each (hook, key) last went out, and for how long it is snoozed.
type Entry = (Instant, Duration);

/// The snooze table of one server.
pub struct Snoozer {
    last: Mutex<HashMap<[u8; 32], Entry>>,
    capacity: usize,
}

impl Default for Snoozer {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

fn slot(hook_id: &str, key: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(hook_id.as_bytes());
    digest.update([0]);
    digest.update(key.as_bytes());
    digest.finalize().into()
}

impl Snoozer {
    /// A table that remembers at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            last: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Whether an event of `key` may go to `hook_id` now (a hook with a
    /// window of `seconds`, 0 for none), without remembering it.
    pub fn would_admit(&self, hook_id: &str, key: &str, seconds: u32) -> bool {
        if seconds == 0 {
            return true;
        }
        let Ok(last) = self.last.lock() else {
            return true;
        };
        last.get(&slot(hook_id, key))
            .is_none_or(|(at, window)| at.elapsed() >= *window)
    }

    /// Whether an event of `key` may go to `hook_id` now; when it may, the
    /// window starts again.
    pub fn admit(&self, hook_id: &str, key: &str, seconds: u32) -> bool {
        if seconds == 0 {
            return true;
        }
        let Ok(mut last) = self.last.lock() else {
            return true;
        };
        let slot = slot(hook_id, key);
        if last
            .get(&slot)
            .is_some_and(|(at, window)| at.elapsed() < *window)
        {
            return false;
        }
        if !last.contains_key(&slot) && last.len() >= self.capacity {
            make_room(&mut last, self.capacity);
        }
        last.insert(
            slot,
            (Instant::now(), Duration::from_secs(u64::from(seconds))),
        );
        true
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.last.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forgets expired entries; if the table is still full, the oldest eighth
/// (so a flood of new keys pays for a scan only every so often). Forgetting
/// an unexpired key lets its next repeat through early: the bound on memory
/// wins over the snooze.
fn make_room(last: &mut HashMap<[u8; 32], Entry>, capacity: usize) {
    last.retain(|_, (at, window)| at.elapsed() < *window);
    if last.len() < capacity {
        return;
    }
    let mut times: Vec<Instant> = last.values().map(|(at, _)| *at).collect();
    let cut = (capacity / 8).max(1).min(times.len() - 1);
    let (_, oldest_kept, _) = times.select_nth_unstable(cut);
    let oldest_kept = *oldest_kept;
    last.retain(|_, (at, _)| *at >= oldest_kept);
    // Equal instants could keep too many: then drop arbitrary ones.
    if last.len() >= capacity {
        let extra: Vec<[u8; 32]> = last
            .keys()
            .take(last.len() + 1 - capacity)
            .copied()
            .collect();
        for k in extra {
            last.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_snoozed_per_hook_and_key() {
        let s = Snoozer::new(16);
        assert!(s.admit("h1", "alice/topic:orders", 3600));
        assert!(!s.admit("h1", "alice/topic:orders", 3600));
        assert!(!s.would_admit("h1", "alice/topic:orders", 3600));
        assert!(s.admit("h2", "alice/topic:orders", 3600), "another hook");
        assert!(s.admit("h1", "bob/topic:orders", 3600), "another key");
        assert!(s.admit("h1", "alice/topic:orders", 0), "no window");
        assert!(s.would_admit("h1", "carol", 3600));
        assert!(
            s.would_admit("h1", "carol", 3600),
            "would_admit remembers nothing"
        );
    }

    #[test]
    fn node_supplied_keys_cannot_grow_the_table_without_bound() {
        let s = Snoozer::new(1_000);
        let long = "k".repeat(1_000);
        for i in 0..20_000 {
            assert!(s.admit("h", &format!("{long}{i}"), 3600));
            assert!(s.len() <= 1_000, "{} keys after {i}", s.len());
        }
        // The newest keys are the ones still snoozed.
        assert!(!s.admit("h", &format!("{long}19999"), 3600));
    }
}

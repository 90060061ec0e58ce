//! The topic ids (KIP-516) a backend cluster's answers have shown, by
//! backend: requests that name a topic by id alone (Fetch v13+, Produce
//! v13, DeleteTopics v6+, Metadata by id) are checked against the name it
//! stands for, so an id is as hidden as its name. Shared by every
//! virtual cluster of the backend and kept across configuration
//! revisions; an id not seen yet is answered `UNKNOWN_TOPIC_ID`, and the
//! client's next Metadata request (which it makes on that error) teaches
//! it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, RwLock},
};

use uuid::Uuid;

/// Ids kept per backend; past this the map starts over (clients relearn
/// through Metadata), so a hostile broker cannot grow it without bound.
const MAX_IDS: usize = 200_000;

/// One backend cluster's topic ids and their (backend) names.
#[derive(Debug, Default)]
pub struct TopicIds {
    names: RwLock<HashMap<Uuid, String>>,
}

impl TopicIds {
    /// The shared map of backend cluster `backend_id`.
    pub fn of_backend(backend_id: &str) -> Arc<TopicIds> {
        static ALL: OnceLock<Mutex<HashMap<String, Arc<TopicIds>>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(all.entry(backend_id.to_string()).or_default())
    }

    /// Records that `id` is the topic the backend calls `name`.
    pub fn learn(&self, id: Uuid, name: &str) {
        if id.is_nil() || name.is_empty() {
            return;
        }
        let known = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .is_some_and(|n| n == name);
        if known {
            return;
        }
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if names.len() >= MAX_IDS {
            names.clear();
        }
        names.insert(id, name.to_string());
    }

    /// The backend name of topic `id`, if an answer has shown it.
    pub fn name(&self, id: Uuid) -> Option<String> {
        self.names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Whether an answer has shown a topic the backend calls `name` (it
    /// exists, or did: asking for it by name cannot create it).
    pub fn knows_name(&self, name: &str) -> bool {
        self.names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|n| n == name)
    }

    /// Forgets `id` (its topic was deleted).
    pub fn forget(&self, id: Uuid) {
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}
